#include "blocks/state_manifest.h"

#include <map>

#include "util/error.h"
#include "util/sha256.h"
#include "util/json.h"

namespace lincat {

std::vector<StateShard> StateManifest::block_shards(int64_t block, const std::string& split) const {
    std::vector<StateShard> out;
    for (auto& s : shards)
        if (s.block == block && s.split == split) out.push_back(s);
    return out;
}

uint64_t StateManifest::shard_bytes(int64_t n) const {
    // Each factor is bounded by the parser (rows, seq_len, hidden < 2^24 or 2^31), so no overflow.
    return uint64_t(n) * uint64_t(seq_len) * uint64_t(hidden) * dtype_size(dtype);
}

uint64_t StateManifest::total_bytes() const {
    uint64_t total = 0;
    for (auto& s : shards) total += s.bytes;
    return total;
}

std::vector<StateBlock> make_blocks(int64_t num_layers, int64_t k) {
    if (num_layers <= 0) fail("the model has no layers");
    if (k < 1 || k > num_layers)
        fail("block size k = ", k, " is outside [1, ", num_layers, "] (the model has ", num_layers, " layers)");
    std::vector<StateBlock> blocks;
    for (int64_t first = 0, i = 0; first < num_layers; first += k, ++i)
        blocks.push_back({i, first, std::min(k, num_layers - first)});
    return blocks;
}

std::string block_states_fingerprint(const StateManifest& m, int64_t block) {
    if (block < 0 || block >= int64_t(m.blocks.size()) || !m.block_ready(block))
        fail("block ", block, " has no complete states in this manifest");
    std::string text = m.base_model_hash + " " + m.tokens_sha256 + " k" + std::to_string(m.k) + " T" +
                       std::to_string(m.seq_len) + " " + dtype_name(m.dtype) + " block" + std::to_string(block);
    for (const std::string split : {"train", "eval"})
        for (auto& s : m.block_shards(block, split)) text += " " + s.sha256;
    return sha256_hex(text.data(), text.size());
}

void check_relative_path(const std::string& path, const std::string& label) {
    if (path.empty()) fail(label, ": empty path");
    if (path.size() > 4096) fail(label, ": path longer than 4096 bytes");
    if (path[0] == '/' || path.find('\\') != std::string::npos || path.find('\0') != std::string::npos)
        fail(label, ": path '", path, "' must be relative to its folder");
    size_t pos = 0;
    while (pos <= path.size()) {
        size_t end = path.find('/', pos);
        if (end == std::string::npos) end = path.size();
        std::string part = path.substr(pos, end - pos);
        if (part.empty() || part == "." || part == "..")
            fail(label, ": path '", path, "' may not contain empty, '.' or '..' parts (it must stay in its folder)");
        pos = end + 1;
    }
}

static DType parse_state_dtype(const std::string& s, const std::string& label) {
    if (s == "F32") return DType::F32;
    if (s == "BF16") return DType::BF16;
    if (s == "F16") return DType::F16;
    fail(label, ": dtype '", s, "' is not one of F32, BF16, F16");
}

static void check_sha256(const std::string& s, const std::string& label) {
    if (s.size() != 64) fail(label, ": sha256 must be 64 hex digits");
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) fail(label, ": sha256 must be lowercase hex");
}

static int64_t bounded(const json& j, const std::string& field, int64_t lo, int64_t hi, const std::string& label) {
    int64_t v = json_get<int64_t>(j, field, label);
    if (v < lo || v > hi) fail(label, ": ", field, " = ", v, " is outside [", lo, ", ", hi, "]");
    return v;
}

