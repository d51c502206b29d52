// lincat position-error: where the hybrid loses — per layer, the attention-output MSE against
// softmax by query position (with the window edge) and by head, over held-out rows. With a run,
// the result is cached in the workspace (analysis/), so the studio can show it again at once.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "attention/linearize.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "data/text_rows.h"
#include "eval/evaluate.h"
#include "eval/position_error.h"
#include "model/model_dir.h"
#include "train/distill_config.h"
#include "train/base_model.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat::cli {

namespace {

// The run whose checkpoint and data a figure is about: an eval run stands for the run it evaluated.
struct RunSource {
    int64_t run = 0;
    std::string checkpoint;
    std::string version;  // the checkpoint record's step and sha256: "best" is rewritten in place
};

std::string checkpoint_version(const Workspace& ws, int64_t run, const std::string& path) {
    std::string v;
    for (auto& c : ws.checkpoints(run))  // oldest first: the newest record of the path wins
        if (c.path == path) v = std::to_string(c.step) + ":" + c.sha256;
    return v;
}

RunSource run_source(const Workspace& ws, int64_t run) {
    RunRecord r = ws.run(run);
    if (r.kind == RunKind::Eval) {
        json cfg = json::parse(r.config_json, nullptr, false);
        const int64_t source = cfg.is_object() ? cfg.value("source_run", int64_t(0)) : 0;
        if (!source) fail("run ", run, " is an evaluation of a checkpoint folder, not of a run; give --checkpoint");
        const std::string ck = cfg.value("checkpoint", std::string());
        return {source, ck, checkpoint_version(ws, source, ck)};
    }
    const std::string ck = run_checkpoint(ws, run);
    return {run, ck, checkpoint_version(ws, run, ck)};
}

void print_table(const PositionError& e) {
    std::printf("%lld held-out rows x %lld positions; %s window %lld: the linear part starts at position %lld\n",
                (long long)e.rows, (long long)e.positions, e.variant.c_str(), (long long)e.window,
                (long long)e.window_edge);
    // Eight position bins; a bin's figure is the mean of its positions.
    const int64_t bins = std::min<int64_t>(8, e.positions), width = (e.positions + bins - 1) / bins;
    std::printf("%6s %12s %12s %8s", "layer", "inside", "beyond", "ratio");
    for (int64_t b = 0; b < bins; ++b)
        std::printf(" %5lld-%-5lld", (long long)(b * width), (long long)std::min(e.positions, (b + 1) * width) - 1);
    std::printf("\n");
    for (size_t l = 0; l < e.layers.size(); ++l) {
        const WindowMeans m = window_means(e.mse[l], e.linear_keys);
        const double in = m.inside, out = m.beyond;
        std::printf("%6lld %12.4g %12.4g %8.3g", (long long)e.layers[l], in, out, in > 0 ? out / in : 0.0);
        for (int64_t b = 0; b < bins; ++b) {
            double s = 0;
            int64_t n = 0;
            for (int64_t t = b * width; t < std::min(e.positions, (b + 1) * width); ++t) s += e.mse[l][size_t(t)], ++n;
            std::printf(" %11.3g", n ? s / double(n) : 0.0);
        }
        std::printf("\n");
    }
    std::printf("mean over layers: inside the window %.4g, beyond it %.4g\n", e.inside_mse, e.beyond_mse);
}

}  // namespace

