#include "model/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <queue>
#include <unistd.h>
#include <unordered_map>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

static const std::string kWordMark = "\xe2\x96\x81";  // U+2581, SentencePiece's space

struct Tokenizer::Impl {
    std::vector<std::string> pieces;  // ' ' stands for the word mark
    std::vector<float> scores;        // from tokenizer.bin; rank-derived for tokenizer.json
    std::vector<int16_t> byte_value;  // -1, or the byte a fallback token stands for
    std::vector<bool> special;
    std::unordered_map<std::string, int32_t> piece_to_id;
    int32_t byte_ids[256];
    // (left id, right id) -> (rank, merged id). Lower rank merges first.
    std::unordered_map<uint64_t, std::pair<double, int32_t>> merges;
    int32_t bos = 1, eos = 2, unk = 0;
    bool byte_fallback = true;
    bool add_prefix_space = true;
    std::string label;

    static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

    void index_pieces() {
        piece_to_id.clear();
        std::fill(std::begin(byte_ids), std::end(byte_ids), -1);
        for (size_t i = 0; i < pieces.size(); ++i) {
            if (byte_value[i] >= 0) {
                byte_ids[byte_value[i]] = int32_t(i);
                continue;
            }
            if (special[i]) continue;
            piece_to_id.emplace(pieces[i], int32_t(i));  // first id wins on duplicates
        }
    }

    // tokenizer.bin has no merges list: every split of a piece into two pieces is a merge,
    // ranked by the merged piece's score (SentencePiece BPE, llama2.c's encode).
    void merges_from_scores() {
        merges.clear();
        for (size_t id = 0; id < pieces.size(); ++id) {
            if (byte_value[id] >= 0 || special[id]) continue;
            const std::string& p = pieces[id];
            for (size_t cut = 1; cut < p.size(); ++cut) {
                auto l = piece_to_id.find(p.substr(0, cut));
                if (l == piece_to_id.end()) continue;
                auto r = piece_to_id.find(p.substr(cut));
                if (r == piece_to_id.end()) continue;
                merges.emplace(pair_key(l->second, r->second), std::make_pair(-double(scores[id]), int32_t(id)));
            }
        }
    }
};

static size_t utf8_len(uint8_t c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 0x6) return 2;
    if ((c >> 4) == 0xE) return 3;
    if ((c >> 3) == 0x1E) return 4;
    return 1;  // invalid lead byte: treat as a single byte (it will fall back to bytes)
}

static std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
        s.replace(pos, from.size(), to);
        pos += to.size();
    }
    return s;
}

