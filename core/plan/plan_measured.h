// What earlier block-wise jobs measured, for the planner (issue 16): every dump job and block
// job records its peak resident memory, throughput and achieved FLOP/s in its run's results;
// this reads them back from a workspace for a model of the plan's shape. `lincat plan` shows
// them next to the predicted figures, and --calibrate replaces the assumed throughput by them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/planner.h"

namespace lincat {

class Workspace;

struct MeasuredJob {
    std::string kind;  // "dump" or "block"
    int64_t run = 0, k = 0, micro_batch = 0, seq_len = 0;
    int64_t peak_rss_bytes = 0, baseline_rss_bytes = 0;
    double tokens_per_second = 0;  // block: training tokens/s; dump: token-layers/s
    double achieved_flops = 0;     // by the planner's FLOP counts
    std::string device;
};

struct PlanMeasurements {
    std::vector<MeasuredJob> jobs;
    // Mean achieved FLOP/s of the dump jobs and of the block jobs (0 when none were measured).
    double dump_flops() const;
    double block_flops() const;
    // The largest peak RSS of the block jobs with this k (0 when none).
    int64_t block_peak_rss(int64_t k) const;
    int64_t dump_peak_rss(int64_t k) const;
};

// Jobs of `workspace_dir` whose model has the shape of `model`. Throws naming the workspace when
// it cannot be opened.
PlanMeasurements plan_measurements(const std::string& workspace_dir, const PlanModel& model);

// The plan's input with the measured FLOP/s in place of gpu_flops x utilization (those measured).
PlanInput calibrated(const PlanInput& input, const PlanMeasurements& measured);

}  // namespace lincat
