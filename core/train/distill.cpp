#include "train/distill.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <utility>

#include "attention/softmax.h"
#include "attention/transfer.h"
#include "eval/perplexity.h"
#include "train/base_model.h"
#include "train/checkpoint.h"
#include "train/softmax_choice.h"
#include "train/teacher_cache.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

namespace fs = std::filesystem;

DistillOutcome distill(Workspace& ws, BaseModel& base, const DistillConfig& cfg_in, std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel) {
    DistillConfig cfg = cfg_in;
    const std::string& hash = base.hash;
    const std::string& model_dir = base.dir;
    int64_t run;
    if (resume_run) {
        run = *resume_run;
        RunRecord r = resumable_run(ws, run, RunKind::Distill, hash, model_dir);
        cfg = DistillConfig::from_json(r.config_json, "run " + std::to_string(run) + " config");
    } else {
        cfg.data.seed = cfg.schedule.seed;
        table_validate(distill_fields(), cfg, "distill");
        // Refuse bad options (layers, window, feature dim) before a run is recorded.
        linearized_parameter_count(load_model_config(model_dir + "/config.json"), cfg.linearize);
        run = ws.create_run("default", RunKind::Distill, cfg.to_json(), hash);
    }
    const std::string run_dir = start_run(ws, run);

    // Data from the softmax teacher, then students in place of its cores (given back at the end).
    LlamaModel model = base.model;
    TokenData data;
    try {
        data = load_token_data(cfg.data, model, base.tokenizer, ws.dir() + "/data", hash);
    } catch (const std::exception& e) {
        ws.set_run_status(run, RunStatus::Failed, e.what());
        throw;
    }
    std::optional<SavedCores> softmax_cores;
    softmax_cores.emplace(model);
    torch::manual_seed(cfg.schedule.seed);
    linearize(model, cfg.linearize);  // fresh hybrid cores with seeded feature maps
    TransferLayers transfer = wrap_for_transfer(model, cfg.xent_factor > 0);
    const std::vector<int64_t>& layers = transfer.layers;
    std::vector<torch::Tensor> params = transfer.parameters();
    // Fingerprint of every frozen (base) tensor: checked unchanged when training ends.
    auto frozen_fingerprint = [&] {
        torch::NoGradGuard ng;
        std::vector<double> sums;
        for (auto& p : model->named_parameters())
            if (p.key().find(".self_attn.attn.") == std::string::npos)
                sums.push_back(p.value().to(torch::kFloat64).abs().sum().item<double>() +
                               p.value().to(torch::kFloat64).sum().item<double>());
        return sums;
    };
    const std::vector<double> frozen_before = frozen_fingerprint();

    auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return v.empty() ? 0.0 : s / double(v.size());
    };
    // Training rows are ids [0, n_train) of the cache, held-out rows follow them.
    const int64_t n_train = data.train.size(0), n_eval = data.eval.size(0);
    const TeacherCachePlan cache_plan =
        plan_teacher_cache(model->config(), transfer, n_train + n_eval, data.train.size(1),
                           model->model->embed_tokens->weight.element_size(), cfg.teacher_cache_mb << 20);
    std::fprintf(stderr, "%s\n", cache_plan.why.c_str());
    std::optional<TeacherCache> cache;
    if (cache_plan.use) cache.emplace(n_train + n_eval, int64_t(transfer.cores.size()));
    // Every layer's last_mse for rows x (ids `rows`): from the cache, or the teacher's forward
    // (which fills the cache). The students build their graphs in training mode either way.
    int64_t replays = 0;
    auto teacher_pass = [&](const torch::Tensor& x, const torch::Tensor& rows) {
        if (cache && cache->has(rows)) {
            for (size_t i = 0; i < transfer.cores.size(); ++i)
                transfer.cores[i]->student_loss(cache->batch(rows, int64_t(i)));
            ++replays;
            return;
        }
        for (auto& c : transfer.cores) c->keep_teacher = cache.has_value();
        {
            torch::NoGradGuard ng;  // the teacher path; each student builds its own graph
            model->run_through_attention(x, transfer.layers.back());
        }
        if (!cache) return;
        std::vector<TeacherActivations> acts;
        for (auto& c : transfer.cores) acts.push_back(std::exchange(c->last_teacher, {}));
        cache->store(rows, acts);
    };

    TrainHooks hooks;
    // Loss: the layers' mean output MSE x mse_factor (+ the optional attention cross-entropy).
    hooks.loss = [&](const torch::Tensor& x, const torch::Tensor& rows, std::vector<double>& layer) {
        teacher_pass(x, rows);
        return transfer.loss(cfg.mse_factor, cfg.xent_factor, layer);
    };
    hooks.evaluate = [&](std::vector<double>& layer) {
        TransferEvaluation no_graph(transfer);
        layer.assign(transfer.cores.size(), 0.0);
        for (int64_t s = 0; s < n_eval; s += cfg.schedule.batch_size) {
            const int64_t b = std::min(cfg.schedule.batch_size, n_eval - s);
            teacher_pass(data.eval.narrow(0, s, b), torch::arange(n_train + s, n_train + s + b, torch::kLong));
            for (size_t i = 0; i < transfer.cores.size(); ++i)
                layer[i] += transfer.cores[i]->last_mse.item<double>() * double(b);
        }
        for (auto& v : layer) v /= double(n_eval);
        return cfg.mse_factor * mean(layer);
    };
    hooks.save = [&](const std::string& dir, const std::function<void(const std::string&)>& extra) {
        return save_linear_checkpoint(dir, model, cfg.linearize, hash, nullptr, extra);
    };
    hooks.load = [&](const std::string& dir) { load_linear_tensors(model, dir); };

    DistillOutcome out;
    out.run = run;
    out.layers = layers;
    TrainOutcome t = train_loop(ws, run, run_dir, cfg.schedule, data.train, params, hooks, resume_run.has_value(),
                                on_progress, cancel);
    out.teacher_cache_bytes = cache ? cache->bytes() : 0;
    out.teacher_cache_replays = replays;
    if (t.status == RunStatus::Cancelled) {
        out.status = RunStatus::Cancelled;
        return out;
    }

    if (frozen_fingerprint() != frozen_before) {
        ws.set_run_status(run, RunStatus::Failed, "base model weights changed during attention transfer");
        fail("distill: base model weights changed during attention transfer (only feature maps and gammas may train)");
    }
    out.frozen_verified = true;

    // Final report: initial vs final eval MSE per layer; teacher vs student held-out perplexity.
    out.steps = t.steps;
    out.tokens = t.tokens;
    out.layer_mse_initial = t.initial_layer;
    out.layer_mse_final = t.final_layer;
    // Training's best, not a softmax choice a killed run recorded before it was resumed.
    out.checkpoint = ws.last_checkpoint(run)->path;
    for (const CheckpointRecord& c : ws.checkpoints(run))
        if (c.is_best && fs::weakly_canonical(c.path) != fs::weakly_canonical(softmax_choice_dir(run_dir)))
            out.checkpoint = c.path;
    out.eval_rows = data.eval;

    // The students' cores go (and the cached activations with them) before layers are chosen.
    cache.reset();
    softmax_cores.reset();
    if (const int64_t count = softmax_layer_count(cfg.softmax_share, int64_t(layers.size())); count > 0) {
        try {
            // Training rows, as many as the held-out split: those stay unseen for the figures.
            const int64_t n = std::min(n_train, std::max<int64_t>(n_eval, 16));
            SoftmaxChoice choice = keep_best_softmax_layers(ws, run, run_dir, t.steps, base, out.checkpoint,
                                                            data.train.narrow(0, 0, n), count);
            out.checkpoint = choice.checkpoint;
            out.softmax_kept = choice.kept;
        } catch (const std::exception& e) {
            ws.set_run_status(run, RunStatus::Failed, e.what());
            throw;
        }
    }
    ws.set_run_status(run, RunStatus::Completed);
    out.status = RunStatus::Completed;
    return out;
}

void add_heldout_perplexity(BaseModel& base, DistillOutcome& o) {
    o.teacher_ppl = std::exp(sequences_nll(base.model, o.eval_rows));
    AppliedCheckpoint student(base, o.checkpoint);
    o.student_ppl = std::exp(sequences_nll(base.model, o.eval_rows));
}

DistillOutcome distill(Workspace& ws, const std::string& model_dir, const DistillConfig& config,
                       std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel) {
    BaseModel base = load_base_model(model_dir);
    DistillOutcome o = distill(ws, base, config, resume_run, on_progress, cancel);
    if (o.status == RunStatus::Completed) add_heldout_perplexity(base, o);
    return o;
}

}  // namespace lincat
