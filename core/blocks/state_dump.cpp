#include "blocks/state_dump.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "model/fingerprint.h"
#include "model/weights.h"
#include "plan/planner.h"
#include "train/checkpoint.h"
#include "util/error.h"
#include "util/events.h"
#include "util/file.h"
#include "util/json.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

uint64_t free_disk_bytes(const std::string& dir) {
    if (const char* fake = std::getenv("LINCAT_FREE_DISK_BYTES")) return std::strtoull(fake, nullptr, 10);
    fs::path p = fs::absolute(dir);
    while (!fs::exists(p) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
    return fs::space(p).available;
}

StateManifest load_state_manifest(const std::string& dir) {
    const std::string path = dir + "/manifest.json";
    if (!fs::exists(path))
        fail(path, ": missing; the state dump in ", dir, " is unfinished (rerun lincat dump-states to complete it)");
    return parse_state_manifest(read_file(path, kMaxManifestBytes + 1), path);
}

namespace {

std::string shard_file(int64_t block, const std::string& split, int64_t row_begin) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "block-%03lld/%s-%06lld.safetensors", (long long)block, split.c_str(),
                  (long long)row_begin);
    return buf;
}

json shard_json(const StateShard& s) {
    return {{"block", s.block}, {"split", s.split}, {"row_begin", s.row_begin}, {"rows", s.rows},
            {"file", s.file},   {"bytes", s.bytes}, {"sha256", s.sha256}};
}

// What identifies a dump: a rerun with other settings must not mix into it.
json dump_identity(const StateDumpConfig& c, const std::string& hash) {
    return {{"k", c.k},
            {"dtype", dtype_name(c.dtype)},
            {"shard_rows", c.shard_rows},
            {"data", parse_json(data_spec_to_json(c.data), "data")},
            {"base_model_hash", hash}};
}

