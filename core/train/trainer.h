// The training loop shared by stage 1 (attention transfer) and stage 2 (LoRA): AdamW with
// gradient accumulation and clipping, ReduceLROnPlateau on the held-out loss, a step record
// per update, periodic evaluations, best and step checkpoints that carry the optimizer and
// the data position (so a killed run resumes exactly), NaN detection and cancellation.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "store/workspace.h"
#include "train/schedule.h"
#include "util/torch_prelude.h"

namespace lincat {

struct TrainProgress {
    int64_t step = 0, steps = 0, tokens = 0;
    double loss = 0, lr = 0, tokens_per_second = 0, eta_seconds = 0;
};

struct TrainHooks {
    // Loss of one micro-batch x (B, T) with its graph; `rows` are x's row indices in the train
    // split (block-wise training reads saved states by row). Fills per-layer figures.
    std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& rows, std::vector<double>& layer)> loss;
    // Held-out loss (the plateau metric) and its per-layer figures.
    std::function<double(std::vector<double>& layer)> evaluate;
    // Writes the trained tensors as a checkpoint folder (atomically) with whatever `extra`
    // writes into it before its checksum is taken; returns the checksum's sha256.
    std::function<std::string(const std::string& dir, const std::function<void(const std::string&)>& extra)> save;
    // Reads them back from a checkpoint folder.
    std::function<void(const std::string& dir)> load;
};

struct TrainOutcome {
    int64_t steps = 0, tokens = 0;
    std::vector<double> initial_layer, final_layer;  // per-layer figures of the first and last evaluation
    double initial_eval = 0, final_eval = 0;
    RunStatus status = RunStatus::Completed;  // or Cancelled (errors throw)
};

// Trains `params` for run `run` (whose folder is run_dir) on rows of `train` (N, T). With
// resume, continues from the run's last checkpoint and forgets the records after it. The
// run's status is set to failed on an error and cancelled on cancel; the caller completes it.
TrainOutcome train_loop(Workspace& ws, int64_t run, const std::string& run_dir, const TrainSchedule& schedule,
                        const torch::Tensor& train, const std::vector<torch::Tensor>& params, const TrainHooks& hooks,
                        bool resume, const std::function<void(const TrainProgress&)>& on_progress,
                        const std::atomic<bool>* cancel);

// The record of `run` if it can be resumed as a `kind` run of the model with fingerprint `hash`.
RunRecord resumable_run(const Workspace& ws, int64_t run, RunKind kind, const std::string& hash,
                        const std::string& model_dir);

// Marks the run as running in this process; returns its checkpoint folder (created).
std::string start_run(Workspace& ws, int64_t run);

// Row indices of global micro-batch g among n rows: a fresh permutation per epoch (seeded).
torch::Tensor batch_indices(int64_t n, int64_t g, int64_t batch, uint64_t seed);
// Those rows of the train split.
torch::Tensor batch_rows(const torch::Tensor& train, int64_t g, int64_t batch, uint64_t seed);

}  // namespace lincat