static int parse_byte_piece(const std::string& p) {  // "<0x0A>" -> 10
    if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; ++i) {
        char c = p[i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

Tokenizer Tokenizer::from_hf_json(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    if (!j.is_object()) fail(label, ": expected a JSON object");
    const json& model = json_get<json>(j, "model", label);
    std::string type = json_get_or<std::string>(model, "type", "", label + " model");
    if (type != "BPE")
        fail(label, ": model.type '", type,
             "' is not supported (supported: BPE with SentencePiece-style byte fallback)");
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
        std::string pt = j["pre_tokenizer"].value("type", "");
        if (pt == "ByteLevel" || pt == "Sequence")
            fail(label, ": pre_tokenizer type '", pt,
                 "' (byte-level BPE as in Llama 3 / GPT-2) is not supported yet; only SentencePiece-style BPE");
        if (pt != "Metaspace") fail(label, ": pre_tokenizer type '", pt, "' is not supported");
    }
    auto impl = std::make_shared<Impl>();
    impl->label = label;
    impl->byte_fallback = json_get_or<bool>(model, "byte_fallback", false, label + " model");
    const json& vocab = json_get<json>(model, "vocab", label + " model");
    if (!vocab.is_object() || vocab.empty()) fail(label, ": model.vocab must be a non-empty object");
    if (vocab.size() > (1u << 24)) fail(label, ": model.vocab is implausibly large");
    int64_t n = 0;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it.value().is_number_unsigned())
            fail(label, ": model.vocab['", it.key(), "'] must be a non-negative integer");
        n = std::max<int64_t>(n, it.value().get<int64_t>() + 1);
    }
    const json added = j.value("added_tokens", json::array());
    if (!added.is_array()) fail(label, ": added_tokens must be an array");
    for (const json& a : added) {
        int64_t id = json_get<int64_t>(a, "id", label + " added_tokens");
        if (id < 0 || id >= (1 << 24)) fail(label, ": added_tokens id ", id, " out of range");
        n = std::max<int64_t>(n, id + 1);
    }
    if (n > int64_t(vocab.size() + added.size()) + 1024)
        fail(label, ": token ids are sparse (largest ", n - 1, " for ", vocab.size(), " pieces)");
    impl->pieces.assign(size_t(n), "");
    impl->scores.assign(size_t(n), 0.0f);
    impl->byte_value.assign(size_t(n), -1);
    impl->special.assign(size_t(n), false);
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        size_t id = it.value().get<size_t>();
        int b = parse_byte_piece(it.key());
        if (b >= 0 && impl->byte_fallback) impl->byte_value[id] = int16_t(b);
        impl->pieces[id] = replace_all(it.key(), kWordMark, " ");
    }
    std::string unk =
        model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"].get<std::string>() : "<unk>";
    for (const json& a : added) {
        size_t id = a["id"].get<size_t>();
        std::string content = json_get<std::string>(a, "content", label + " added_tokens");
        impl->pieces[id] = content;
        impl->special[id] = json_get_or<bool>(a, "special", true, label + " added_tokens");
        if (content == "<s>") impl->bos = int32_t(id);
        if (content == "</s>") impl->eos = int32_t(id);
        if (content == unk) impl->unk = int32_t(id);
    }
    impl->index_pieces();
    if (impl->byte_fallback)
        for (int b = 0; b < 256; ++b)
            if (impl->byte_ids[b] < 0) fail(label, ": byte_fallback is set but the vocab lacks <0x", std::hex, b, ">");

    const json& merges = json_get<json>(model, "merges", label + " model");
    if (!merges.is_array()) fail(label, ": model.merges must be an array");
    double rank = 0;
    for (const json& m : merges) {
        std::string left, right;
        if (m.is_string()) {  // "left right"
            std::string s = m.get<std::string>();
            size_t sp = s.find(' ');
            if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                fail(label, ": merge '", s, "' is not of the form 'left right'");
            left = s.substr(0, sp);
            right = s.substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            left = m[0];
            right = m[1];
        } else {
            fail(label, ": model.merges entries must be strings or pairs of strings");
        }
        left = replace_all(left, kWordMark, " ");
        right = replace_all(right, kWordMark, " ");
        auto l = impl->piece_to_id.find(left), r = impl->piece_to_id.find(right),
             lr = impl->piece_to_id.find(left + right);
        if (l == impl->piece_to_id.end() || r == impl->piece_to_id.end() || lr == impl->piece_to_id.end())
            fail(label, ": merge '", left, " ", right, "' names a piece missing from the vocab");
        impl->merges.emplace(Impl::pair_key(l->second, r->second), std::make_pair(rank, lr->second));
        rank += 1;
    }
    for (size_t i = 0; i < impl->scores.size(); ++i) impl->scores[i] = -float(i);
    // Llama-2 tokenizers prepend the word mark (normalizer Prepend, or Metaspace add_prefix_space).
    impl->add_prefix_space = true;
    if (j.contains("normalizer") && j["normalizer"].is_object()) {
        std::string dump = j["normalizer"].dump();
        impl->add_prefix_space = dump.find("Prepend") != std::string::npos;
    }
    Tokenizer t;
    t.impl_ = impl;
    return t;
}

