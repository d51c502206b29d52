// What earlier block-wise jobs measured, for the planner (issue 16): every dump job and block
// job records its peak resident memory, throughput and achieved FLOP/s in its run's results;
// this reads them back from a workspace for a model of the plan's shape. `lincat plan` shows
// them next to the predicted figures, and --calibrate replaces the assumed throughput by them.
#pragma once

#include <algorithm>
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
    int64_t peak_tensor_bytes = 0;        // 0 when recorded before jobs tracked their tensors
    int64_t window = 0, feature_dim = 0;  // block jobs' hybrid attention (0: not recorded)
    double tokens_per_second = 0;         // block: training tokens/s; dump: token-layers/s
    double achieved_flops = 0;            // by the planner's FLOP counts
    std::string device;
    // Achieved FLOP/s more than 3x off the median of its kind (a machine shared with other work,
    // or a job too short to time): listed, but left out of the calibration.
    bool outlier = false;
    // The peak above the job's own start: what its part of the model needed (the start is the
    // runtime and libraries, which no model term predicts).
    int64_t peak_above_start() const { return peak_rss_bytes - std::min(baseline_rss_bytes, peak_rss_bytes); }
};

struct PlanMeasurements {
    std::vector<MeasuredJob> jobs;
    // Mean achieved FLOP/s of the dump jobs and of the block jobs that are not outliers (0 when
    // none were measured).
    double dump_flops() const;
    double block_flops() const;
    // The largest peak above its start of the block (dump) jobs with this k (0 when none).
    int64_t block_peak(int64_t k) const;
    int64_t dump_peak(int64_t k) const;
};

// What the planner predicts for this job's own shapes (its k, micro-batch, sequence length and,
// for a block job, window and feature dim; weights as the CPU computes them, in fp32 there):
// the block job's memory, or the dump job's. 0 when the job did not record its shapes.
double predicted_job_bytes(const MeasuredJob& job, const PlanModel& model);

// Jobs of `workspace_dir` whose model has the shape of `model`. Throws naming the workspace when
// it cannot be opened.
PlanMeasurements plan_measurements(const std::string& workspace_dir, const PlanModel& model);

// The plan's input with the measured FLOP/s in place of gpu_flops x utilization (those measured).
PlanInput calibrated(const PlanInput& input, const PlanMeasurements& measured);

}  // namespace lincat
