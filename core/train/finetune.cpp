#include "train/finetune.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "eval/perplexity.h"
#include "model/lora_model.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

namespace fs = std::filesystem;

TrainSchedule FinetuneConfig::default_schedule() {
    TrainSchedule s;
    s.steps = 100;
    s.lr = 3e-4;  // 1e-3 drifted from the teacher within 40 steps on stories15M; LoLCATs: 1e-4 on 8B
    s.eval_every = 25;
    s.checkpoint_every = 25;
    return s;
}

std::string FinetuneConfig::to_json() const {
    const TrainSchedule& s = schedule;
    json j = {{"stage1_run", stage1_run},
              {"stage1_checkpoint", stage1_checkpoint},
              {"lora_rank", lora.rank},
              {"lora_alpha", lora.alpha},
              {"lora_dropout", lora.dropout},
              {"lora_targets", lora.targets},
              {"train_feature_maps", train_feature_maps},
              {"xent_factor", xent_factor},
              {"kd_factor", kd_factor},
              {"text_files", data.text_files},
              {"jsonl_files", data.jsonl_files},
              {"teacher_sequences", data.teacher_sequences},
              {"seq_len", data.seq_len},
              {"eval_fraction", data.eval_fraction},
              {"data_seed", data.seed},
              {"steps", s.steps},
              {"batch_size", s.batch_size},
              {"grad_accum", s.grad_accum},
              {"lr", s.lr},
              {"weight_decay", s.weight_decay},
              {"clip", s.clip},
              {"eval_every", s.eval_every},
              {"checkpoint_every", s.checkpoint_every},
              {"plateau_factor", s.plateau_factor},
              {"plateau_patience", s.plateau_patience},
              {"seed", s.seed}};
    return j.dump();
}

FinetuneConfig FinetuneConfig::from_json(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    FinetuneConfig c;
    c.stage1_run = json_get<int64_t>(j, "stage1_run", label);
    c.stage1_checkpoint = json_get<std::string>(j, "stage1_checkpoint", label);
    c.lora.rank = json_get<int64_t>(j, "lora_rank", label);
    c.lora.alpha = json_get<double>(j, "lora_alpha", label);
    c.lora.dropout = json_get<double>(j, "lora_dropout", label);
    c.lora.targets = j.at("lora_targets").get<std::vector<std::string>>();
    c.train_feature_maps = json_get<bool>(j, "train_feature_maps", label);
    c.xent_factor = json_get<double>(j, "xent_factor", label);
    c.kd_factor = json_get<double>(j, "kd_factor", label);
    c.data.text_files = j.at("text_files").get<std::vector<std::string>>();
    c.data.jsonl_files = j.at("jsonl_files").get<std::vector<std::string>>();
    c.data.teacher_sequences = json_get<int64_t>(j, "teacher_sequences", label);
    c.data.seq_len = json_get<int64_t>(j, "seq_len", label);
    c.data.eval_fraction = json_get<double>(j, "eval_fraction", label);
    c.data.seed = uint64_t(json_get<int64_t>(j, "data_seed", label));
    TrainSchedule& s = c.schedule;
    s.steps = json_get<int64_t>(j, "steps", label);
    s.batch_size = json_get<int64_t>(j, "batch_size", label);
    s.grad_accum = json_get<int64_t>(j, "grad_accum", label);
    s.lr = json_get<double>(j, "lr", label);
    s.weight_decay = json_get<double>(j, "weight_decay", label);
    s.clip = json_get<double>(j, "clip", label);
    s.eval_every = json_get<int64_t>(j, "eval_every", label);
    s.checkpoint_every = json_get<int64_t>(j, "checkpoint_every", label);
    s.plateau_factor = json_get<double>(j, "plateau_factor", label);
    s.plateau_patience = json_get<int64_t>(j, "plateau_patience", label);
    s.seed = uint64_t(json_get<int64_t>(j, "seed", label));
    return c;
}

void fill_from_stage1_run(const Workspace& ws, int64_t stage1_run, FinetuneConfig& c) {
    RunRecord r = ws.run(stage1_run);
    if (r.kind != "distill") fail("run ", stage1_run, " is a '", r.kind, "' run; stage 2 starts from a distill run");
    if (r.status != "completed")
        fail("run ", stage1_run, " is ", r.status, "; finish it first (lincat distill --resume ", stage1_run, ")");
    auto best = ws.best_checkpoint(stage1_run);
    auto ckpt = best ? best : ws.last_checkpoint(stage1_run);
    if (!ckpt) fail("run ", stage1_run, " has no checkpoint");
    DistillConfig d = DistillConfig::from_json(r.config_json, "run " + std::to_string(stage1_run) + " config");
    c.stage1_run = stage1_run;
    c.stage1_checkpoint = ckpt->path;
    c.data = d.data;
}