Tokenizer Tokenizer::from_llama2c_bin(const uint8_t* bytes, size_t size, int64_t vocab_size, const std::string& label) {
    if (vocab_size <= 0 || vocab_size > (1 << 24)) fail(label, ": vocab size ", vocab_size, " out of range");
    if (vocab_size < 259) fail(label, ": vocab size ", vocab_size, " too small for llama2.c byte tokens (need 259)");
    size_t off = 0;
    auto need = [&](size_t n, const char* what) {
        if (size - off < n) fail(label, ": truncated at byte ", off, " while reading ", what);
    };
    need(4, "max_token_length");
    int32_t max_len;
    std::memcpy(&max_len, bytes, 4);
    off = 4;
    if (max_len <= 0 || max_len > 4096) fail(label, ": max_token_length ", max_len, " out of range");
    auto impl = std::make_shared<Impl>();
    impl->label = label;
    impl->pieces.resize(size_t(vocab_size));
    impl->scores.resize(size_t(vocab_size));
    impl->byte_value.assign(size_t(vocab_size), -1);
    impl->special.assign(size_t(vocab_size), false);
    for (int64_t i = 0; i < vocab_size; ++i) {
        need(8, "a token's score and length");
        float score;
        int32_t len;
        std::memcpy(&score, bytes + off, 4);
        std::memcpy(&len, bytes + off + 4, 4);
        off += 8;
        if (len < 0 || len > max_len)
            fail(label, ": token ", i, " has length ", len, " (max_token_length ", max_len, ")");
        need(size_t(len), "a token's bytes");
        impl->pieces[i].assign(reinterpret_cast<const char*>(bytes + off), size_t(len));
        impl->scores[i] = score;
        off += size_t(len);
    }
    if (off != size) fail(label, ": ", size - off, " trailing bytes after ", vocab_size, " tokens");
    // llama2.c layout: 0 <unk>, 1 <s>, 2 </s>, 3..258 the 256 byte-fallback tokens.
    impl->unk = 0, impl->bos = 1, impl->eos = 2;
    impl->pieces[0] = "<unk>", impl->pieces[1] = "<s>", impl->pieces[2] = "</s>";
    impl->special[0] = impl->special[1] = impl->special[2] = true;
    for (int b = 0; b < 256; ++b) impl->byte_value[3 + b] = int16_t(b);
    impl->byte_fallback = true;
    impl->add_prefix_space = true;
    impl->index_pieces();
    impl->merges_from_scores();
    Tokenizer t;
    t.impl_ = impl;
    return t;
}

Tokenizer Tokenizer::load_hf_json(const std::string& path) {
    return from_hf_json(read_file(path, 256u << 20), path);
}

Tokenizer Tokenizer::load_llama2c_bin(const std::string& path, int64_t vocab_size) {
    MappedFile f = MappedFile::open(path);
    return from_llama2c_bin(f.data(), f.size(), vocab_size, path);
}

Tokenizer Tokenizer::load_dir(const std::string& dir) {
    std::string js = dir + "/tokenizer.json", bin = dir + "/tokenizer.bin";
    if (access(js.c_str(), R_OK) == 0) return load_hf_json(js);
    if (access(bin.c_str(), R_OK) == 0) return load_llama2c_bin(bin);
    fail(dir, ": no tokenizer found (looked for tokenizer.json and tokenizer.bin)");
}

// BPE with a priority queue of adjacent pairs (as llama.cpp's SentencePiece tokenizer):
// O(n log n) in the text length, so whole documents can be encoded at once.
std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
    const Impl& m = *impl_;
    std::vector<int32_t> out;
    if (add_bos) out.push_back(m.bos);
    if (text.empty()) return out;
    std::string s = m.add_prefix_space ? " " + std::string(text) : std::string(text);

    struct Symbol {
        int32_t id;
        int prev, next;
        bool mergeable;
    };
    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t len = std::min(utf8_len(uint8_t(s[i])), s.size() - i);
        auto it = m.piece_to_id.find(s.substr(i, len));
        if (it != m.piece_to_id.end()) {
            sym.push_back({it->second, 0, 0, true});
        } else if (m.byte_fallback) {
            for (size_t b = 0; b < len; ++b) sym.push_back({m.byte_ids[uint8_t(s[i + b])], 0, 0, false});
        } else {
            if (sym.empty() || sym.back().id != m.unk) sym.push_back({m.unk, 0, 0, false});  // fuse_unk
        }
        i += len;
    }
    const int n = int(sym.size());
    for (int i = 0; i < n; ++i) sym[i].prev = i - 1, sym[i].next = i + 1 < n ? i + 1 : -1;

    struct Bigram {
        double rank;
        int left;
        int32_t left_id, right_id, merged;
        bool operator<(const Bigram& o) const {  // max-heap: invert for lowest rank, leftmost
            return rank > o.rank || (rank == o.rank && left > o.left);
        }
    };
    std::priority_queue<Bigram> queue;
    auto try_add = [&](int left) {
        if (left < 0) return;
        int right = sym[left].next;
        if (right < 0 || !sym[left].mergeable || !sym[right].mergeable) return;
        auto it = m.merges.find(Impl::pair_key(sym[left].id, sym[right].id));
        if (it == m.merges.end()) return;
        queue.push({it->second.first, left, sym[left].id, sym[right].id, it->second.second});
    };
    for (int i = 0; i + 1 < n; ++i) try_add(i);
    while (!queue.empty()) {
        Bigram b = queue.top();
        queue.pop();
        Symbol& l = sym[b.left];
        if (l.id != b.left_id || l.next < 0 || sym[l.next].id != b.right_id) continue;  // stale
        Symbol& r = sym[l.next];
        if (r.id < 0) continue;
        l.id = b.merged;
        int after = r.next;
        r.id = -1;  // dead
        l.next = after;
        if (after >= 0) sym[after].prev = b.left;
        try_add(l.prev);
        try_add(b.left);
    }
    for (int i = 0; i >= 0 && i < n; i = sym[i].next) out.push_back(sym[i].id);
    return out;
}

