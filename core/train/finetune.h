// Stage 2 (DESIGN.md 1.5): LoRA on the linearized model, next-token cross-entropy, starting
// from a stage-1 checkpoint. Same records, checkpoints, resume and NaN handling as stage 1
// (train/trainer.h). Checkpoints hold the linearization and the adapters, never base weights.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "data/dataset.h"
#include "model/lora.h"
#include "store/workspace.h"
#include "train/base_model.h"
#include "train/finetune_config.h"
#include "train/trainer.h"

namespace lincat {

struct FinetuneOutcome {
    int64_t run = 0, steps = 0, tokens = 0;
    double teacher_ppl = 0, stage1_ppl = 0, student_ppl = 0;  // held-out (eval split): add_heldout_perplexity
    std::string checkpoint, stage1_checkpoint;
    torch::Tensor eval_rows;  // the held-out split, for the caller's evaluation
    RunStatus status = RunStatus::Created;
};

// One step's loss on token rows x (B, T): the student's next-token distributions against the
// teacher's (kd_factor) and the data (xent_factor) on x[:, :-1] -> x[:, 1:]; the teacher runs
// without grad. fused: from the hidden states in row chunks (train/distill_loss.h); false: the
// reference from whole logits (tests and `lincat bench train`).
torch::Tensor stage2_loss(LlamaModel& student, LlamaModel& teacher, const torch::Tensor& x, double kd_factor,
                          double xent_factor, bool fused = true);

// The data and checkpoint of a stage-1 run, for a finetune config that names only the run.
void fill_from_stage1_run(const Workspace& ws, int64_t stage1_run, FinetuneConfig& config);

// On the base model the caller built (the teacher; the student is a copy of its weights). The
// figures are training's; the caller evaluates (add_heldout_perplexity).
FinetuneOutcome finetune(Workspace& ws, BaseModel& base, const FinetuneConfig& config,
                         std::optional<int64_t> resume_run,
                         const std::function<void(const TrainProgress&)>& on_progress,
                         const std::atomic<bool>* cancel = nullptr);
// Teacher, stage-1 and stage-2 held-out perplexity of a completed run, on the base model in place.
void add_heldout_perplexity(BaseModel& base, FinetuneOutcome& outcome);
// Loads the base model, trains, and adds the held-out perplexities.
FinetuneOutcome finetune(Workspace& ws, const std::string& model_dir, const FinetuneConfig& config,
                         std::optional<int64_t> resume_run,
                         const std::function<void(const TrainProgress&)>& on_progress,
                         const std::atomic<bool>* cancel = nullptr);

}  // namespace lincat
