#include "train/distill.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "attention/softmax.h"
#include "eval/perplexity.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train/transfer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

namespace fs = std::filesystem;

std::string DistillConfig::to_json() const {
    json j = {{"variant", window_kind_name(linearize.window.kind)},
              {"window", linearize.window.size},
              {"feature_map", feature_map_kind_name(linearize.feature_map)},
              {"feature_dim", linearize.feature_dim},
              {"affine", linearize.affine},
              {"layers", linearize.layers},
              {"text_files", data.text_files},
              {"jsonl_files", data.jsonl_files},
              {"teacher_sequences", data.teacher_sequences},
              {"seq_len", data.seq_len},
              {"eval_fraction", data.eval_fraction},
              {"steps", steps},
              {"batch_size", batch_size},
              {"grad_accum", grad_accum},
              {"lr", lr},
              {"weight_decay", weight_decay},
              {"clip", clip},
              {"mse_factor", mse_factor},
              {"xent_factor", xent_factor},
              {"eval_every", eval_every},
              {"checkpoint_every", checkpoint_every},
              {"plateau_factor", plateau_factor},
              {"plateau_patience", plateau_patience},
              {"seed", seed},
              {"data_seed", data.seed}};
    return j.dump();
}

DistillConfig DistillConfig::from_json(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    DistillConfig c;
    c.linearize.window.kind = parse_window_kind(json_get<std::string>(j, "variant", label));
    c.linearize.window.size = json_get<int64_t>(j, "window", label);
    c.linearize.feature_map = parse_feature_map_kind(json_get<std::string>(j, "feature_map", label));
    c.linearize.feature_dim = json_get<int64_t>(j, "feature_dim", label);
    c.linearize.affine = json_get<bool>(j, "affine", label);
    c.linearize.layers = j.at("layers").get<std::vector<int64_t>>();
    c.data.text_files = j.at("text_files").get<std::vector<std::string>>();
    c.data.jsonl_files = j.at("jsonl_files").get<std::vector<std::string>>();
    c.data.teacher_sequences = json_get<int64_t>(j, "teacher_sequences", label);
    c.data.seq_len = json_get<int64_t>(j, "seq_len", label);
    c.data.eval_fraction = json_get<double>(j, "eval_fraction", label);
    c.steps = json_get<int64_t>(j, "steps", label);
    c.batch_size = json_get<int64_t>(j, "batch_size", label);
    c.grad_accum = json_get<int64_t>(j, "grad_accum", label);
    c.lr = json_get<double>(j, "lr", label);
    c.weight_decay = json_get<double>(j, "weight_decay", label);
    c.clip = json_get<double>(j, "clip", label);
    c.mse_factor = json_get<double>(j, "mse_factor", label);
    c.xent_factor = json_get_or<double>(j, "xent_factor", 0.0, label);
    c.eval_every = json_get<int64_t>(j, "eval_every", label);
    c.checkpoint_every = json_get<int64_t>(j, "checkpoint_every", label);
    c.plateau_factor = json_get<double>(j, "plateau_factor", label);
    c.plateau_patience = json_get<int64_t>(j, "plateau_patience", label);
    c.seed = uint64_t(json_get<int64_t>(j, "seed", label));
    c.data.seed = uint64_t(json_get_or<int64_t>(j, "data_seed", int64_t(c.seed), label));  // older runs: same seed
    return c;
}

TrainSchedule DistillConfig::schedule() const {
    TrainSchedule s;
    s.steps = steps, s.batch_size = batch_size, s.grad_accum = grad_accum, s.lr = lr, s.weight_decay = weight_decay;
    s.clip = clip, s.eval_every = eval_every, s.checkpoint_every = checkpoint_every;
    s.plateau_factor = plateau_factor, s.plateau_patience = plateau_patience, s.seed = seed;
    return s;
}

