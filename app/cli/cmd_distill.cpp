// lincat distill: stage 1 (attention transfer), recorded in the workspace database.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/model_dir.h"
#include "train/distill.h"
#include "cli/distill_blocks.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat::cli {

// Training options shared by joint and block-wise stage 1.
static std::vector<OptionSpec> distill_options() {
    return {{"model", "model folder or cache name", false, "default"},
            {"workspace", "workspace folder (created if missing)"},
            {"data", "comma-separated text / .jsonl (Alpaca) files", false, "text sampled from the teacher"},
            {"steps", "optimizer steps", false, "200"},
            {"tokens", "train on about this many tokens (sets --steps)"},
            {"variant", "tk or sw", false, "tk"},
            {"window", "window size w", false, "64"},
            {"feature-map", "softmax_dim, relu, 1+elu, exp_dim", false, "softmax_dim"},
            {"feature-dim", "feature dim f (softmax_dim gives 2f)", false, "64"},
            {"affine", "lambda = 1 - gamma", true},
            {"layers", "comma-separated layers to linearize", false, "all"},
            {"batch-size", "sequences per micro-batch", false, "4"},
            {"grad-accum", "micro-batches per step", false, "1"},
            {"seq-len", "tokens per sequence", false, "min(256, model max)"},
            {"teacher-sequences", "teacher samples when no --data", false, "256"},
            {"lr", "AdamW learning rate", false, "1e-2"},
            {"mse-factor", "weight of the output MSE", false, "1000"},
            {"xent-factor", "weight of the attention-weight cross-entropy", false, "0"},
            {"eval-every", "steps between evaluations", false, "25"},
            {"checkpoint-every", "steps between checkpoints", false, "25"},
            {"seed", "seed for feature maps and data order", false, "0"},
            {"resume", "continue run RUN from its last checkpoint"},
            {"states", "block-wise: a state dump folder (lincat dump-states)"},
            {"block", "block-wise: train only this block (resumes its unfinished run)"},
            {"parallel", "block-wise without --block: blocks trained at once as local processes", false, "1"},
            {"fresh", "block-wise: start a new run even if the block has one", true},
            {"json", "print one JSON object with the results on stdout", true}};
}

static DistillConfig distill_config_from_args(const Args& a, const std::string& model_dir) {
    DistillConfig c;
    c.linearize.window.kind = parse_window_kind(a.get("variant", "tk"));
    c.linearize.window.size = a.get_int("window", 64);
    c.linearize.feature_map = parse_feature_map_kind(a.get("feature-map", "softmax_dim"));
    c.linearize.feature_dim = a.get_int("feature-dim", 64);
    c.linearize.affine = a.flag("affine");
    for (auto& l : split_list(a.get("layers"))) c.linearize.layers.push_back(parse_count(l, "--layers"));
    add_data_files(c.data, a.get("data"));
    ModelConfig mc = load_model_config(model_dir + "/config.json");
    c.data.seq_len = a.get_int("seq-len", std::min<int64_t>(256, mc.max_position_embeddings));
    c.data.teacher_sequences = a.get_int("teacher-sequences", 256);
    c.batch_size = a.get_int("batch-size", 4);
    c.grad_accum = a.get_int("grad-accum", 1);
    c.steps = a.get_int("steps", 200);
    if (a.has("tokens")) {
        int64_t per_step = c.batch_size * c.grad_accum * c.data.seq_len;
        c.steps = std::max<int64_t>(1, (a.get_int("tokens", 0) + per_step - 1) / per_step);
    }
    c.lr = a.get_double("lr", 1e-2);
    c.mse_factor = a.get_double("mse-factor", 1000.0);
    c.xent_factor = a.get_double("xent-factor", 0.0);
    c.eval_every = a.get_int("eval-every", 25);
    c.checkpoint_every = a.get_int("checkpoint-every", 25);
    c.seed = uint64_t(a.get_int("seed", 0));
    if (c.linearize.window.size <= 0) fail("--window must be positive");
    if (c.linearize.feature_dim <= 0) fail("--feature-dim must be positive");
    if (c.eval_every <= 0 || c.checkpoint_every <= 0) fail("--eval-every and --checkpoint-every must be positive");
    return c;
}

void print_distill_outcome(const DistillOutcome& o, bool as_json, bool with_ppl) {
    if (as_json) {
        json j = {{"run", o.run},
                  {"status", o.status},
                  {"steps", o.steps},
                  {"tokens", o.tokens},
                  {"layers", o.layers},
                  {"layer_mse_initial", o.layer_mse_initial},
                  {"layer_mse_final", o.layer_mse_final},
                  {"checkpoint", o.checkpoint}};
        if (with_ppl) j["teacher_ppl"] = o.teacher_ppl, j["student_ppl"] = o.student_ppl;
        std::printf("%s\n", j.dump().c_str());
        return;
    }
    std::printf("run %lld %s: %lld steps, %lld tokens\n", (long long)o.run, o.status.c_str(), (long long)o.steps,
                (long long)o.tokens);
    std::printf("%6s %14s %14s %9s\n", "layer", "mse initial", "mse final", "ratio");
    for (size_t i = 0; i < o.layers.size() && i < o.layer_mse_final.size(); ++i)
        std::printf("%6lld %14.6g %14.6g %8.1fx\n", (long long)o.layers[i], o.layer_mse_initial[i],
                    o.layer_mse_final[i], o.layer_mse_initial[i] / o.layer_mse_final[i]);
    if (with_ppl && o.status == "completed")
        std::printf("held-out perplexity: teacher %.3f, student %.3f (%+.1f%%)\n", o.teacher_ppl, o.student_ppl,
                    100.0 * (o.student_ppl / o.teacher_ppl - 1));
    if (o.status == "cancelled")
        std::printf("cancelled; continue with --resume %lld\n", (long long)o.run);
    else
        std::printf("checkpoint: %s\n", o.checkpoint.c_str());
}

int cmd_distill(const Argv& argv) {
    Args a("distill", with_compute_options(distill_options()), argv);
    apply_compute_options(a);
    if (!a.has("workspace")) fail("--workspace DIR is required\n", a.help());
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    Workspace ws = Workspace::open(a.get("workspace"));
    DistillConfig c = distill_config_from_args(a, model_dir);
    if (a.has("states")) return distill_blocks(a, argv, ws, model_dir, c);
    if (a.has("block") || a.has("parallel")) fail("--block and --parallel need --states DIR (a state dump)");
    std::optional<int64_t> resume;
    if (a.has("resume")) resume = a.get_int("resume", 0);

    DistillOutcome o = distill(ws, model_dir, c, resume, progress_printer("distill"), cancel_flag());
    print_distill_outcome(o, a.flag("json"), true);
    return o.status == "completed" ? 0 : 1;
}

}  // namespace lincat::cli
