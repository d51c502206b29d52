// ReduceLROnPlateau, as PyTorch's (mode min, relative threshold 1e-4): after more than
// `patience` evaluations without improvement, the learning rate is multiplied by `factor`.
#pragma once

#include <cmath>
#include <cstdint>

#include "util/options.h"

namespace lincat {

// The optimizer schedule of a training stage (AdamW, accumulation, clipping, evaluations,
// checkpoints, ReduceLROnPlateau, data order). Stage 2 starts from other defaults
// (FinetuneConfig), stage 1 from these.
struct TrainSchedule {
    int64_t steps = 200;
    int64_t batch_size = 4;
    int64_t grad_accum = 1;
    double lr = 1e-2;
    double weight_decay = 0.0;
    double clip = 1.0;  // max gradient norm; 0 = no clipping
    int64_t eval_every = 25;
    int64_t checkpoint_every = 25;
    double plateau_factor = 0.1;
    int64_t plateau_patience = 10;  // evaluations without improvement before the lr drops
    uint64_t seed = 0;              // data order (and stage 1's feature-map init)
    bool operator==(const TrainSchedule&) const = default;
};

// {"steps", "batch_size", "grad_accum", "lr", ...}: positive steps, batch, accumulation,
// intervals and learning rate.
const FieldTable<TrainSchedule>& schedule_fields();

struct PlateauScheduler {
    double lr = 1e-2, factor = 0.1;
    int64_t patience = 10;
    double best = INFINITY;
    int64_t bad = 0;

    // Feeds one evaluation; returns true when it is a new best.
    bool observe(double metric) {
        if (metric < best * (1 - 1e-4)) {
            best = metric;
            bad = 0;
            return true;
        }
        if (++bad > patience) {
            lr *= factor;
            bad = 0;
        }
        return false;
    }
};

}  // namespace lincat
