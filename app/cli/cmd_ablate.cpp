// lincat ablate: linearization variants at the same token budget, into one workspace, with one
// table: held-out ppl vs teacher, top-1, KL, mean and worst layer MSE after stage 1 and after
// stage 2, parameters trained, stage-1 tokens/s and the decode state at the model's length.
#include <chrono>
#include <cstdio>
#include <tuple>

#include "attention/linearize.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/evaluate.h"
#include "model/lora_model.h"
#include "model/model_dir.h"
#include "train/ablation_spec.h"
#include "train/base_model.h"
#include "train/distill.h"
#include "train/finetune.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/events.h"
#include "util/json.h"

namespace lincat::cli {

namespace {

struct Row {
    std::string variant, stage;
    int64_t run = 0, tokens = 0, trained = 0, state_bytes = 0, state_growth = 0;
    double tokens_per_s = 0;
    bool window_covers = false;  // at this length no query ever reaches the linear part
    json eval;
};

// The decode state (linear states, windows, softmax layers' KV caches) after prefilling one
// row of `context` tokens, and what one more decoded token adds (0 when no layer is softmax),
// measured on the model the checkpoint makes.
std::pair<int64_t, int64_t> state_bytes_at(BaseModel& base, const std::string& checkpoint, int64_t context) {
    LlamaModel m = copy_model(base.model);
    apply_checkpoint(m, base.hash, base.dir, checkpoint, /*merge_adapters=*/true);
    torch::NoGradGuard ng;
    ModelState state = m->new_state();
    m->forward(torch::ones({1, context}, torch::kLong), &state);
    const int64_t at = state.bytes();
    m->forward(torch::ones({1, 1}, torch::kLong), &state);
    return {at, state.bytes() - at};
}

int64_t lora_parameter_count(const ModelConfig& c, const LoraOptions& o) {
    int64_t per_layer = 0;
    for (auto& t : o.targets) {
        auto [in, out] = c.projection_features(t);
        per_layer += o.rank * (in + out);
    }
    return per_layer * c.num_hidden_layers;
}

// What the ablation measured beyond the evaluation (kept in the eval run's results too, so the
// studio's run comparison shows the same table).
json ablation_facts(const Row& r, double model_params) {
    return {{"variant", r.variant},
            {"stage", r.stage},
            {"run", r.run},
            {"tokens", r.tokens},
            {"trained_parameters", r.trained},
            {"trained_fraction", double(r.trained) / model_params},
            {"tokens_per_s", r.tokens_per_s},
            {"state_bytes", r.state_bytes},
            {"state_bytes_per_token", r.state_growth},
            {"window_covers_sequence", r.window_covers}};
}

json row_json(const Row& r, double model_params) {
    json j = ablation_facts(r, model_params);
    for (const char* k : {"teacher_ppl", "student_ppl", "top1_agreement", "kl", "layers", "layer_mse"})
        j[k] = r.eval[k];
    return j;
}

// The row into the workspace (its eval run's results) and out as an event.
void record_row(Workspace& ws, const Row& r, double model_params) {
    json doc = r.eval;
    doc["ablation"] = ablation_facts(r, model_params);
    ws.set_run_results(r.eval["run"].get<int64_t>(), doc.dump());
    emit_event("ablation", row_json(r, model_params));
}

void print_table(const std::vector<Row>& rows, double model_params, int64_t context) {
    std::printf("\n%-34s %-8s %6s %10s %7s %8s %10s %16s %9s %9s %10s %9s\n", "variant", "stage", "run", "ppl", "top-1",
                "KL", "mean MSE", "worst MSE", "trained", "tok/s", "state", "+/token");
    for (const Row& r : rows) {
        const double t = r.eval["teacher_ppl"], s = r.eval["student_ppl"];
        const auto& mse = r.eval["layer_mse"];
        double mean = 0, worst = -1;
        int64_t worst_layer = -1;
        for (size_t i = 0; i < mse.size(); ++i) {
            const double v = mse[i];
            mean += v / double(mse.size());
            if (v > worst) worst = v, worst_layer = r.eval["layers"][i];
        }
        char ppl[32], worst_text[32];
        std::snprintf(ppl, sizeof ppl, "%+.2f%%", 100 * (s / t - 1));
        std::snprintf(worst_text, sizeof worst_text, "%.3g (L%lld)", worst, (long long)worst_layer);
        std::printf("%-34s %-8s %6lld %10s %6.2f%% %8.4f %10.3g %16s %8.3f%% %9.0f %8.2fMB %8lldB\n", r.variant.c_str(),
                    r.stage.c_str(), (long long)r.run, ppl, 100 * r.eval["top1_agreement"].get<double>(),
                    r.eval["kl"].get<double>(), mean, worst_text, 100 * double(r.trained) / model_params,
                    r.tokens_per_s, double(r.state_bytes) / 1e6, (long long)r.state_growth);
    }
    std::printf(
        "\nppl: held-out perplexity over the softmax teacher's (%.3f); top-1: agreement with the teacher;\n"
        "KL(teacher || student) nats/token; MSE: attention output per linearized layer (eval split);\n"
        "trained: share of the model's parameters; tok/s: wall-clock training tokens/s of the stage;\n"
        "state: decode state after %lld tokens (linear states, windows, softmax layers' KV cache);\n"
        "+/token: what each further token adds to it (0: constant memory).\n",
        rows.empty() ? 0.0 : rows.front().eval["teacher_ppl"].get<double>(), (long long)context);
}

}  // namespace

int cmd_ablate(const Argv& argv) {
    const std::string default_variants = "lolcats; default; window=16; window=128";
    std::vector<OptionSpec> specs = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder (every run is recorded there)", false, "lincat-ablation"},
        {"variants",
         "';'-separated variants, each space-separated key=value over the stage options "
         "(window=16, variant=sw, keep_softmax=4,5, stage2_lr=1e-3, stage2=off; 'default' = Lincat's defaults, "
         "'lolcats' = LoLCATs' recipe: f 64, no gate, no softmax layer)",
         false, default_variants},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "text sampled from the teacher"},
        {"seq-len", "tokens per sequence, every variant", false, "min(256, model max)"},
        {"teacher-sequences", "teacher samples when no --data, every variant", false, "256"},
        {"stage1-steps", "stage-1 steps for every variant (the same tokens for all)", false, "200"},
        {"stage2-steps", "stage-2 steps (a variant may set stage2_steps)", false, "100"},
        {"json", "print the table as JSON lines", true}};
    Args a("ablate", with_compute_options(specs), argv);
    apply_compute_options(a);
    const std::string model_dir = resolve_model_dir(a.get("model", "default"));
    const std::string ws_dir = a.get("workspace", "lincat-ablation");
    const std::vector<AblationVariant> variants = parse_ablation_variants(a.get("variants", default_variants));
    Workspace ws = Workspace::open(ws_dir);
    const ModelConfig mc = load_model_config(model_dir + "/config.json");

    DistillConfig base_config;
    base_config.data.seq_len = default_seq_len(mc.max_position_embeddings);
    base_config.data.seq_len = a.get_int("seq-len", base_config.data.seq_len);
    base_config.data.teacher_sequences = a.get_int("teacher-sequences", base_config.data.teacher_sequences);
    base_config.schedule.steps = a.get_int("stage1-steps", 200);
    add_data_files(base_config.data, a.get("data"));
    // Every variant's config is checked before the first one trains.
    std::vector<DistillConfig> configs;
    for (auto& v : variants) {
        configs.push_back(ablation_distill_config(v, base_config, mc.num_hidden_layers));
        table_validate(distill_fields(), configs.back(), "variant '" + v.name + "'", false);
    }

    BaseModel base = load_base_model(model_dir);
    const double model_params = double(mc.parameter_count());
    const int64_t context = base_config.data.seq_len;
    std::vector<Row> rows;
    auto evaluate = [&](const std::string& checkpoint, int64_t run, const DataSpec& data) {
        EvalConfig e;
        e.checkpoint = checkpoint;
        e.source_run = run;
        e.data = data;
        return json::parse(evaluate_checkpoint(ws, base, e));
    };
    // Every variant trains on the same rows: build them (sampling the teacher when no --data) once,
    // before any stage is timed, so the first variant's tokens/s measures training only.
    load_token_data(base_config.data, base.model, base.tokenizer, ws.dir() + "/data", base.hash);
    using clock = std::chrono::steady_clock;
    for (size_t i = 0; i < variants.size(); ++i) {
        const AblationVariant& v = variants[i];
        std::fprintf(stderr, "[%zu/%zu] %s: stage 1\n", i + 1, variants.size(), v.name.c_str());
        auto t0 = clock::now();
        DistillOutcome s1 = distill(ws, base, configs[i], std::nullopt, progress_printer("stage 1"), cancel_flag());
        const double s1_seconds = std::chrono::duration<double>(clock::now() - t0).count();
        if (s1.status != RunStatus::Completed)
            fail("variant '", v.name, "': stage 1 (run ", s1.run, ") did not finish");
        Row r1;
        r1.variant = v.name, r1.stage = "stage 1", r1.run = s1.run, r1.tokens = s1.tokens;
        r1.trained = linearized_parameter_count(mc, configs[i].linearize);
        r1.tokens_per_s = double(s1.tokens) / std::max(s1_seconds, 1e-9);
        r1.eval = evaluate(s1.checkpoint, s1.run, configs[i].data);
        std::tie(r1.state_bytes, r1.state_growth) = state_bytes_at(base, s1.checkpoint, context);
        const WindowSpec& w = configs[i].linearize.window;
        r1.window_covers = w.size * (w.kind == WindowKind::Terraced ? 2 : 1) >= context;
        rows.push_back(r1);
        record_row(ws, r1, model_params);
        if (!v.run_stage2) continue;

        std::fprintf(stderr, "[%zu/%zu] %s: stage 2 (from run %lld)\n", i + 1, variants.size(), v.name.c_str(),
                     (long long)s1.run);
        FinetuneConfig f;
        fill_from_stage1_run(ws, s1.run, f);
        f.schedule.steps = a.get_int("stage2-steps", 100);
        f.schedule.seed = configs[i].schedule.seed;
        f = ablation_finetune_config(v, f);
        f.validate("variant '" + v.name + "' stage 2", false);
        t0 = clock::now();
        FinetuneOutcome s2 = finetune(ws, base, f, std::nullopt, progress_printer("stage 2"), cancel_flag());
        const double s2_seconds = std::chrono::duration<double>(clock::now() - t0).count();
        if (s2.status != RunStatus::Completed)
            fail("variant '", v.name, "': stage 2 (run ", s2.run, ") did not finish");
        Row r2 = r1;
        r2.stage = "stage 2", r2.run = s2.run, r2.tokens = s2.tokens;
        r2.trained = r1.trained + lora_parameter_count(mc, f.lora);
        r2.tokens_per_s = double(s2.tokens) / std::max(s2_seconds, 1e-9);
        r2.eval = evaluate(s2.checkpoint, s2.run, f.data);
        rows.push_back(r2);
        record_row(ws, r2, model_params);
    }
    if (a.flag("json")) {
        for (auto& r : rows) std::printf("%s\n", row_json(r, model_params).dump().c_str());
        return 0;
    }
    print_table(rows, model_params, context);
    return 0;
}

}  // namespace lincat::cli
