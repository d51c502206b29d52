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
#include "train/base_model.h"
#include "train/distill_config.h"
#include "train/trainer.h"

namespace lincat {

using DistillProgress = TrainProgress;

struct DistillOutcome {
    int64_t run = 0, steps = 0, tokens = 0;
    std::vector<double> layer_mse_initial, layer_mse_final;  // eval split, one per linearized layer
    std::vector<int64_t> layers;                             // trained (the MSE figures' layers)
    std::vector<int64_t> softmax_kept;        // of those, handed back to softmax after training (softmax_share)
    double teacher_ppl = 0, student_ppl = 0;  // held-out (eval split): add_heldout_perplexity
    torch::Tensor eval_rows;                  // that split, for the caller's evaluation
    std::string checkpoint;                   // best checkpoint folder (without softmax_kept's tensors)
    RunStatus status = RunStatus::Created;
    bool frozen_verified = false;  // every base tensor checked unchanged after training
    // train/teacher_cache.h: bytes held (0: not used) and batches served without the teacher.
    int64_t teacher_cache_bytes = 0, teacher_cache_replays = 0;
};

// Starts a new run (resume_run empty) or continues `resume_run` from its last checkpoint, on
// the base model the caller built (its attention cores are given back when it returns). The
// figures are training's; the caller evaluates (add_heldout_perplexity).
DistillOutcome distill(Workspace& ws, BaseModel& base, const DistillConfig& config, std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel = nullptr);
// Teacher and student held-out perplexity of a completed run, on the base model in place.
void add_heldout_perplexity(BaseModel& base, DistillOutcome& outcome);
// Loads the base model, trains, and adds the held-out perplexities.
DistillOutcome distill(Workspace& ws, const std::string& model_dir, const DistillConfig& config,
                       std::optional<int64_t> resume_run,
                       const std::function<void(const DistillProgress&)>& on_progress,
                       const std::atomic<bool>* cancel = nullptr);

}  // namespace lincat
