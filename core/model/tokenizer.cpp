#include "model/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <queue>
#include <unistd.h>
#include <unordered_map>

#include "model/byte_level.h"
#include "model/tokenizer_config.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

static const std::string kWordMark = "\xe2\x96\x81";  // U+2581, SentencePiece's space

const char* tokenizer_kind_name(TokenizerKind kind) {
    return kind == TokenizerKind::ByteLevel ? "byte-level BPE" : "SentencePiece BPE";
}

// An entry of tokenizer.json's added_tokens: matched in the raw text before anything else.
struct AddedToken {
    std::string content;
    int32_t id;
    bool lstrip, rstrip, single_word, special;
};

struct Tokenizer::Impl {
    TokenizerKind kind = TokenizerKind::SentencePiece;
    // SentencePiece: ' ' stands for the word mark. ByteLevel: the file's mapped form.
    std::vector<std::string> pieces;
    std::vector<float> scores;        // from tokenizer.bin; rank-derived for tokenizer.json
    std::vector<int16_t> byte_value;  // -1, or the byte a fallback token stands for
    std::vector<bool> special;
    std::vector<AddedToken> added;                           // longest first, so the longest match wins at a position
    std::vector<std::vector<uint32_t>> added_by_first_byte;  // 256 lists of indices into `added`
    std::unordered_map<std::string, int32_t> piece_to_id;
    std::unordered_map<std::string, int32_t> added_to_id;
    int32_t byte_ids[256];
    // (left id, right id) -> (rank, merged id). Lower rank merges first.
    std::unordered_map<uint64_t, std::pair<double, int32_t>> merges;
    int32_t bos = -1, unk = -1;
    bool adds_bos = false;
    std::vector<int32_t> eos;
    bool byte_fallback = true;
    bool add_prefix_space = true;  // SentencePiece: the word mark before each text segment
    // ByteLevel stages.
    bool nfc = false;
    bool ignore_merges = false;
    bool byte_level_prefix_space = false;
    std::vector<RegexSplit> splits;
    std::string label;

    static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