StateManifest parse_state_manifest(const std::string& text, const std::string& label) {
    if (text.size() > kMaxManifestBytes) fail(label, ": manifest larger than ", kMaxManifestBytes, " bytes");
    json j = parse_json(text, label);
    if (!j.is_object()) fail(label, ": the manifest must be a JSON object");
    if (json_get<std::string>(j, "format", label) != "lincat-states") fail(label, ": format is not \"lincat-states\"");
    if (json_get<int64_t>(j, "version", label) != 1) fail(label, ": unsupported version (this build reads 1)");
    StateManifest m;
    m.base_model_hash = json_get<std::string>(j, "base_model_hash", label);
    check_sha256(m.base_model_hash, label + " base_model_hash");
    m.num_layers = bounded(j, "num_layers", 1, 1 << 16, label);
    m.hidden = bounded(j, "hidden", 1, 1 << 20, label);
    m.k = bounded(j, "k", 1, m.num_layers, label);
    m.seq_len = bounded(j, "seq_len", 1, 1 << 24, label);
    m.dtype = parse_state_dtype(json_get<std::string>(j, "dtype", label), label);
    m.train_rows = bounded(j, "train_rows", 1, int64_t(1) << 31, label);
    m.eval_rows = bounded(j, "eval_rows", 0, int64_t(1) << 31, label);
    json tokens = json_get<json>(j, "tokens", label);
    if (!tokens.is_object()) fail(label, ": tokens must be an object");
    m.tokens_file = json_get<std::string>(tokens, "file", label + " tokens");
    check_relative_path(m.tokens_file, label + " tokens.file");
    m.tokens_sha256 = json_get<std::string>(tokens, "sha256", label + " tokens");
    check_sha256(m.tokens_sha256, label + " tokens.sha256");
    json data = json_get<json>(j, "data", label);
    if (!data.is_object()) fail(label, ": data must be an object");
    m.data_json = data.dump();
    if (j.contains("blocks_ready")) m.blocks_ready = bounded(j, "blocks_ready", 0, 1 << 16, label);

    json blocks = json_get<json>(j, "blocks", label);
    if (!blocks.is_array()) fail(label, ": blocks must be an array");
    std::vector<StateBlock> expected = make_blocks(m.num_layers, m.k);
    if (blocks.size() != expected.size())
        fail(label, ": ", blocks.size(), " blocks listed, k = ", m.k, " over ", m.num_layers, " layers gives ",
             expected.size());
    for (size_t b = 0; b < blocks.size(); ++b) {
        const json& jb = blocks[b];
        std::string bl = label + " blocks[" + std::to_string(b) + "]";
        if (!jb.is_object()) fail(bl, ": must be an object");
        StateBlock sb{json_get<int64_t>(jb, "index", bl), json_get<int64_t>(jb, "first_layer", bl),
                      json_get<int64_t>(jb, "layers", bl)};
        if (sb.index != expected[b].index || sb.first_layer != expected[b].first_layer ||
            sb.layers != expected[b].layers)
            fail(bl, ": expected block ", b, " = layers [", expected[b].first_layer, ", ",
                 expected[b].first_layer + expected[b].layers, ")");
        m.blocks.push_back(sb);
        json shards = json_get<json>(jb, "shards", bl);
        if (!shards.is_array()) fail(bl, ": shards must be an array");
        if (!m.block_ready(sb.index)) {  // not dumped yet: nothing to list
            if (!shards.empty()) fail(bl, ": lists shards but blocks_ready = ", m.blocks_ready);
            continue;
        }
        std::map<std::string, int64_t> next_row = {{"train", 0}, {"eval", 0}};
        for (size_t s = 0; s < shards.size(); ++s) {
            const json& js = shards[s];
            std::string sl = bl + ".shards[" + std::to_string(s) + "]";
            if (!js.is_object()) fail(sl, ": must be an object");
            StateShard sh;
            sh.block = sb.index;
            sh.split = json_get<std::string>(js, "split", sl);
            if (sh.split != "train" && sh.split != "eval") fail(sl, ": split must be \"train\" or \"eval\"");
            if (sh.split == "train" && next_row["eval"] > 0) fail(sl, ": train shards must come before eval shards");
            sh.row_begin = json_get<int64_t>(js, "row_begin", sl);
            sh.rows = json_get<int64_t>(js, "rows", sl);
            if (sh.row_begin != next_row[sh.split])
                fail(sl, ": row_begin ", sh.row_begin, " leaves a gap or overlap (expected ", next_row[sh.split], ")");
            if (sh.rows < 1 || sh.rows > m.rows(sh.split) - sh.row_begin)
                fail(sl, ": rows ", sh.rows, " run past the ", sh.split, " split (", m.rows(sh.split), " rows)");
            next_row[sh.split] += sh.rows;
            sh.file = json_get<std::string>(js, "file", sl);
            check_relative_path(sh.file, sl + ".file");
            sh.bytes = uint64_t(json_get<int64_t>(js, "bytes", sl));
            if (sh.bytes != m.shard_bytes(sh.rows))
                fail(sl, ": bytes ", sh.bytes, " does not match rows x seq_len x hidden x dtype (",
                     m.shard_bytes(sh.rows), ")");
            sh.sha256 = json_get<std::string>(js, "sha256", sl);
            check_sha256(sh.sha256, sl + ".sha256");
            m.shards.push_back(sh);
        }
        if (next_row["train"] != m.train_rows || next_row["eval"] != m.eval_rows)
            fail(bl, ": shards cover ", next_row["train"], " train and ", next_row["eval"], " eval rows, the dump has ",
                 m.train_rows, " and ", m.eval_rows);
    }
    return m;
}

std::string state_manifest_to_json(const StateManifest& m) {
    json blocks = json::array();
    for (auto& b : m.blocks) {
        json shards = json::array();
        for (auto& s : m.shards)
            if (s.block == b.index)
                shards.push_back({{"split", s.split},
                                  {"row_begin", s.row_begin},
                                  {"rows", s.rows},
                                  {"file", s.file},
                                  {"bytes", s.bytes},
                                  {"sha256", s.sha256}});
        blocks.push_back(
            {{"index", b.index}, {"first_layer", b.first_layer}, {"layers", b.layers}, {"shards", shards}});
    }
    json j = {{"format", "lincat-states"},
              {"version", 1},
              {"base_model_hash", m.base_model_hash},
              {"num_layers", m.num_layers},
              {"hidden", m.hidden},
              {"k", m.k},
              {"seq_len", m.seq_len},
              {"dtype", dtype_name(m.dtype)},
              {"train_rows", m.train_rows},
              {"eval_rows", m.eval_rows},
              {"tokens", {{"file", m.tokens_file}, {"sha256", m.tokens_sha256}}},
              {"data", parse_json(m.data_json.empty() ? "{}" : m.data_json, "data")},
              {"blocks", blocks}};
    if (!m.whole()) j["blocks_ready"] = m.blocks_ready;
    return j.dump(1);
}

}  // namespace lincat
