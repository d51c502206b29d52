#include "train/distill.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>

#include "attention/softmax.h"
#include "train/checkpoint.h"
#include "train/schedule.h"
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
              {"seed", seed}};
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
    c.data.seed = c.seed;
    return c;
}

double sequences_perplexity(LlamaModel& model, const torch::Tensor& rows, int64_t batch) {
    torch::NoGradGuard ng;
    double nll = 0;
    int64_t count = 0;
    for (int64_t s = 0; s < rows.size(0); s += batch) {
        auto x = rows.narrow(0, s, std::min(batch, rows.size(0) - s));
        auto logp = torch::log_softmax(model->forward(x), -1);  // (b, T, V)
        auto target = x.narrow(1, 1, x.size(1) - 1).unsqueeze(-1);
        nll -= logp.narrow(1, 0, x.size(1) - 1).gather(2, target).sum().item<double>();
        count += target.numel();
    }
    return std::exp(nll / double(count));
}

namespace {

// Trainer state that a checkpoint must carry besides the tensors.
struct TrainerState {
    int64_t step = 0, tokens = 0;
    PlateauScheduler plateau;
    std::vector<double> initial_eval;
};

std::string trainer_state_json(const TrainerState& s) {
    return json({{"step", s.step},
                 {"tokens", s.tokens},
                 {"lr", s.plateau.lr},
                 {"best_eval", std::isfinite(s.plateau.best) ? json(s.plateau.best) : json(nullptr)},
                 {"bad_evals", s.plateau.bad},
                 {"initial_eval", s.initial_eval}})
        .dump();
}

TrainerState trainer_state_from_json(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    TrainerState s;
    s.step = json_get<int64_t>(j, "step", label);
    s.tokens = json_get<int64_t>(j, "tokens", label);
    s.plateau.lr = json_get<double>(j, "lr", label);
    s.plateau.best = j.at("best_eval").is_null() ? INFINITY : j.at("best_eval").get<double>();
    s.plateau.bad = json_get<int64_t>(j, "bad_evals", label);
    s.initial_eval = j.at("initial_eval").get<std::vector<double>>();
    return s;
}

// Rows of the train split for global micro-batch g: a fresh permutation per epoch (seeded).
torch::Tensor batch_rows(const torch::Tensor& train, int64_t g, int64_t batch, uint64_t seed) {
    const int64_t n = train.size(0);
    std::vector<int64_t> idx;
    int64_t perm_epoch = -1;
    torch::Tensor perm;
    for (int64_t i = 0; i < batch; ++i) {
        int64_t flat = g * batch + i, epoch = flat / n;
        if (epoch != perm_epoch) {  // one permutation per epoch the batch touches (usually one)
            auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003 + uint64_t(epoch));
            perm = torch::randperm(n, gen);
            perm_epoch = epoch;
        }
        idx.push_back(perm[flat % n].item<int64_t>());
    }
    return train.index_select(0, torch::tensor(idx));
}

}  // namespace

