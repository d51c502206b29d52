#include "train/finetune.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "eval/perplexity.h"
#include "model/lora_model.h"
#include "train/base_model.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "train/distill_loss.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

namespace fs = std::filesystem;

torch::Tensor stage2_loss(LlamaModel& student, LlamaModel& teacher, const torch::Tensor& x, double kd_factor,
                          double xent_factor, bool fused) {
    auto in = x.narrow(1, 0, x.size(1) - 1);
    auto targets = x.narrow(1, 1, x.size(1) - 1).reshape(-1);
    if (!fused) {
        auto logits = student->forward(in).reshape({-1, student->config().vocab_size});
        torch::Tensor teacher_logits;
        if (kd_factor > 0) {
            torch::NoGradGuard ng;
            teacher_logits = teacher->forward(in).reshape({-1, logits.size(-1)});
        }
        return reference_distill_loss(logits, teacher_logits, targets, kd_factor, xent_factor);
    }
    const int64_t C = student->config().hidden_size;
    auto h = student->hidden(in).reshape({-1, C});
    torch::Tensor h_teacher;
    if (kd_factor > 0) {
        torch::NoGradGuard ng;
        h_teacher = teacher->hidden(in).reshape({-1, C});
    } else {
        h_teacher = h.detach();  // unused without KD
    }
    return fused_distill_loss(h, h_teacher, student->head_weight(), targets, kd_factor, xent_factor);
}

void fill_from_stage1_run(const Workspace& ws, int64_t stage1_run, FinetuneConfig& c) {
    RunRecord r = ws.run(stage1_run);
    if (r.kind != RunKind::Distill)
        fail("run ", stage1_run, " is a '", run_kind_name(r.kind), "' run; stage 2 starts from a distill run");
    if (r.status != RunStatus::Completed)
        fail("run ", stage1_run, " is ", run_status_name(r.status), "; finish it first (lincat resume --run ",
             stage1_run, ")");
    auto best = ws.best_checkpoint(stage1_run);
    auto ckpt = best ? best : ws.last_checkpoint(stage1_run);
    if (!ckpt) fail("run ", stage1_run, " has no checkpoint");
    DistillConfig d = DistillConfig::from_json(r.config_json, "run " + std::to_string(stage1_run) + " config");
    c.stage1_run = stage1_run;
    c.stage1_checkpoint = ckpt->path;
    c.data = d.data;
}

FinetuneOutcome finetune(Workspace& ws, BaseModel& base, const FinetuneConfig& cfg_in,
                         std::optional<int64_t> resume_run,
                         const std::function<void(const TrainProgress&)>& on_progress,
                         const std::atomic<bool>* cancel) {
    FinetuneConfig cfg = cfg_in;
    const std::string& hash = base.hash;
    const std::string& model_dir = base.dir;
    int64_t run;
    if (resume_run) {
        run = *resume_run;
        RunRecord r = resumable_run(ws, run, RunKind::Finetune, hash, model_dir);
        cfg = FinetuneConfig::from_json(r.config_json, "run " + std::to_string(run) + " config");
    } else {
        if (cfg.stage1_checkpoint.empty()) fail("finetune: no stage-1 checkpoint given");
        cfg.validate("finetune");
        // Refuse a checkpoint from another model, or bad targets, before a run is recorded.
        std::string ckpt_hash;
        checkpoint_linearization(cfg.stage1_checkpoint, &ckpt_hash);
        if (ckpt_hash != hash) fail(cfg.stage1_checkpoint, " was made from another base model than ", model_dir);
        run = ws.create_run("default", RunKind::Finetune, cfg.to_json(), hash);
    }
    const std::string run_dir = start_run(ws, run);

    // The base model is the teacher; the student is a copy of its weights with the stage-1
    // checkpoint applied (no second read of the folder).
    LlamaModel teacher = base.model;
    TokenData data;
    LlamaModel model{nullptr};
    LinearizeOptions lin;
    try {
        data = load_token_data(cfg.data, teacher, base.tokenizer, ws.dir() + "/data", hash);
        model = copy_model(teacher);
        apply_checkpoint(model, hash, model_dir, cfg.stage1_checkpoint, /*merge_adapters=*/true);
        lin = checkpoint_linearization(cfg.stage1_checkpoint, nullptr);
    } catch (const std::exception& e) {
        ws.set_run_status(run, RunStatus::Failed, e.what());
        throw;
    }
    torch::manual_seed(cfg.schedule.seed);
    attach_lora(model, cfg.lora);
    std::vector<torch::Tensor> params = lora_parameters(model);
    if (cfg.train_feature_maps)
        for (auto& [name, t] : linearized_tensors(model)) params.push_back(t);

    TrainHooks hooks;
    hooks.loss = [&](const torch::Tensor& x, const torch::Tensor&, std::vector<double>&) {
        set_lora_training(model, true);
        return stage2_loss(model, teacher, x, cfg.kd_factor, cfg.xent_factor);
    };
    hooks.evaluate = [&](std::vector<double>&) {
        set_lora_training(model, false);
        return sequences_nll(model, data.eval, cfg.schedule.batch_size);
    };
    hooks.save = [&](const std::string& dir, const std::function<void(const std::string&)>& extra) {
        return save_linear_checkpoint(dir, model, lin, hash, &cfg.lora, extra);
    };
    hooks.load = [&](const std::string& dir) {
        load_linear_tensors(model, dir);
        load_lora_tensors(model, dir);
    };

    FinetuneOutcome out;
    out.run = run;
    TrainOutcome t = train_loop(ws, run, run_dir, cfg.schedule, data.train, params, hooks, resume_run.has_value(),
                                on_progress, cancel);
    out.status = t.status;
    if (t.status == RunStatus::Cancelled) return out;
    out.steps = t.steps;
    out.tokens = t.tokens;
    auto best = ws.best_checkpoint(run);
    out.checkpoint = best ? best->path : ws.last_checkpoint(run)->path;
    out.stage1_checkpoint = cfg.stage1_checkpoint;
    out.eval_rows = data.eval;
    ws.set_run_status(run, RunStatus::Completed);
    return out;
}

void add_heldout_perplexity(BaseModel& base, FinetuneOutcome& o) {
    o.teacher_ppl = std::exp(sequences_nll(base.model, o.eval_rows));
    {
        AppliedCheckpoint stage1(base, o.stage1_checkpoint);
        o.stage1_ppl = std::exp(sequences_nll(base.model, o.eval_rows));
    }
    AppliedCheckpoint student(base, o.checkpoint);
    o.student_ppl = std::exp(sequences_nll(base.model, o.eval_rows));
}

FinetuneOutcome finetune(Workspace& ws, const std::string& model_dir, const FinetuneConfig& config,
                         std::optional<int64_t> resume_run,
                         const std::function<void(const TrainProgress&)>& on_progress,
                         const std::atomic<bool>* cancel) {
    BaseModel base = load_base_model(model_dir);
    FinetuneOutcome o = finetune(ws, base, config, resume_run, on_progress, cancel);
    if (o.status == RunStatus::Completed) add_heldout_perplexity(base, o);
    return o;
}

}  // namespace lincat