    void index_added() {
        std::stable_sort(added.begin(), added.end(),
                         [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
        added_by_first_byte.assign(256, {});
        for (size_t i = 0; i < added.size(); ++i)
            added_by_first_byte[uint8_t(added[i].content[0])].push_back(uint32_t(i));
    }

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

    void bpe(std::string_view word, std::vector<int32_t>& out) const;
    void encode_text(std::string_view text, std::vector<int32_t>& out) const;
    std::string token_bytes(int32_t id) const;
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

// GPT-2's own pre-tokenizer regex, used by a ByteLevel pre-tokenizer with use_regex true.
static const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

static void parse_byte_level_pre_tokenizer(Tokenizer::Impl& m, const json& pt, const std::string& label) {
    std::vector<json> steps;
    std::string type = pt.value("type", "");
    if (type == "Sequence") {
        const json& list = json_get<json>(pt, "pretokenizers", label + " pre_tokenizer");
        if (!list.is_array()) fail(label, ": pre_tokenizer.pretokenizers must be an array");
        steps.assign(list.begin(), list.end());
    } else {
        steps.push_back(pt);
    }
    bool byte_level = false;
    for (const json& s : steps) {
        std::string t = s.is_object() ? s.value("type", "") : "";
        if (t == "Split") {
            const json& pattern = json_get<json>(s, "pattern", label + " pre_tokenizer Split");
            std::string behavior = s.value("behavior", "");
            if (behavior != "Isolated")
                fail(label, ": pre_tokenizer Split behavior '", behavior, "' is not supported (supported: Isolated)");
            if (s.value("invert", false)) fail(label, ": pre_tokenizer Split with invert true is not supported");
            if (pattern.contains("Regex") && pattern["Regex"].is_string())
                m.splits.emplace_back(pattern["Regex"].get<std::string>(), label);
            else
                fail(label, ": pre_tokenizer Split pattern must be {\"Regex\": ...}");
        } else if (t == "ByteLevel") {
            byte_level = true;
            m.byte_level_prefix_space = s.value("add_prefix_space", false);
            if (s.value("use_regex", true)) m.splits.emplace_back(kGpt2Pattern, label);
        } else {
            fail(label, ": pre_tokenizer step '", t, "' is not supported (supported: Split, ByteLevel)");
        }
    }
    if (!byte_level) fail(label, ": pre_tokenizer '", type, "' without a ByteLevel step is not supported");
}

static void parse_byte_level_normalizer(Tokenizer::Impl& m, const json& j, const std::string& label) {
    if (!j.contains("normalizer") || j["normalizer"].is_null()) return;
    const json& n = j["normalizer"];
    std::vector<json> steps;
    if (n.value("type", "") == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array())
        steps.assign(n["normalizers"].begin(), n["normalizers"].end());
    else
        steps.push_back(n);
    for (const json& s : steps) {
        std::string t = s.is_object() ? s.value("type", "") : "";
        if (t != "NFC") fail(label, ": normalizer '", t, "' is not supported with byte-level BPE (supported: NFC)");
        m.nfc = true;
    }
}

// The BOS a TemplateProcessing post-processor puts first (Llama 2, Llama 3.1), if any.
static std::optional<std::string> template_bos(const json& j) {
    if (!j.contains("post_processor") || !j["post_processor"].is_object()) return std::nullopt;
    std::vector<json> procs;
    const json& p = j["post_processor"];
    if (p.value("type", "") == "Sequence" && p.contains("processors") && p["processors"].is_array())
        procs.assign(p["processors"].begin(), p["processors"].end());
    else
        procs.push_back(p);
    for (const json& q : procs) {
        if (!q.is_object() || q.value("type", "") != "TemplateProcessing") continue;
        if (!q.contains("single") || !q["single"].is_array() || q["single"].empty()) continue;
        const json& first = q["single"][0];
        if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object() &&
            first["SpecialToken"].contains("id") && first["SpecialToken"]["id"].is_string())
            return first["SpecialToken"]["id"].get<std::string>();
    }
    return std::nullopt;
}

Tokenizer Tokenizer::from_hf_json(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    if (!j.is_object()) fail(label, ": expected a JSON object");
    const json& model = json_get<json>(j, "model", label);
    std::string type = json_get_or<std::string>(model, "type", "", label + " model");
    if (type != "BPE")
        fail(label, ": model.type '", type, "' is not supported (supported: BPE, SentencePiece-style or byte-level)");
    auto impl = std::make_shared<Impl>();
    impl->label = label;
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
        const json& pt = j["pre_tokenizer"];
        if (!pt.is_object()) fail(label, ": pre_tokenizer must be an object or null");
        std::string t = pt.value("type", "");
        if (t == "ByteLevel" || t == "Sequence") {
            impl->kind = TokenizerKind::ByteLevel;
            parse_byte_level_pre_tokenizer(*impl, pt, label);
        } else if (t != "Metaspace") {
            fail(label, ": pre_tokenizer type '", t, "' is not supported (supported: Metaspace, ByteLevel, Sequence)");
        }
    }
    const bool byte_level = impl->kind == TokenizerKind::ByteLevel;
    if (byte_level) parse_byte_level_normalizer(*impl, j, label);
    impl->byte_fallback = json_get_or<bool>(model, "byte_fallback", false, label + " model");
    impl->ignore_merges = json_get_or<bool>(model, "ignore_merges", false, label + " model");
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
        impl->pieces[id] = byte_level ? it.key() : replace_all(it.key(), kWordMark, " ");
    }
    std::string unk =
        model.contains("unk_token") && model["unk_token"].is_string() ? model["unk_token"].get<std::string>() : "";
    if (!unk.empty() && vocab.contains(unk)) impl->unk = vocab[unk].get<int32_t>();
    for (const json& a : added) {
        std::string lab = label + " added_tokens";
        AddedToken t;
        t.id = int32_t(json_get<int64_t>(a, "id", lab));
        t.content = json_get<std::string>(a, "content", lab);
        if (t.content.empty()) fail(label, ": added_tokens id ", t.id, " has empty content");
        t.special = json_get_or<bool>(a, "special", true, lab);
        t.lstrip = json_get_or<bool>(a, "lstrip", false, lab);
        t.rstrip = json_get_or<bool>(a, "rstrip", false, lab);
        t.single_word = json_get_or<bool>(a, "single_word", false, lab);
        impl->pieces[t.id] = t.content;
        impl->special[t.id] = t.special;
        impl->byte_value[t.id] = -1;
        if (t.content == unk) impl->unk = t.id;
        impl->added_to_id[t.content] = t.id;
        impl->added.push_back(t);
    }
    impl->index_added();
    impl->index_pieces();
    if (impl->byte_fallback)
        for (int b = 0; b < 256; ++b)
            if (impl->byte_ids[b] < 0) fail(label, ": byte_fallback is set but the vocab lacks <0x", std::hex, b, ">");
    if (byte_level)
        for (int b = 0; b < 256; ++b)
            if (!impl->piece_to_id.count(byte_level_map(std::string(1, char(b)))))
                fail(label, ": ByteLevel pre_tokenizer, but the vocab lacks the piece for byte ", b);

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
        if (!byte_level) {
            left = replace_all(left, kWordMark, " ");
            right = replace_all(right, kWordMark, " ");
        }
        auto l = impl->piece_to_id.find(left), r = impl->piece_to_id.find(right),
             lr = impl->piece_to_id.find(left + right);
        if (l == impl->piece_to_id.end() || r == impl->piece_to_id.end() || lr == impl->piece_to_id.end())
            fail(label, ": merge '", left, " ", right, "' names a piece missing from the vocab");
        impl->merges.emplace(Impl::pair_key(l->second, r->second), std::make_pair(rank, lr->second));
        rank += 1;
    }
    for (size_t i = 0; i < impl->scores.size(); ++i) impl->scores[i] = -float(i);
    // Llama-2 tokenizers prepend the word mark (normalizer Prepend, or Metaspace add_prefix_space).
    impl->add_prefix_space = !byte_level;
    if (!byte_level && j.contains("normalizer") && j["normalizer"].is_object())
        impl->add_prefix_space = j["normalizer"].dump().find("Prepend") != std::string::npos;
    if (auto bos = template_bos(j)) {
        auto it = impl->added_to_id.find(*bos);
        if (it == impl->added_to_id.end()) fail(label, ": post_processor names '", *bos, "', which is not a token");
        impl->bos = it->second;
        impl->adds_bos = true;
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
    // llama2.c layout: 0 <unk>, 1 <s>, 2 </s>, 3..258 the 256 byte-fallback tokens; the
    // format itself fixes BOS and EOS, and llama2.c always starts with BOS.
    impl->unk = 0, impl->bos = 1, impl->eos = {2}, impl->adds_bos = true;
    impl->pieces[0] = "<unk>", impl->pieces[1] = "<s>", impl->pieces[2] = "</s>";
    impl->special[0] = impl->special[1] = impl->special[2] = true;
    for (int32_t id = 0; id < 3; ++id) {
        impl->added.push_back({impl->pieces[id], id, false, false, false, true});
        impl->added_to_id[impl->pieces[id]] = id;
    }
    impl->index_added();
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
    Tokenizer t;
    if (access(js.c_str(), R_OK) == 0)
        t = load_hf_json(js);
    else if (access(bin.c_str(), R_OK) == 0)
        t = load_llama2c_bin(bin);
    else
        fail(dir, ": no tokenizer found (looked for tokenizer.json and tokenizer.bin)");

    // BOS and EOS: tokenizer_config.json first, then generation_config.json, then config.json.
    SpecialTokenConfig s = read_special_token_config(dir);
    const Impl& m = *t.impl_;
    auto id_of = [&](const std::string& content, const char* field) {
        int32_t id = t.token_id(content);
        if (id < 0)
            fail(s.tokenizer_config_path, ": field '", field, "' is '", content, "', which is not a token of ", js);
        return id;
    };
    auto checked = [&](int64_t id, const char* file, const char* field) {
        if (id < 0 || id >= int64_t(m.pieces.size()))
            fail(dir, "/", file, ": field '", field, "' is ", id, ", outside the tokenizer's ", m.pieces.size(),
                 " ids");
        return int32_t(id);
    };
    const int32_t config_bos = s.generation_bos ? checked(*s.generation_bos, "generation_config.json", "bos_token_id")
                               : s.config_bos   ? checked(*s.config_bos, "config.json", "bos_token_id")
                                                : -1;
    int32_t bos = m.bos;
    bool adds_bos = m.adds_bos;
    if (s.bos_token) {
        bos = id_of(*s.bos_token, "bos_token");
    } else if (s.bos_token_null) {
        bos = config_bos;  // Qwen: no BOS in text; generation still starts from bos_token_id
        adds_bos = false;
    } else if (config_bos >= 0) {
        bos = config_bos;
    }
    if (s.add_bos_token) adds_bos = *s.add_bos_token;
    if (adds_bos && bos < 0) fail(s.tokenizer_config_path, ": add_bos_token is true but the model names no BOS");
    std::vector<int32_t> eos;
    auto add_eos = [&](int32_t id) {
        if (std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
    };
    if (s.eos_token) add_eos(id_of(*s.eos_token, "eos_token"));
    for (int64_t id : s.generation_eos) add_eos(checked(id, "generation_config.json", "eos_token_id"));
    for (int64_t id : s.config_eos) add_eos(checked(id, "config.json", "eos_token_id"));
    if (eos.empty()) eos = m.eos;
    t.set_special_ids(bos, adds_bos, eos);
    return t;
}

void Tokenizer::set_special_ids(int32_t bos, bool adds_bos, const std::vector<int32_t>& eos) {
    auto copy = std::make_shared<Impl>(*impl_);  // copies share impl_: never change theirs
    copy->bos = bos;
    copy->adds_bos = adds_bos;
    copy->eos = eos;
    impl_ = copy;
}

// BPE with a priority queue of adjacent pairs (as llama.cpp's SentencePiece tokenizer):
// O(n log n) in the word length, so whole SentencePiece documents can be encoded at once.
void Tokenizer::Impl::bpe(std::string_view s, std::vector<int32_t>& out) const {
    struct Symbol {
        int32_t id;
        int prev, next;
        bool mergeable;
    };
    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t len = std::min(utf8_len(uint8_t(s[i])), s.size() - i);
        auto it = piece_to_id.find(std::string(s.substr(i, len)));
        if (it != piece_to_id.end()) {
            sym.push_back({it->second, 0, 0, true});
        } else if (byte_fallback) {
            for (size_t b = 0; b < len; ++b) sym.push_back({byte_ids[uint8_t(s[i + b])], 0, 0, false});
        } else if (unk >= 0) {
            if (sym.empty() || sym.back().id != unk) sym.push_back({unk, 0, 0, false});  // fuse_unk
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
        auto it = merges.find(pair_key(sym[left].id, sym[right].id));
        if (it == merges.end()) return;
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
}

// One stretch of text between added tokens: normalizer, pre-tokenizer, BPE.
void Tokenizer::Impl::encode_text(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    if (kind == TokenizerKind::SentencePiece) {
        std::string s = add_prefix_space ? " " + std::string(text) : std::string(text);
        bpe(s, out);
        return;
    }
    std::string s = nfc ? nfc_normalize(text) : std::string(text);
    if (byte_level_prefix_space && s[0] != ' ') s.insert(0, 1, ' ');
    std::vector<std::string_view> words{s}, next;
    for (const RegexSplit& split : splits) {  // a Sequence: each step splits every piece again
        next.clear();
        for (std::string_view w : words) split.split(w, next);
        words.swap(next);
    }
    for (std::string_view w : words) {
        std::string mapped = byte_level_map(w);
        if (ignore_merges) {
            auto it = piece_to_id.find(mapped);
            if (it != piece_to_id.end()) {
                out.push_back(it->second);
                continue;
            }
        }
        bpe(mapped, out);
    }
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
static bool is_word_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (uint8_t(c) & 0x80);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
    const Impl& m = *impl_;
    std::vector<int32_t> out;
    if (add_special && m.adds_bos) out.push_back(m.bos);
    // Added tokens are found in the raw text first, leftmost and then longest (as Hugging
    // Face's AddedVocabulary does); lstrip / rstrip take the whitespace beside them along.
    size_t done = 0;  // text before `done` is encoded
    for (size_t pos = 0; pos < text.size();) {
        const AddedToken* hit = nullptr;
        for (uint32_t i : m.added_by_first_byte[uint8_t(text[pos])]) {
            const AddedToken& a = m.added[i];
            if (text.compare(pos, a.content.size(), a.content) != 0) continue;
            size_t end = pos + a.content.size();
            if (a.single_word &&
                ((pos > 0 && is_word_char(text[pos - 1])) || (end < text.size() && is_word_char(text[end]))))
                continue;
            hit = &a;
            break;
        }
        if (!hit) {
            ++pos;
            continue;
        }
        size_t begin = pos, end = pos + hit->content.size();
        if (hit->lstrip)
            while (begin > done && is_space(text[begin - 1])) --begin;
        if (hit->rstrip)
            while (end < text.size() && is_space(text[end])) ++end;
        m.encode_text(text.substr(done, begin - done), out);
        out.push_back(hit->id);
        done = pos = end;
    }
    m.encode_text(text.substr(done), out);
    return out;
}

// A token's bytes as decoding emits them (special tokens as their text).
std::string Tokenizer::Impl::token_bytes(int32_t id) const {
    if (id < 0 || id >= int32_t(pieces.size())) fail(label, ": token id ", id, " out of range");
    if (byte_value[id] >= 0) return std::string(1, char(byte_value[id]));
    if (kind == TokenizerKind::SentencePiece || added_to_id.count(pieces[id])) return pieces[id];
    std::string bytes;
    if (!byte_level_unmap(pieces[id], bytes)) return pieces[id];  // a piece outside the byte map
    return bytes;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    const Impl& m = *impl_;
    std::string out;
    bool first = true;
    for (int32_t id : ids) {
        if (id < 0 || id >= int32_t(m.pieces.size())) fail(m.label, ": token id ", id, " out of range");
        if (skip_special && m.special[id]) continue;
        std::string piece = m.token_bytes(id);
        if (piece.empty()) continue;
        // SentencePiece's decoder strips the word mark the normalizer put before the text.
        if (first && m.kind == TokenizerKind::SentencePiece && m.add_prefix_space && piece[0] == ' ' &&
            m.byte_value[id] < 0)
            piece.erase(0, 1);
        first = false;
        out += piece;
    }
    return out;
}

TokenizerKind Tokenizer::kind() const {
    return impl_->kind;
}
int64_t Tokenizer::vocab_size() const {
    return int64_t(impl_->pieces.size());
}
int32_t Tokenizer::bos_id() const {
    return impl_->bos;
}
bool Tokenizer::adds_bos() const {
    return impl_->adds_bos;
}
int32_t Tokenizer::eos_id() const {
    return impl_->eos.empty() ? -1 : impl_->eos[0];
}
const std::vector<int32_t>& Tokenizer::eos_ids() const {
    return impl_->eos;
}
bool Tokenizer::is_special(int32_t id) const {
    return id >= 0 && id < int32_t(impl_->pieces.size()) && impl_->special[id];
}
std::string Tokenizer::piece(int32_t id) const {
    const Impl& m = *impl_;
    if (id < 0 || id >= int32_t(m.pieces.size())) fail(m.label, ": token id ", id, " out of range");
    if (m.kind == TokenizerKind::SentencePiece || m.special[id]) return m.pieces[id];
    return m.token_bytes(id);
}
int32_t Tokenizer::token_id(const std::string& content) const {
    auto a = impl_->added_to_id.find(content);
    if (a != impl_->added_to_id.end()) return a->second;
    std::string key = impl_->kind == TokenizerKind::ByteLevel ? byte_level_map(content) : content;
    auto p = impl_->piece_to_id.find(key);
    return p == impl_->piece_to_id.end() ? -1 : p->second;
}

// Length of the longest prefix of `s` that does not end inside a UTF-8 sequence.
static size_t complete_utf8_prefix(const std::string& s) {
    size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        uint8_t c = uint8_t(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;           // a continuation byte: look further back
        size_t need = c >= 0xC0 ? utf8_len(c) : 1;  // a lead byte (or ASCII)
        return need > back ? n - back : n;
    }
    return n;  // four or more continuation bytes: invalid, release them as they are
}

std::string TokenTextStream::push(int32_t id) {
    const Tokenizer::Impl& m = *tok_.impl_;
    if (id < 0 || id >= int32_t(m.pieces.size())) fail(m.label, ": token id ", id, " out of range");
    if (m.special[id]) return {};
    std::string piece = m.token_bytes(id);
    if (piece.empty()) return {};
    if (!started_ && m.kind == TokenizerKind::SentencePiece && m.add_prefix_space && piece[0] == ' ' &&
        m.byte_value[id] < 0)
        piece.erase(0, 1);
    started_ = true;
    pending_ += piece;
    size_t n = complete_utf8_prefix(pending_);
    std::string out = pending_.substr(0, n);
    pending_.erase(0, n);
    return out;
}

std::string TokenTextStream::finish() {
    std::string out;
    out.swap(pending_);
    return out;
}

std::string Tokenizer::to_hf_json() const {
    const Impl& m = *impl_;
    if (m.kind != TokenizerKind::SentencePiece) fail(m.label, ": to_hf_json writes SentencePiece tokenizers only");
    json vocab = json::object();
    std::vector<std::string> hf(m.pieces.size());
    for (size_t i = 0; i < m.pieces.size(); ++i) {
        char buf[8];
        if (m.byte_value[i] >= 0) {
            std::snprintf(buf, sizeof buf, "<0x%02X>", unsigned(m.byte_value[i]) & 0xFFu);
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
    const std::string bos = m.bos >= 0 ? m.pieces[m.bos] : "<s>";
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
        {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{bos, {{"id", bos}, {"ids", {m.bos}}, {"tokens", {bos}}}}}}};
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