std::string Tokenizer::decode_token(int32_t prev, int32_t id) const {
    const Impl& m = *impl_;
    if (id < 0 || id >= int32_t(m.pieces.size())) fail(m.label, ": token id ", id, " out of range");
    if (m.special[id]) return "";
    if (m.byte_value[id] >= 0) return std::string(1, char(m.byte_value[id]));
    const std::string& p = m.pieces[id];
    if (prev == m.bos && !p.empty() && p[0] == ' ') return p.substr(1);
    return p;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string out;
    bool first = true;
    for (int32_t id : ids) {
        std::string piece = decode_token(-1, id);
        if (piece.empty()) continue;
        if (first && piece[0] == ' ' && impl_->byte_value[id] < 0) piece.erase(0, 1);
        first = false;
        out += piece;
    }
    return out;
}

int64_t Tokenizer::vocab_size() const {
    return int64_t(impl_->pieces.size());
}
int32_t Tokenizer::bos_id() const {
    return impl_->bos;
}
int32_t Tokenizer::eos_id() const {
    return impl_->eos;
}
const std::string& Tokenizer::piece(int32_t id) const {
    if (id < 0 || id >= int32_t(impl_->pieces.size())) fail(impl_->label, ": token id ", id, " out of range");
    return impl_->pieces[id];
}

std::string Tokenizer::to_hf_json() const {
    const Impl& m = *impl_;
    json vocab = json::object();
    std::vector<std::string> hf(m.pieces.size());
    for (size_t i = 0; i < m.pieces.size(); ++i) {
        char buf[8];
        if (m.byte_value[i] >= 0) {
            std::snprintf(buf, sizeof buf, "<0x%02X>", unsigned(m.byte_value[i]));
            hf[i] = buf;
        } else if (m.special[i]) {
            hf[i] = m.pieces[i];
        } else {
            hf[i] = replace_all(m.pieces[i], " ", kWordMark);
        }
        vocab[hf[i]] = i;
    }
    // transformers' SentencePieceExtractor: for each piece, every split into two pieces,
    // sorted by (left id, right id); then all merges stably sorted by the piece's score.
    struct Merge {
        float score;
        int32_t l, r;
    };
    std::vector<Merge> merges;
    for (size_t id = 0; id < m.pieces.size(); ++id) {
        if (m.byte_value[id] >= 0 || m.special[id]) continue;
        const std::string& p = m.pieces[id];
        std::vector<Merge> local;
        for (size_t cut = 1; cut < p.size(); ++cut) {
            auto l = m.piece_to_id.find(p.substr(0, cut));
            auto r = m.piece_to_id.find(p.substr(cut));
            if (l != m.piece_to_id.end() && r != m.piece_to_id.end())
                local.push_back({m.scores[id], l->second, r->second});
        }
        std::sort(local.begin(), local.end(),
                  [](const Merge& a, const Merge& b) { return a.l < b.l || (a.l == b.l && a.r < b.r); });
        merges.insert(merges.end(), local.begin(), local.end());
    }
    std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
    json jm = json::array();
    for (const Merge& mg : merges) jm.push_back(hf[mg.l] + " " + hf[mg.r]);

    json added = json::array();
    for (size_t i = 0; i < m.pieces.size(); ++i)
        if (m.special[i])
            added.push_back({{"id", i},
                             {"content", m.pieces[i]},
                             {"single_word", false},
                             {"lstrip", false},
                             {"rstrip", false},
                             {"normalized", false},
                             {"special", true}});
    json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", kWordMark}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kWordMark}}}}};
    j["pre_tokenizer"] = nullptr;
    j["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", "<s>"}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {m.bos}}, {"tokens", {"<s>"}}}}}}};
    j["decoder"] = {{"type", "Sequence"},
                    {"decoders",
                     {{{"type", "Replace"}, {"pattern", {{"String", kWordMark}}}, {"content", " "}},
                      {{"type", "ByteFallback"}},
                      {{"type", "Fuse"}},
                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", "<unk>"},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"vocab", vocab},
                  {"merges", jm}};
    return j.dump(1) + "\n";
}

}  // namespace lincat