DistillOutcome distill(Workspace& ws, const std::string& model_dir, const DistillConfig& cfg_in,
                       std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel) {
    DistillConfig cfg = cfg_in;
    const std::string hash = model_fingerprint(model_dir);
    int64_t run;
    if (resume_run) {
        run = *resume_run;
        RunRecord r = resumable_run(ws, run, "distill", hash, model_dir);
        cfg = DistillConfig::from_json(r.config_json, "run " + std::to_string(run) + " config");
    } else {
        validate_schedule(cfg.schedule(), "distill");
        cfg.data.seed = cfg.seed;
        // Refuse bad options (layers, window, feature dim) before a run is recorded.
        linearized_parameter_count(load_model_config(model_dir + "/config.json"), cfg.linearize);
        run = ws.create_run("default", "distill", cfg.to_json(), hash);
    }
    const std::string run_dir = start_run(ws, run);

    // Build model, data, students, optimizer.
    LlamaModel model = load_llama(model_dir);
    Tokenizer tok = Tokenizer::load_dir(model_dir);
    TokenData data;
    try {
        data = load_token_data(cfg.data, model, tok, ws.dir() + "/data", hash);
    } catch (const std::exception& e) {
        ws.set_run_status(run, "failed", e.what());
        throw;
    }
    torch::manual_seed(cfg.seed);
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
    TrainHooks hooks;
    // Loss: the layers' mean output MSE x mse_factor (+ the optional attention cross-entropy).
    hooks.loss = [&](const torch::Tensor& x, const torch::Tensor&, std::vector<double>& layer) {
        {
            torch::NoGradGuard ng;  // the teacher path; each student builds its own graph
            model->hidden(x);
        }
        return transfer.loss(cfg.mse_factor, cfg.xent_factor, layer);
    };
    hooks.evaluate = [&](std::vector<double>& layer) {
        layer.assign(transfer.cores.size(), 0.0);
        const int64_t n = data.eval.size(0);
        for (int64_t s = 0; s < n; s += cfg.batch_size) {
            const int64_t b = std::min(cfg.batch_size, n - s);
            model->hidden(data.eval.narrow(0, s, b));
            for (size_t i = 0; i < transfer.cores.size(); ++i)
                layer[i] += transfer.cores[i]->last_mse.item<double>() * double(b);
        }
        for (auto& v : layer) v /= double(n);
        return cfg.mse_factor * mean(layer);
    };
    hooks.save = [&](const std::string& dir) { return save_linear_checkpoint(dir, model, cfg.linearize, hash); };
    hooks.load = [&](const std::string& dir) { load_linear_tensors(model, dir); };

    DistillOutcome out;
    out.run = run;
    out.layers = layers;
    TrainOutcome t = train_loop(ws, run, run_dir, cfg.schedule(), data.train, params, hooks, resume_run.has_value(),
                                on_progress, cancel);
    if (t.status == "cancelled") {
        out.status = "cancelled";
        return out;
    }

    if (frozen_fingerprint() != frozen_before) {
        ws.set_run_status(run, "failed", "base model weights changed during attention transfer");
        fail("distill: base model weights changed during attention transfer (only feature maps and gammas may train)");
    }
    out.frozen_verified = true;

    // Final report: initial vs final eval MSE per layer; teacher vs student held-out perplexity.
    out.steps = t.steps;
    out.tokens = t.tokens;
    out.layer_mse_initial = t.initial_layer;
    out.layer_mse_final = t.final_layer;
    auto best = ws.best_checkpoint(run);
    out.checkpoint = best ? best->path : ws.last_checkpoint(run)->path;
    {
        LlamaModel teacher = load_llama(model_dir);
        out.teacher_ppl = std::exp(sequences_nll(teacher, data.eval));
        LlamaModel student = load_linearized(model_dir, out.checkpoint);
        out.student_ppl = std::exp(sequences_nll(student, data.eval));
    }
    ws.set_run_status(run, "completed");
    out.status = "completed";
    return out;
}

}  // namespace lincat