// A shard file is good when it holds hidden_states of the recorded shape and its sha256 matches.
bool shard_intact(const std::string& dir, const StateShard& s) {
    std::error_code ec;
    const std::string path = dir + "/" + s.file;
    if (!fs::is_regular_file(path, ec)) return false;
    try {
        return sha256_file(path) == s.sha256;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

StateDumpConfig dump_config_from_run(const Workspace& ws, const RunRecord& r) {
    const std::string label = ws.db_path() + ": run " + std::to_string(r.id) + " config";
    if (r.kind != RunKind::DumpStates) fail(label, ": a '", run_kind_name(r.kind), "' run, not a state dump");
    json j = parse_json(r.config_json, label);
    StateDumpConfig c;
    c.k = json_get<int64_t>(j, "k", label);
    const std::string dtype = json_get<std::string>(j, "dtype", label);
    bool known = false;
    for (DType d : {DType::F32, DType::BF16, DType::F16})
        if (dtype == dtype_name(d)) c.dtype = d, known = true;
    if (!known) fail(label, ": field 'dtype' is '", dtype, "', not F32, BF16 or F16");
    c.shard_rows = json_get<int64_t>(j, "shard_rows", label);
    c.data = data_spec_from_json(json_get<json>(j, "data", label).dump(), label + " data");
    // Dumps recorded before the folder was kept went to the default place.
    c.out_dir = json_get_or<std::string>(j, "dir", ws.dir() + "/states/k" + std::to_string(c.k), label);
    return c;
}

StateDumpOutcome dump_states(Workspace& ws, const std::string& model_dir, const StateDumpConfig& cfg_in,
                             const std::function<void(const StateDumpProgress&)>& on_progress,
                             const std::atomic<bool>* cancel) {
    StateDumpConfig cfg = cfg_in;
    const ModelConfig mc = load_model_config(model_dir + "/config.json");
    const std::vector<StateBlock> blocks = make_blocks(mc.num_hidden_layers, cfg.k);  // refuses k = 0 or > L
    if (cfg.shard_rows < 1 || cfg.batch < 1) fail("dump-states: --shard-rows and --batch must be positive");
    if (cfg.out_dir.empty()) cfg.out_dir = ws.dir() + "/states/k" + std::to_string(cfg.k);
    const std::string dir = cfg.out_dir;
    const std::string hash = model_fingerprint(model_dir);
    const json identity = dump_identity(cfg, hash);
    const std::string id_path = dir + "/dump.json", journal = dir + "/progress.jsonl";

    StateDumpOutcome out;
    out.dir = dir;
    // Shards already finished, by (block, split, row_begin): from a whole manifest being
    // re-verified, or from the journal of an interrupted dump.
    std::map<std::tuple<int64_t, std::string, int64_t>, StateShard> done;
    int64_t run = 0;
    if (fs::exists(id_path)) {
        json old = parse_json(read_file(id_path, 1 << 20), id_path);
        for (auto& [field, value] : identity.items())
            if (old.value(field, json()) != value)
                fail(dir, " holds a state dump with another ", field, " (", old.value(field, json()).dump(), " vs ",
                     value.dump(), "); give --out a fresh folder");
        run = json_get<int64_t>(old, "run", id_path);
        if (fs::exists(dir + "/manifest.json")) {
            StateManifest m = load_state_manifest(dir);
            for (auto& s : m.shards) done[{s.block, s.split, s.row_begin}] = s;
        }
        if (fs::exists(journal)) {
            // Keep the lines that parse (a crash can tear the last one) and rewrite the journal clean.
            std::string text = read_file(journal), clean;
            size_t pos = 0;
            while (pos < text.size()) {
                size_t end = text.find('\n', pos);
                if (end == std::string::npos) break;  // torn last line
                std::string line = text.substr(pos, end - pos);
                pos = end + 1;
                try {
                    json j = json::parse(line);
                    StateShard s{j.at("block").get<int64_t>(),     j.at("split").get<std::string>(),
                                 j.at("row_begin").get<int64_t>(), j.at("rows").get<int64_t>(),
                                 j.at("file").get<std::string>(),  j.at("bytes").get<uint64_t>(),
                                 j.at("sha256").get<std::string>()};
                    check_relative_path(s.file, journal);
                    done[{s.block, s.split, s.row_begin}] = s;
                    clean += line + "\n";
                } catch (const std::exception&) {
                }
            }
            write_file_atomic(journal, clean);
        }
        // Keep only shards whose files are still intact; the rest are redone.
        for (auto it = done.begin(); it != done.end();)
            it = shard_intact(dir, it->second) ? std::next(it) : done.erase(it);
        if (fs::exists(dir + "/manifest.json")) {
            StateManifest m = load_state_manifest(dir);
            if (done.size() == m.shards.size() && fs::exists(dir + "/" + m.tokens_file) &&
                sha256_file(dir + "/" + m.tokens_file) == m.tokens_sha256) {
                out.run = run;
                out.status = RunStatus::Completed;
                out.already_complete = true;
                out.manifest = m;
                out.bytes = m.total_bytes();
                return out;
            }
            // Damaged: journal what is intact and redo the rest.
            std::string lines;
            for (auto& [key, s] : done) lines += shard_json(s).dump() + "\n";
            write_file_atomic(journal, lines);
            fs::remove(dir + "/manifest.json");
        }
    }

    LlamaModel model = load_llama(model_dir);
    Tokenizer tok = Tokenizer::load_dir(model_dir);
    TokenData data = load_token_data(cfg.data, model, tok, ws.dir() + "/data", hash);
    const int64_t T = cfg.data.seq_len, C = mc.hidden_size;

    StateManifest m;
    m.base_model_hash = hash;
    m.num_layers = mc.num_hidden_layers, m.hidden = C, m.k = cfg.k, m.seq_len = T, m.dtype = cfg.dtype;
    m.train_rows = data.train.size(0), m.eval_rows = data.eval.size(0);
    m.data_json = data_spec_to_json(cfg.data);
    m.blocks = blocks;
    m.tokens_file = "tokens.safetensors";

    // The planner's disk figure for these tokens, less what is already on disk.
    PlanInput pin;
    pin.model = plan_model_from_config(mc, model_dir);
    pin.tokens = (m.train_rows + m.eval_rows) * T;
    pin.bytes_per_value = double(dtype_size(cfg.dtype));
    out.needed_bytes = uint64_t(plan_row(pin, cfg.k).disk_bytes);
    uint64_t have = 0;
    for (auto& [key, s] : done) have += s.bytes;
    const uint64_t still = out.needed_bytes - std::min(have, out.needed_bytes);
    const uint64_t free_bytes = free_disk_bytes(dir);
    if (still > free_bytes)
        fail("dump-states: needs ", si_bytes(double(still)), " more for the states of ", blocks.size(),
             " blocks (planner: ", dtype_size(cfg.dtype), " bytes x ", pin.tokens, " tokens x ", C, " hidden x ",
             blocks.size(), " blocks = ", si_bytes(double(out.needed_bytes)), ") but ", fs::absolute(dir).string(),
             " has only ", si_bytes(double(free_bytes)),
             " free; free space, use --dtype bf16, a larger --k, or --out on a bigger disk");

    fs::create_directories(dir);
    if (!run) {
        json config = identity;
        config["dir"] = fs::absolute(dir).lexically_normal().string();  // where `lincat resume` continues it
        run = ws.create_run("default", RunKind::DumpStates, config.dump(), hash);
        json id = identity;
        id["run"] = run;
        write_file_atomic(id_path, id.dump(1));
    }
    out.run = run;
    ws.set_run_pid(run, getpid());
    ws.set_run_status(run, RunStatus::Running);
    emit_event("run", {{"run", run}, {"kind", run_kind_name(RunKind::DumpStates)}});
    try {
        save_tensors(dir + "/" + m.tokens_file, {{"train_tokens", data.train}, {"eval_tokens", data.eval}},
                     {{"base_model_hash", hash}});
        m.tokens_sha256 = sha256_file(dir + "/" + m.tokens_file);

        torch::NoGradGuard ng;
        const int64_t rows_total = m.train_rows + m.eval_rows;
        int64_t rows_done = 0, rows_computed = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (const std::string split : {"train", "eval"}) {
            const torch::Tensor& tokens = split == "train" ? data.train : data.eval;
            const int64_t n = tokens.size(0);
            for (int64_t r0 = 0; r0 < n; r0 += cfg.shard_rows) {
                if (cancel && cancel->load()) {
                    ws.set_run_status(run, RunStatus::Cancelled,
                                      "cancelled after " + std::to_string(rows_done) + " rows");
                    out.status = RunStatus::Cancelled;
                    return out;
                }
                const int64_t rows = std::min(cfg.shard_rows, n - r0);
                bool all_done = true;
                for (auto& b : blocks) all_done = all_done && done.count({b.index, split, r0});
                if (all_done) {
                    out.shards_kept += int64_t(blocks.size());
                    rows_done += rows;
                    continue;
                }
                // The teacher once over these rows: the state entering each block.
                std::vector<std::vector<torch::Tensor>> entering(blocks.size());
                for (int64_t s = 0; s < rows; s += cfg.batch) {
                    auto x = model->embed(tokens.narrow(0, r0 + s, std::min(cfg.batch, rows - s)));
                    for (size_t b = 0; b < blocks.size(); ++b) {
                        entering[b].push_back(x.to(torch_dtype_of(cfg.dtype)));
                        if (b + 1 < blocks.size())
                            x = model->run_layers(x, blocks[b].first_layer, blocks[b].first_layer + blocks[b].layers);
                    }
                }
                for (size_t b = 0; b < blocks.size(); ++b) {
                    if (done.count({blocks[b].index, split, r0})) continue;
                    StateShard sh{blocks[b].index,     split, r0, rows, shard_file(blocks[b].index, split, r0),
                                  m.shard_bytes(rows), ""};
                    fs::create_directories(fs::path(dir + "/" + sh.file).parent_path());
                    save_tensors(dir + "/" + sh.file, {{"hidden_states", torch::cat(entering[b])}},
                                 {{"block", std::to_string(sh.block)}, {"split", split}});
                    sh.sha256 = sha256_file(dir + "/" + sh.file);
                    append_line_durable(journal, shard_json(sh).dump());
                    done[{sh.block, split, r0}] = sh;
                    ++out.shards_written;
                }
                rows_done += rows, rows_computed += rows;
                if (on_progress) {
                    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    double rate = double(rows_computed) / std::max(secs, 1e-9);
                    on_progress({rows_done, rows_total, rate, double(rows_total - rows_done) / std::max(rate, 1e-9)});
                }
            }
        }
        for (auto& b : blocks)
            for (const std::string split : {"train", "eval"})
                for (auto& [key, s] : done)
                    if (s.block == b.index && s.split == split) m.shards.push_back(s);
        // Round-trip through the parser: never write a manifest we would refuse to read.
        const std::string text = state_manifest_to_json(m);
        m = parse_state_manifest(text, dir + "/manifest.json");
        write_file_atomic(dir + "/manifest.json", text);
        fs::remove(journal);
    } catch (const std::exception& e) {
        ws.set_run_status(run, RunStatus::Failed, e.what());
        fail("dump-states: ", e.what(), " (finished shards are kept; rerun the same command to resume)");
    }
    json results = {{"dir", fs::absolute(dir).string()},
                    {"bytes", m.total_bytes()},
                    {"blocks", blocks.size()},
                    {"train_rows", m.train_rows},
                    {"eval_rows", m.eval_rows}};
    ws.set_run_results(run, results.dump());
    ws.set_run_status(run, RunStatus::Completed);
    out.status = RunStatus::Completed;
    out.manifest = m;
    out.bytes = m.total_bytes();
    return out;
}

}  // namespace lincat
