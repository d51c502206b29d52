// Stage 1's options as plain data (no torch), with their field table: the run-config record,
// the CLI options of `lincat distill` and the studio's stage-1 form all come from it.
#pragma once

#include <string>

#include "attention/spec.h"
#include "data/data_spec.h"
#include "train/schedule.h"

namespace lincat {

// Lincat's stage-1 recipe (issue 17; README's ablation table, stories15M at the same tokens):
// Hedgehog f 16 with a learned per-head decay of the linear state, then one layer in eight
// handed back to softmax (softmax_share). LoLCATs' own recipe is f 64, no gate, no softmax
// layer (`lincat ablate` variant 'lolcats'); LinearizeOptions{} stays that, as checkpoints
// and imports read it.
LinearizeOptions default_stage1_linearization();

struct DistillConfig {
    LinearizeOptions linearize = default_stage1_linearization();
    DataSpec data;           // data.seed follows schedule.seed on a new run
    TrainSchedule schedule;  // seed: feature-map init and data order
    double mse_factor = 1000.0;
    double xent_factor = 0.0;  // > 0 adds the attention-weight cross-entropy (quadratic memory)
    // train/teacher_cache.h: speed only (a cached run trains to the same bits as an uncached one).
    int64_t teacher_cache_mb = 2048;
    // train/softmax_choice.h: after training, this share of the linearized layers (rounded up)
    // goes back to softmax, those whose return lowers next-token loss most. 0: all stay linear.
    double softmax_share = 0.125;
    bool operator==(const DistillConfig&) const = default;

    std::string to_json() const;
    // A record from before a field existed reads what that run did, not today's default.
    static DistillConfig from_json(const std::string& text, const std::string& label);
};

// Flat keys: the linearization's, the data's (seed as data_seed), the schedule's, mse_factor, xent_factor.
const FieldTable<DistillConfig>& distill_fields();

}  // namespace lincat
