#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "store/checksums.h"
#include "train/schedule.h"
#include "util/error.h"
#include "util/events.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

namespace fs = std::filesystem;

namespace {

// Trainer state that a checkpoint must carry besides the tensors.
struct TrainerState {
    int64_t step = 0, tokens = 0;
    PlateauScheduler plateau;
    std::vector<double> initial_layer;
    double initial_eval = 0;
};

std::string trainer_state_json(const TrainerState& s) {
    return json({{"step", s.step},
                 {"tokens", s.tokens},
                 {"lr", s.plateau.lr},
                 {"best_eval", std::isfinite(s.plateau.best) ? json(s.plateau.best) : json(nullptr)},
                 {"bad_evals", s.plateau.bad},
                 {"initial_eval", s.initial_layer},
                 {"initial_eval_loss", s.initial_eval}})
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
    s.initial_layer = j.at("initial_eval").get<std::vector<double>>();
    s.initial_eval = json_get_or<double>(j, "initial_eval_loss", 0.0, label);
    return s;
}

void set_lr(torch::optim::AdamW& opt, double lr) {
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

}  // namespace

RunRecord resumable_run(const Workspace& ws, int64_t run, RunKind kind, const std::string& hash,
                        const std::string& model_dir) {
    RunRecord r = ws.run(run);
    if (r.kind != kind) fail("run ", run, " is a '", run_kind_name(r.kind), "' run, not ", run_kind_name(kind));
    if (r.status == RunStatus::Completed) fail("run ", run, " is already completed");
    if (r.base_model_hash != hash) fail("run ", run, " was made from another base model than ", model_dir);
    return r;
}

std::string start_run(Workspace& ws, int64_t run) {
    ws.set_run_pid(run, getpid());
    ws.set_run_status(run, RunStatus::Running);
    emit_event("run", {{"run", run}, {"kind", run_kind_name(ws.run(run).kind)}});
    const std::string run_dir = ws.dir() + "/checkpoints/run-" + std::to_string(run);
    fs::create_directories(run_dir);
    return run_dir;
}

torch::Tensor batch_indices(int64_t n, int64_t g, int64_t batch, uint64_t seed) {
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
    return torch::tensor(idx);
}

torch::Tensor batch_rows(const torch::Tensor& train, int64_t g, int64_t batch, uint64_t seed) {
    return train.index_select(0, batch_indices(train.size(0), g, batch, seed));
}

TrainOutcome train_loop(Workspace& ws, int64_t run, const std::string& run_dir, const TrainSchedule& cfg,
                        const torch::Tensor& train, const std::vector<torch::Tensor>& params, const TrainHooks& hooks,
                        bool resume, const std::function<void(const TrainProgress&)>& on_progress,
                        const std::atomic<bool>* cancel) {
    for (auto& p : params) p.set_requires_grad(true);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
    TrainerState st;
    st.plateau = {cfg.lr, cfg.plateau_factor, cfg.plateau_patience};
    if (resume) {
        if (auto last = ws.last_checkpoint(run)) {
            hooks.load(last->path);
            verify_checksum(last->path, "optimizer.pt");
            verify_checksum(last->path, "trainer.json");
            // Onto the parameters' device: a run may resume on another machine (CPU <-> GPU).
            torch::load(opt, last->path + "/optimizer.pt",
                        params.empty() ? torch::Device(torch::kCPU) : params.front().device());
            st = trainer_state_from_json(read_file(last->path + "/trainer.json"), last->path + "/trainer.json");
            st.plateau.factor = cfg.plateau_factor, st.plateau.patience = cfg.plateau_patience;
            set_lr(opt, st.plateau.lr);
        }
        ws.forget_after_checkpoint(run, st.step);  // what came after it is redone, recorded once
    }
    auto save = [&](int64_t next_step, bool best) {
        std::string dir = best ? run_dir + "/best" : run_dir + "/step-" + std::to_string(next_step);
        // A step checkpoint also carries what a resume reads, inside the same atomic folder and checksum.
        std::function<void(const std::string&)> resume_files;
        if (!best)
            resume_files = [&](const std::string& tmp) {
                torch::save(opt, tmp + "/optimizer.pt");
                TrainerState s = st;
                s.step = next_step;  // the checkpoint resumes at the next step
                write_file_atomic(tmp + "/trainer.json", trainer_state_json(s));
            };
        std::string sha = hooks.save(dir, resume_files);
        ws.record_checkpoint(run, next_step, dir, sha, best);  // recorded only once whole
    };
    auto evaluate = [&](std::vector<double>& layer) {
        torch::NoGradGuard ng;
        return hooks.evaluate(layer);
    };

    // LINCAT_FAULT_NAN_STEP=N makes step N's loss NaN: the fault-injection tests use it.
    const char* fault = std::getenv("LINCAT_FAULT_NAN_STEP");
    const int64_t fault_nan_step = fault ? std::atoll(fault) : -1;
    const int64_t tokens_per_step = cfg.batch_size * cfg.grad_accum * train.size(1);
    const auto t_start = std::chrono::steady_clock::now();
    const int64_t first_step = st.step;
    TrainOutcome out;
    try {
        if (st.step == 0) {
            st.initial_eval = evaluate(st.initial_layer);
            ws.record_step(run, "eval", {0, 0, st.initial_eval, st.plateau.lr, st.initial_layer});
        }
        for (; st.step < cfg.steps; ++st.step) {
            if (cancel && cancel->load()) {
                ws.set_run_status(run, RunStatus::Cancelled, "cancelled at step " + std::to_string(st.step));
                out.status = RunStatus::Cancelled;
                return out;
            }
            opt.zero_grad();
            double loss_sum = 0;
            std::vector<double> step_layer;
            for (int64_t micro = 0; micro < cfg.grad_accum; ++micro) {
                auto rows = batch_indices(train.size(0), st.step * cfg.grad_accum + micro, cfg.batch_size, cfg.seed);
                auto x = train.index_select(0, rows);
                std::vector<double> layer;
                auto loss = hooks.loss(x, rows, layer) / double(cfg.grad_accum);
                loss.backward();
                loss_sum += loss.item<double>();
                step_layer.resize(layer.size(), 0.0);
                for (size_t i = 0; i < layer.size(); ++i) step_layer[i] += layer[i] / double(cfg.grad_accum);
            }
            if (fault_nan_step == st.step) loss_sum = NAN;  // fault injection for tests
            if (!std::isfinite(loss_sum)) {
                auto last = ws.last_checkpoint(run);
                std::string msg = "loss became " + std::to_string(loss_sum) + " at step " + std::to_string(st.step) +
                                  "; last good checkpoint: " + (last ? last->path : std::string("none"));
                ws.set_run_status(run, RunStatus::Failed, msg);
                fail(msg);
            }
            if (cfg.clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg.clip);
            opt.step();
            st.tokens += tokens_per_step;
            ws.record_step(run, "train", {st.step, st.tokens, loss_sum, st.plateau.lr, step_layer});

            const int64_t done = st.step + 1;
            if (done % cfg.eval_every == 0 || done == cfg.steps) {
                std::vector<double> layer;
                double ev = evaluate(layer);
                ws.record_step(run, "eval", {done, st.tokens, ev, st.plateau.lr, layer});
                emit_event("evaluation", {{"run", run}, {"step", done}, {"loss", ev}, {"layer_mse", layer}});
                if (st.plateau.observe(ev)) save(done, /*best=*/true);
                set_lr(opt, st.plateau.lr);
            }
            if (done % cfg.checkpoint_every == 0 || done == cfg.steps) save(done, false);
            if (on_progress) {
                double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
                double rate = double((done - first_step) * tokens_per_step) / std::max(secs, 1e-9);
                on_progress({done, cfg.steps, st.tokens, loss_sum, st.plateau.lr, rate,
                             double((cfg.steps - done) * tokens_per_step) / std::max(rate, 1e-9)});
            }
        }
    } catch (...) {
        if (ws.run(run).status == RunStatus::Running)
            ws.set_run_status(run, RunStatus::Failed, "interrupted by an error");
        throw;
    }
    out.status = RunStatus::Completed;
    out.steps = st.step;
    out.tokens = st.tokens;
    out.initial_layer = st.initial_layer;
    out.initial_eval = st.initial_eval;
    auto evals = ws.steps(run, "eval");
    if (!evals.empty()) out.final_layer = evals.back().layer_mse, out.final_eval = evals.back().loss;
    return out;
}

}  // namespace lincat