int cmd_position_error(const Argv& argv) {
    Args a("position-error",
           with_compute_options(
               {{"model", "model folder or cache name", false, "default"},
                {"run", "a run's best checkpoint and its held-out rows (an eval run: the run it evaluated)"},
                {"workspace", "workspace holding --run (the result is cached in its analysis/ folder)"},
                {"checkpoint", "or: a linearized checkpoint folder (with --data)"},
                {"data", "held-out text files, cut into rows of --seq-len", false, "the run's eval split"},
                {"seq-len", "tokens per row", false, "the run's, else min(256, model max)"},
                {"rows", "rows to score", false, "16"},
                {"batch", "rows per forward", false, "4"},
                {"fresh", "recompute even when a cached result exists", true},
                {"json", "print the result as JSON", true}}),
           argv);
    apply_compute_options(a);
    if (a.has("run") && a.has("checkpoint")) fail("give --run N or --checkpoint DIR, not both");
    if (a.has("run") && !a.has("workspace")) fail("--run N needs --workspace DIR (the workspace that holds the run)");
    if (!a.has("run") && !a.has("data")) fail("without --run, give --data FILE (held-out text)\n", a.help());
    const int64_t max_rows = a.get_int("rows", 16);
    if (max_rows < 1) fail("--rows must be at least 1, got ", max_rows);
    const std::string model_dir = resolve_model_dir(a.get("model", "default"));
    ModelConfig mc = load_model_config(model_dir + "/config.json");

    std::optional<Workspace> ws;
    RunSource source;
    DataSpec data;
    data.seq_len = default_seq_len(mc.max_position_embeddings);
    if (a.has("run")) {
        ws.emplace(Workspace::open(a.get("workspace")));
        source = run_source(*ws, a.get_int("run", 0));
        data = run_data_spec(*ws, source.run);
    } else {
        source.checkpoint = a.get("checkpoint", "");
    }
    data.seq_len = a.get_int("seq-len", data.seq_len);
    const std::vector<std::string> files = split_list(a.get("data"));

    // The cache: one file per run and row count, valid while the run's checkpoint is the same
    // (path, step and checksum).
    std::string cache;
    if (ws && files.empty()) {
        cache = ws->dir() + "/analysis/position-error-run-" + std::to_string(source.run) + "-rows-" +
                std::to_string(max_rows) + ".json";
        struct stat st;
        if (!a.flag("fresh") && ::stat(cache.c_str(), &st) == 0) {
            try {
                const std::string text = read_file(cache);
                PositionError cached = position_error_from_json(text, cache);  // checks the figures
                json doc = json::parse(text);
                if (doc.value("checkpoint", std::string()) == source.checkpoint &&
                    doc.value("checkpoint_version", std::string()) == source.version &&
                    doc.value("seq_len", int64_t(0)) == data.seq_len) {
                    if (a.flag("json")) {
                        std::printf("%s\n", doc.dump().c_str());
                    } else {
                        std::printf("(cached: %s)\n", cache.c_str());
                        print_table(cached);
                    }
                    return 0;
                }
            } catch (const std::exception& x) {
                std::fprintf(stderr, "position-error: recomputing: %s\n", x.what());  // a damaged cache
            }
        }
    }

    BaseModel base = load_base_model(model_dir);
    torch::Tensor rows;
    if (!files.empty()) {
        rows = rows_from_text_files(base.tokenizer, files, data.seq_len, "position-error");
    } else {
        rows = load_token_data(data, base.model, base.tokenizer, ws->dir() + "/data", base.hash).eval;
    }
    if (rows.size(0) > max_rows) rows = rows.narrow(0, 0, max_rows);

    std::optional<AppliedCheckpoint> applied;
    if (!source.checkpoint.empty()) {
        applied.emplace(base, source.checkpoint);
    } else {
        torch::manual_seed(0);
        linearize(base.model, DistillConfig{}.linearize);  // fresh feature maps: what attention transfer starts from
    }
    std::fprintf(stderr, "position-error: %lld rows x %lld tokens\n", (long long)rows.size(0), (long long)rows.size(1));
    PositionError e = position_error(base.model, rows, a.get_int("batch", 4));
    json doc = json::parse(position_error_to_json(e));
    doc["checkpoint"] = source.checkpoint;
    doc["checkpoint_version"] = source.version;
    doc["run"] = source.run;
    doc["seq_len"] = data.seq_len;
    if (!cache.empty()) {
        std::filesystem::create_directories(ws->dir() + "/analysis");
        write_file_atomic(cache, doc.dump() + "\n");
    }
    if (a.flag("json"))
        std::printf("%s\n", doc.dump().c_str());
    else
        print_table(e);
    return 0;
}

}  // namespace lincat::cli