DistillOutcome distill(Workspace& ws, const std::string& model_dir, const DistillConfig& cfg_in,
                       std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel) {
    DistillConfig cfg = cfg_in;
    const std::string hash = model_fingerprint(model_dir);
    int64_t run;
    if (resume_run) {
        run = *resume_run;
        RunRecord r = ws.run(run);
        if (r.kind != "distill") fail("run ", run, " is a '", r.kind, "' run, not distill");
        if (r.status == "completed") fail("run ", run, " is already completed");
        if (r.base_model_hash != hash) fail("run ", run, " was made from another base model than ", model_dir);
        cfg = DistillConfig::from_json(r.config_json, "run " + std::to_string(run) + " config");
    } else {
        if (cfg.steps <= 0 || cfg.batch_size <= 0 || cfg.grad_accum <= 0)
            fail("distill: steps, batch and grad-accum must be positive");
        if (!(cfg.lr > 0)) fail("distill: learning rate must be positive");
        cfg.data.seed = cfg.seed;
        // Refuse bad options (layers, window, feature dim) before a run is recorded.
        linearized_parameter_count(load_model_config(model_dir + "/config.json"), cfg.linearize);
        run = ws.create_run("default", "distill", cfg.to_json(), hash);
    }
    ws.set_run_pid(run, getpid());
    ws.set_run_status(run, "running");
    const std::string run_dir = ws.dir() + "/checkpoints/run-" + std::to_string(run);
    fs::create_directories(run_dir);

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
    std::vector<int64_t> layers;
    std::vector<std::shared_ptr<TransferAttentionImpl>> transfer;
    for (int64_t l = 0; l < model->num_layers(); ++l) {
        auto hybrid = std::dynamic_pointer_cast<HybridAttentionImpl>(model->layer(l)->self_attn->core());
        if (!hybrid) continue;
        auto t = std::make_shared<TransferAttentionImpl>(hybrid, model->config().sliding_window, cfg.xent_factor > 0);
        model->layer(l)->self_attn->set_core(t);
        transfer.push_back(t);
        layers.push_back(l);
    }
    std::vector<torch::Tensor> params;
    for (auto& t : transfer)
        for (auto& p : t->student->parameters()) {
            p.set_requires_grad(true);
            params.push_back(p);
        }
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
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

    TrainerState st;
    st.plateau = {cfg.lr, cfg.plateau_factor, cfg.plateau_patience};
    if (resume_run) {
        auto last = ws.last_checkpoint(run);
        if (last) {
            load_linear_tensors(model, last->path);
            torch::load(opt, last->path + "/optimizer.pt");
            st = trainer_state_from_json(read_file(last->path + "/trainer.json"), last->path + "/trainer.json");
            st.plateau.factor = cfg.plateau_factor, st.plateau.patience = cfg.plateau_patience;
            for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(st.plateau.lr);
        }
        ws.forget_after_checkpoint(run, st.step);  // what came after it is redone, recorded once
    }

    auto layer_mses = [&] {
        std::vector<torch::Tensor> m;
        for (auto& t : transfer) m.push_back(t->last_mse);
        return m;
    };
    auto evaluate = [&] {
        torch::NoGradGuard ng;
        std::vector<double> sum(transfer.size(), 0.0);
        const int64_t n = data.eval.size(0);
        for (int64_t s = 0; s < n; s += cfg.batch_size) {
            model->hidden(data.eval.narrow(0, s, std::min(cfg.batch_size, n - s)));
            auto m = layer_mses();
            for (size_t i = 0; i < m.size(); ++i)
                sum[i] += m[i].item<double>() * double(std::min(cfg.batch_size, n - s));
        }
        for (auto& v : sum) v /= double(n);
        return sum;
    };
    auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return v.empty() ? 0.0 : s / double(v.size());
    };
    auto save = [&](int64_t next_step, bool best) {
        std::string dir = best ? run_dir + "/best" : run_dir + "/step-" + std::to_string(next_step);
        std::string sha = save_linear_checkpoint(dir, model, cfg.linearize, hash);
        if (!best) {
            torch::save(opt, dir + "/optimizer.pt.tmp");
            fs::rename(dir + "/optimizer.pt.tmp", dir + "/optimizer.pt");
            TrainerState s = st;
            s.step = next_step;
            write_file_atomic(dir + "/trainer.json", trainer_state_json(s));
        }
        ws.record_checkpoint(run, next_step, dir, sha, best);
        return dir;
    };

    // LINCAT_FAULT_NAN_STEP=N makes step N's loss NaN: the fault-injection tests use it.
    const char* fault = std::getenv("LINCAT_FAULT_NAN_STEP");
    const int64_t fault_nan_step = fault ? std::atoll(fault) : -1;
    const int64_t tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.data.seq_len;
    auto t_start = std::chrono::steady_clock::now();
    const int64_t first_step = st.step;
    DistillOutcome out;
    out.run = run;
    out.layers = layers;
    try {
        if (st.step == 0) {
            st.initial_eval = evaluate();
            ws.record_step(run, "eval", {0, 0, cfg.mse_factor * mean(st.initial_eval), st.plateau.lr, st.initial_eval});
        }
        for (; st.step < cfg.steps; ++st.step) {
            if (cancel && cancel->load()) {
                ws.set_run_status(run, "cancelled", "cancelled at step " + std::to_string(st.step));
                out.status = "cancelled";
                return out;
            }
            // forward, backward, update: x is (B, T); the loss is the layers' mean MSE x mse_factor.
            opt.zero_grad();
            double loss_sum = 0;
            std::vector<double> step_mse(transfer.size(), 0.0);
            for (int64_t micro = 0; micro < cfg.grad_accum; ++micro) {
                auto x = batch_rows(data.train, st.step * cfg.grad_accum + micro, cfg.batch_size, cfg.seed);
                {
                    torch::NoGradGuard ng;
                    model->hidden(x);
                }
                auto m = layer_mses();
                auto loss = cfg.mse_factor * torch::stack(m).mean();
                if (cfg.xent_factor > 0) {
                    std::vector<torch::Tensor> xs;
                    for (auto& t : transfer) xs.push_back(t->last_xent);
                    loss = loss + cfg.xent_factor * torch::stack(xs).mean();
                }
                loss = loss / double(cfg.grad_accum);
                loss.backward();
                loss_sum += loss.item<double>();
                for (size_t i = 0; i < m.size(); ++i) step_mse[i] += m[i].item<double>() / double(cfg.grad_accum);
            }
            if (fault_nan_step == st.step) loss_sum = NAN;  // fault injection for tests
            if (!std::isfinite(loss_sum)) {
                auto last = ws.last_checkpoint(run);
                std::string msg = "loss became " + std::to_string(loss_sum) + " at step " + std::to_string(st.step) +
                                  "; last good checkpoint: " + (last ? last->path : std::string("none"));
                ws.set_run_status(run, "failed", msg);
                fail("distill: ", msg);
            }
            if (cfg.clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg.clip);
            opt.step();
            st.tokens += tokens_per_step;
            ws.record_step(run, "train", {st.step, st.tokens, loss_sum, st.plateau.lr, step_mse});

            const int64_t done = st.step + 1;
            if (done % cfg.eval_every == 0 || done == cfg.steps) {
                auto ev = evaluate();
                double ev_loss = cfg.mse_factor * mean(ev);
                ws.record_step(run, "eval", {done, st.tokens, ev_loss, st.plateau.lr, ev});
                if (st.plateau.observe(ev_loss)) save(done, /*best=*/true);
                for (auto& g : opt.param_groups())
                    static_cast<torch::optim::AdamWOptions&>(g.options()).lr(st.plateau.lr);
            }
            if (done % cfg.checkpoint_every == 0 || done == cfg.steps) {
                TrainerState keep = st;
                st.step = done;  // the checkpoint resumes at the next step
                save(done, false);
                st = keep;
            }
            if (on_progress) {
                double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
                double rate = double((done - first_step) * tokens_per_step) / std::max(secs, 1e-9);
                on_progress({done, cfg.steps, st.tokens, loss_sum, st.plateau.lr, rate,
                             double((cfg.steps - done) * tokens_per_step) / std::max(rate, 1e-9)});
            }
        }
    } catch (...) {
        if (ws.run(run).status == "running") ws.set_run_status(run, "failed", "interrupted by an error");
        throw;
    }

    if (frozen_fingerprint() != frozen_before) {
        ws.set_run_status(run, "failed", "base model weights changed during attention transfer");
        fail("distill: base model weights changed during attention transfer (only feature maps and gammas may train)");
    }
    out.frozen_verified = true;

    // Final report: initial vs final eval MSE per layer; teacher vs student held-out perplexity.
    out.steps = st.step;
    out.tokens = st.tokens;
    out.layer_mse_initial = st.initial_eval;
    auto eval_rows = ws.steps(run, "eval");
    out.layer_mse_final = eval_rows.empty() ? std::vector<double>{} : eval_rows.back().layer_mse;
    auto best = ws.best_checkpoint(run);
    out.checkpoint = best ? best->path : ws.last_checkpoint(run)->path;
    {
        LlamaModel teacher = load_llama(model_dir);
        out.teacher_ppl = sequences_perplexity(teacher, data.eval);
        LlamaModel student = load_linearized(model_dir, out.checkpoint);
        out.student_ppl = sequences_perplexity(student, data.eval);
    }
    ws.set_run_status(run, "completed");
    out.status = "completed";
    return out;
}

}  // namespace lincat
