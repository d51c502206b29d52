// Stage 1's options as plain data (no torch), with their field table: the run-config record,
// the CLI options of `lincat distill` and the studio's stage-1 form all come from it.
#pragma once

#include <string>

#include "attention/spec.h"
#include "data/data_spec.h"
#include "train/schedule.h"

namespace lincat {

struct DistillConfig {
    LinearizeOptions linearize;
    DataSpec data;           // data.seed follows schedule.seed on a new run
    TrainSchedule schedule;  // seed: feature-map init and data order
    double mse_factor = 1000.0;
    double xent_factor = 0.0;  // > 0 adds the attention-weight cross-entropy (quadratic memory)
    // train/teacher_cache.h: speed only (a cached run trains to the same bits as an uncached one).
    int64_t teacher_cache_mb = 2048;
    bool operator==(const DistillConfig&) const = default;

    std::string to_json() const;
    static DistillConfig from_json(const std::string& text, const std::string& label);
};

// Flat keys: the linearization's, the data's (seed as data_seed), the schedule's, mse_factor, xent_factor.
const FieldTable<DistillConfig>& distill_fields();

}  // namespace lincat
