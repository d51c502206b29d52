#include "blocks/state_dump.h"

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <map>
#include <optional>

#include "model/fingerprint.h"
#include "model/llama.h"
#include "model/weights.h"
#include "plan/planner.h"
#include "train/checkpoint.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/events.h"
#include "util/file.h"
#include "util/json.h"
#include "util/memory_tracker.h"
#include "util/process_memory.h"
#include "util/warm_up.h"
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
    StateManifest m = parse_state_manifest(read_file(path, kMaxManifestBytes + 1), path);
    if (!m.whole()) fail(path, ": blocks_ready = ", m.blocks_ready, " in a whole dump's manifest");
    return m;
}

StateManifest load_ready_manifest(const std::string& dir, int64_t block) {
    if (fs::exists(dir + "/manifest.json")) return load_state_manifest(dir);
    const std::string path = dir + "/ready.json";
    if (!fs::exists(path))
        fail(dir, ": no manifest.json or ready.json; the states entering block ", block,
             " are not dumped yet (lincat dump-states writes them)");
    StateManifest m = parse_state_manifest(read_file(path, kMaxManifestBytes + 1), path);
    if (block >= 0 && block < int64_t(m.blocks.size()) && !m.block_ready(block))
        fail(path, ": the states entering block ", block, " are not complete yet (blocks 0..", m.blocks_ready - 1,
             " are); wait for its dump job (lincat dump-states --block ", block, ")");
    return m;
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
    warm_up_runtime();
    const MemoryWatch memory;  // before any tensor: the baseline is the runtime and libraries
    const TensorPeakWatch tensors;
    StateDumpConfig cfg = cfg_in;
    const ModelConfig mc = load_model_config(model_dir + "/config.json");
    const std::vector<StateBlock> blocks = make_blocks(mc.num_hidden_layers, cfg.k);  // refuses k = 0 or > L
    const int64_t nb = int64_t(blocks.size());
    if (cfg.shard_rows < 1 || cfg.batch < 1) fail("dump-states: --shard-rows and --batch must be positive");
    if (cfg.block < -1 || cfg.block >= nb)
        fail("dump-states: --block ", cfg.block, " does not exist: k = ", cfg.k, " gives blocks 0..", nb - 1);
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
    json id_file;
    if (fs::exists(id_path)) {
        id_file = parse_json(read_file(id_path, 1 << 20), id_path);
        for (auto& [field, value] : identity.items())
            if (id_file.value(field, json()) != value)
                fail(dir, " holds a state dump with another ", field, " (", id_file.value(field, json()).dump(), " vs ",
                     value.dump(), "); give --out a fresh folder");
        run = json_get<int64_t>(id_file, "run", id_path);
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
                out.blocks_ready = nb;
                return out;
            }
            // Damaged: journal what is intact and redo the rest.
            std::string lines;
            for (auto& [key, s] : done) lines += shard_json(s).dump() + "\n";
            write_file_atomic(journal, lines);
            fs::remove(dir + "/manifest.json");
        }
    }

    // The token rows: reused from the dump's own token file when it is intact (every job after
    // the first), else built; only sampling the teacher needs the whole model, once.
    const std::string tokens_file = "tokens.safetensors", tokens_path = dir + "/" + tokens_file;
    const std::string recorded_tokens_sha = id_file.is_object() ? id_file.value("tokens_sha256", "") : "";
    TokenData data;
    const bool tokens_intact =
        !recorded_tokens_sha.empty() && fs::exists(tokens_path) && sha256_file(tokens_path) == recorded_tokens_sha;
    if (tokens_intact) {
        WeightStore t = WeightStore::open_file(tokens_path);
        data = {t.get("train_tokens", torch::kLong), t.get("eval_tokens", torch::kLong)};
    } else {
        if (cfg.block > 0)
            fail("dump-states --block ", cfg.block, ": ", dir,
                 " has no intact token file yet; the dump of block 0 writes it (run dump-states --block 0 first)");
        Tokenizer tok = Tokenizer::load_dir(model_dir);
        LlamaModel sampler{nullptr};
        if (token_data_needs_teacher(cfg.data, ws.dir() + "/data", hash)) {
            std::fprintf(stderr,
                         "dump-states: sampling the training text from the teacher loads the whole model once "
                         "(give --data files, or reuse cached samples, to stream it)\n");
            sampler = load_llama(model_dir);
        }
        data = load_token_data(cfg.data, sampler, tok, ws.dir() + "/data", hash);
    }
    malloc_trim(0);  // the tokenizer's tables (31 MB for a 32K vocabulary) go back before any block loads
    const int64_t T = cfg.data.seq_len, C = mc.hidden_size;

    StateManifest m;
    m.base_model_hash = hash;
    m.num_layers = mc.num_hidden_layers, m.hidden = C, m.k = cfg.k, m.seq_len = T, m.dtype = cfg.dtype;
    m.train_rows = data.train.size(0), m.eval_rows = data.eval.size(0);
    m.data_json = data_spec_to_json(cfg.data);
    m.blocks = blocks;
    m.tokens_file = tokens_file;

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
        id_file = identity;
        id_file["run"] = run;
        write_file_atomic(id_path, id_file.dump(1));
    }
    out.run = run;
    ws.set_run_pid(run, getpid());
    ws.set_run_status(run, RunStatus::Running);
    emit_event("run", {{"run", run}, {"kind", run_kind_name(RunKind::DumpStates)}});

    auto block_complete = [&](int64_t b) {
        for (const std::string split : {"train", "eval"})
            for (int64_t r0 = 0; r0 < m.rows(split); r0 += cfg.shard_rows)
                if (!done.count({b, split, r0})) return false;
        return true;
    };
    auto ready_count = [&] {
        int64_t n = 0;
        while (n < nb && block_complete(n)) ++n;
        return n;
    };
    // The shards of blocks [0, n), in manifest order.
    auto shards_of_ready = [&](int64_t n) {
        std::vector<StateShard> list;
        for (int64_t b = 0; b < n; ++b)
            for (const std::string split : {"train", "eval"})
                for (auto& [key, s] : done)
                    if (s.block == b && s.split == split) list.push_back(s);
        return list;
    };
    // Round-trip through the parser: never write a manifest we would refuse to read.
    auto write_manifest = [&](StateManifest& mm, const std::string& path) {
        const std::string text = state_manifest_to_json(mm);
        mm = parse_state_manifest(text, path);
        write_file_atomic(path, text);
    };

    const auto t0 = std::chrono::steady_clock::now();
    int64_t layer_tokens = 0;  // tokens x layers pushed through the teacher by this process
    const std::vector<int64_t> todo = cfg.block >= 0 ? std::vector<int64_t>{cfg.block} : [&] {
        std::vector<int64_t> all;
        for (int64_t b = 0; b < nb; ++b) all.push_back(b);
        return all;
    }();
    try {
        if (!tokens_intact) {
            save_tensors(tokens_path, {{"train_tokens", data.train}, {"eval_tokens", data.eval}},
                         {{"base_model_hash", hash}});
            id_file["tokens_sha256"] = sha256_file(tokens_path);
            write_file_atomic(id_path, id_file.dump(1));
        }
        m.tokens_sha256 = json_get<std::string>(id_file, "tokens_sha256", id_path);

        torch::NoGradGuard ng;
        const int64_t rows_per_block = m.train_rows + m.eval_rows;
        const int64_t rows_total = rows_per_block * int64_t(todo.size());
        int64_t rows_done = 0, rows_computed = 0;
        for (int64_t b : todo) {
            // Block 0's input is the embeddings; block b's is block b-1's layers over block b-1's input.
            if (b > 0 && !block_complete(b - 1))
                fail("dump-states: the states entering block ", b, " are computed from block ", b - 1,
                     "'s, which are not complete in ", dir, " (run dump-states --block ", b - 1, " first)");
            const StateBlock* prev = b > 0 ? &blocks[size_t(b - 1)] : nullptr;
            LlamaModel teacher{nullptr};  // loaded only when a shard of this block is missing
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
                    if (done.count({b, split, r0})) {
                        ++out.shards_kept;
                        rows_done += rows;
                        continue;
                    }
                    if (!teacher)
                        teacher = load_llama_part(
                            model_dir, prev ? ModelPart::layers(prev->first_layer, prev->first_layer + prev->layers)
                                            : ModelPart::embeddings_only());
                    std::optional<SafetensorsFile> source;
                    const TensorInfo* source_tensor = nullptr;
                    if (prev) {
                        const StateShard& in = done.at({b - 1, split, r0});
                        source.emplace(SafetensorsFile::open(dir + "/" + in.file));
                        source_tensor = source->find("hidden_states");
                        if (!source_tensor) fail(dir, "/", in.file, ": no tensor 'hidden_states'");
                    }
                    const size_t row_bytes = size_t(T * C) * dtype_size(cfg.dtype);
                    std::vector<torch::Tensor> entering;
                    for (int64_t s = 0; s < rows; s += cfg.batch) {
                        const int64_t bs = std::min(cfg.batch, rows - s);
                        torch::Tensor x;
                        if (!prev) {
                            x = teacher->embed(tokens.narrow(0, r0 + s, bs));
                        } else {
                            const uint8_t* p = source->data(*source_tensor) + size_t(s) * row_bytes;
                            auto saved = torch::from_blob(const_cast<uint8_t*>(p), {bs, T, C},
                                                          torch::TensorOptions().dtype(torch_dtype_of(cfg.dtype)));
                            x = teacher->run_layers(saved, prev->first_layer, prev->first_layer + prev->layers);
                            source->release(*source_tensor, size_t(s) * row_bytes, size_t(bs) * row_bytes);
                            layer_tokens += bs * T * prev->layers;
                        }
                        entering.push_back(x.to(torch::kCPU, torch_dtype_of(cfg.dtype)));
                    }
                    source.reset();
                    StateShard sh{b, split, r0, rows, shard_file(b, split, r0), m.shard_bytes(rows), ""};
                    fs::create_directories(fs::path(dir + "/" + sh.file).parent_path());
                    save_tensors(dir + "/" + sh.file, {{"hidden_states", torch::cat(entering)}},
                                 {{"block", std::to_string(sh.block)}, {"split", split}});
                    sh.sha256 = sha256_file(dir + "/" + sh.file);
                    append_line_durable(journal, shard_json(sh).dump());
                    done[{b, split, r0}] = sh;
                    ++out.shards_written;
                    out.bytes_written += sh.bytes;
                    rows_done += rows, rows_computed += rows;
                    if (on_progress) {
                        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                        double rate = double(rows_computed) / std::max(secs, 1e-9);
                        on_progress(
                            {rows_done, rows_total, rate, double(rows_total - rows_done) / std::max(rate, 1e-9)});
                    }
                }
            }
            // Free block b-1's layers and give their pages back before the next block loads: the
            // heap does not reuse them for the next block's tensors (measured: +42 MB per block).
            teacher = nullptr;
            malloc_trim(0);
            // Blocks whose inputs are complete can be trained now: say so in ready.json.
            const int64_t ready = ready_count();
            if (ready < nb && ready > 0) {
                StateManifest partial = m;
                partial.blocks_ready = ready;
                partial.shards = shards_of_ready(ready);
                write_manifest(partial, dir + "/ready.json");
            }
            emit_event("blocks_ready", {{"run", run}, {"blocks_ready", ready}, {"blocks", nb}});
        }
        out.blocks_ready = ready_count();
        if (out.blocks_ready == nb) {
            m.shards = shards_of_ready(nb);
            write_manifest(m, dir + "/manifest.json");
            fs::remove(journal);
            fs::remove(dir + "/ready.json");
        }
    } catch (const std::exception& e) {
        ws.set_run_status(run, RunStatus::Failed, e.what());
        fail("dump-states: ", e.what(), " (finished shards are kept; rerun the same command to resume)");
    }

    // What this process measured, appended to the run's record of jobs (one per block job on Slurm).
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.tokens_per_second = double(layer_tokens) / std::max(out.seconds, 1e-9);
    out.baseline_rss_bytes = memory.baseline_bytes;
    out.peak_rss_bytes = memory.peak_bytes();
    json results = parse_json(ws.run_results(run).value_or("{}"), "run results");
    if (!results.is_object()) results = json::object();
    json job = {{"blocks", todo},
                {"baseline_rss_bytes", out.baseline_rss_bytes},
                {"peak_rss_bytes", out.peak_rss_bytes},
                {"peak_reset", memory.reset_ok},
                {"peak_tensor_bytes", tensors.peak_bytes()},
                {"layer_tokens", layer_tokens},
                {"layer_tokens_per_second", out.tokens_per_second},
                {"seconds", out.seconds},
                {"bytes_written", out.bytes_written},
                {"micro_batch", cfg.batch},
                {"model_shape", plan_shape_key(pin.model)},
                {"achieved_flops", out.tokens_per_second * dump_flops_per_layer_token(pin.model)},
                {"shard_rows", cfg.shard_rows},
                {"device", compute_text(compute())}};
    if (!results.contains("jobs") || !results["jobs"].is_array()) results["jobs"] = json::array();
    results["jobs"].push_back(job);
    results["dir"] = fs::absolute(dir).string();
    results["blocks"] = nb;
    results["blocks_ready"] = out.blocks_ready;
    results["train_rows"] = m.train_rows;
    results["eval_rows"] = m.eval_rows;
    results["seq_len"] = T;
    results["k"] = cfg.k;
    ws.set_run_pid(run, 0);
    if (out.blocks_ready < nb) {
        results["bytes"] = have + out.bytes_written;
        ws.set_run_results(run, results.dump());
        // Still in progress across jobs: the next block's dump job continues it.
        ws.set_run_status(run, RunStatus::Running,
                          "blocks 0.." + std::to_string(out.blocks_ready - 1) + " of " + std::to_string(nb) + " ready");
        out.status = RunStatus::Running;
        out.manifest = m;
        out.bytes = have + out.bytes_written;
        return out;
    }
    results["bytes"] = m.total_bytes();
    ws.set_run_results(run, results.dump());
    ws.set_run_status(run, RunStatus::Completed);
    out.status = RunStatus::Completed;
    out.manifest = m;
    out.bytes = m.total_bytes();
    return out;
}

}  // namespace lincat