FinetuneOutcome finetune(Workspace& ws, const std::string& model_dir, const FinetuneConfig& cfg_in,
                         std::optional<int64_t> resume_run,
                         const std::function<void(const TrainProgress&)>& on_progress,
                         const std::atomic<bool>* cancel) {
    FinetuneConfig cfg = cfg_in;
    const std::string hash = model_fingerprint(model_dir);
    int64_t run;
    if (resume_run) {
        run = *resume_run;
        RunRecord r = resumable_run(ws, run, "finetune", hash, model_dir);
        cfg = FinetuneConfig::from_json(r.config_json, "run " + std::to_string(run) + " config");
    } else {
        validate_schedule(cfg.schedule, "finetune");
        if (cfg.stage1_checkpoint.empty()) fail("finetune: no stage-1 checkpoint given");
        if (cfg.xent_factor < 0 || cfg.kd_factor < 0 || cfg.xent_factor + cfg.kd_factor <= 0)
            fail("finetune: xent and kd factors must be >= 0 and not both 0");
        if (cfg.lora.rank <= 0 || !(cfg.lora.alpha > 0) || cfg.lora.dropout < 0 || cfg.lora.dropout >= 1)
            fail("finetune: LoRA needs rank > 0, alpha > 0 and dropout in [0, 1)");
        // Refuse a checkpoint from another model, or bad targets, before a run is recorded.
        std::string ckpt_hash;
        linearization_from_json(read_file(cfg.stage1_checkpoint + "/linearization.json", 1 << 20),
                                cfg.stage1_checkpoint + "/linearization.json", &ckpt_hash);
        if (ckpt_hash != hash) fail(cfg.stage1_checkpoint, " was made from another base model than ", model_dir);
        for (auto& t : cfg.lora.targets)
            if (std::find(lora_target_names().begin(), lora_target_names().end(), t) == lora_target_names().end())
                fail("finetune: LoRA target '", t, "' is not a Llama projection (q_proj ... down_proj)");
        run = ws.create_run("default", "finetune", cfg.to_json(), hash);
    }
    const std::string run_dir = start_run(ws, run);

    LlamaModel teacher = load_llama(model_dir);
    Tokenizer tok = Tokenizer::load_dir(model_dir);
    TokenData data;
    LlamaModel model{nullptr};
    LinearizeOptions lin;
    try {
        data = load_token_data(cfg.data, teacher, tok, ws.dir() + "/data", hash);
        model = load_linearized(model_dir, cfg.stage1_checkpoint);
        lin = linearization_from_json(read_file(cfg.stage1_checkpoint + "/linearization.json", 1 << 20),
                                      cfg.stage1_checkpoint + "/linearization.json", nullptr);
    } catch (const std::exception& e) {
        ws.set_run_status(run, "failed", e.what());
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
        auto in = x.narrow(1, 0, x.size(1) - 1);
        auto logits = model->forward(in).reshape({-1, model->config().vocab_size});
        torch::Tensor loss = torch::zeros({}, logits.options());
        if (cfg.xent_factor > 0) {
            auto target = x.narrow(1, 1, x.size(1) - 1).reshape(-1).to(logits.device());
            loss = loss + cfg.xent_factor * torch::nn::functional::cross_entropy(logits, target);
        }
        if (cfg.kd_factor > 0) {
            torch::Tensor teacher_logp;
            {
                torch::NoGradGuard ng;
                teacher_logp = torch::log_softmax(teacher->forward(in).reshape({-1, logits.size(-1)}), -1);
            }
            auto logp = torch::log_softmax(logits, -1);
            loss = loss + cfg.kd_factor * (teacher_logp.exp() * (teacher_logp - logp)).sum(-1).mean();
        }
        return loss;
    };
    hooks.evaluate = [&](std::vector<double>&) {
        set_lora_training(model, false);
        return sequences_nll(model, data.eval, cfg.schedule.batch_size);
    };
    hooks.save = [&](const std::string& dir) { return save_linear_checkpoint(dir, model, lin, hash, &cfg.lora); };
    hooks.load = [&](const std::string& dir) {
        load_linear_tensors(model, dir);
        load_lora_tensors(model, dir);
    };

    FinetuneOutcome out;
    out.run = run;
    TrainOutcome t = train_loop(ws, run, run_dir, cfg.schedule, data.train, params, hooks, resume_run.has_value(),
                                on_progress, cancel);
    out.status = t.status;
    if (t.status == "cancelled") return out;
    out.steps = t.steps;
    out.tokens = t.tokens;
    auto best = ws.best_checkpoint(run);
    out.checkpoint = best ? best->path : ws.last_checkpoint(run)->path;
    out.teacher_ppl = std::exp(sequences_nll(teacher, data.eval));
    {
        LlamaModel stage1 = load_linearized(model_dir, cfg.stage1_checkpoint);
        out.stage1_ppl = std::exp(sequences_nll(stage1, data.eval));
        LlamaModel student = load_linearized(model_dir, out.checkpoint);
        out.student_ppl = std::exp(sequences_nll(student, data.eval));
    }
    ws.set_run_status(run, "completed");
    return out;
}

}  // namespace lincat
