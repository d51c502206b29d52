// Stage 1, attention transfer: train only the feature maps and gammas so each hybrid layer's
// output matches its softmax teacher. Recorded step by step in the workspace database;
// checkpoints carry the optimizer and the data position, so a killed run resumes exactly.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attention/linearize.h"
#include "data/dataset.h"
#include "store/workspace.h"
#include "train/trainer.h"

namespace lincat {

struct DistillConfig {
    LinearizeOptions linearize;
    DataSpec data;
    int64_t steps = 200;
    int64_t batch_size = 4;
    int64_t grad_accum = 1;
    double lr = 1e-2;
    double weight_decay = 0.0;
    double clip = 1.0;
    double mse_factor = 1000.0;
    double xent_factor = 0.0;  // > 0 adds the attention-weight cross-entropy (quadratic memory)
    int64_t eval_every = 25;
    int64_t checkpoint_every = 25;
    double plateau_factor = 0.1;
    int64_t plateau_patience = 10;  // evaluations without improvement before the lr drops
    uint64_t seed = 0;              // feature-map init and data order

    TrainSchedule schedule() const;
    std::string to_json() const;
    static DistillConfig from_json(const std::string& text, const std::string& label);
};

using DistillProgress = TrainProgress;

struct DistillOutcome {
    int64_t run = 0, steps = 0, tokens = 0;
    std::vector<double> layer_mse_initial, layer_mse_final;  // eval split, one per linearized layer
    std::vector<int64_t> layers;
    double teacher_ppl = 0, student_ppl = 0;  // held-out (eval split)
    std::string checkpoint;                   // best checkpoint folder
    std::string status;
    bool frozen_verified = false;  // every base tensor checked unchanged after training
};

// Starts a new run (resume_run empty) or continues `resume_run` from its last checkpoint.
DistillOutcome distill(Workspace& ws, const std::string& model_dir, const DistillConfig& config,
                       std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel = nullptr);

}  // namespace lincat
