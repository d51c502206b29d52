// The k-block planner (DESIGN.md 1.6): for every block size k, the disk for the saved hidden
// states, the GPU memory to train one block, the time, and whether it fits. Pure arithmetic,
// no torch, so the studio and the CLI share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace lincat {

struct PlanModel {
    std::string name;
    int64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, vocab = 0;
    int64_t parameters() const;        // whole model
    int64_t layer_parameters() const;  // one decoder layer
};

// llama-3.1-8b, llama-3.1-70b, llama-3.1-405b, llama-3-8b, mistral-7b, stories15m.
PlanModel plan_preset(const std::string& name);
std::vector<std::string> plan_preset_names();
PlanModel plan_model_from_config(const ModelConfig& config, const std::string& name);

struct PlanInput {
    PlanModel model;
    int64_t tokens = 50'000'000;  // training tokens for attention transfer
    double bytes_per_value = 2;   // saved states and frozen weights (bf16)
    int64_t seq_len = 1024;
    int64_t micro_batch = 1;
    int64_t window = 64, feature_dim = 64;  // hybrid attention (2f features)
    double gpu_bytes = 80e9;                // memory of one GPU
    int64_t gpus = 8;
    double gpu_flops = 989e12;    // dense bf16 peak (H100 SXM)
    double utilization = 0.35;    // achieved fraction of peak
    double disk_limit_bytes = 0;  // 0 = no limit
};

struct PlanRow {
    int64_t k = 0, blocks = 0;
    double disk_bytes = 0;
    double gpu_bytes_per_block = 0;
    double weights_bytes = 0, optimizer_bytes = 0, activation_bytes = 0;  // the terms of gpu_bytes_per_block
    double dump_hours = 0, block_hours = 0, hours_wall = 0;
    bool fits_gpu = false, fits_disk = false, fits = false;
};

struct Plan {
    PlanInput input;
    std::vector<PlanRow> rows;  // k = 1..L
    int64_t recommended_k = 0;  // 0 when nothing fits
    std::string reason;
    const PlanRow* row(int64_t k) const;  // nullptr when the plan has no row for k
};

PlanRow plan_row(const PlanInput& input, int64_t k);  // throws for k outside [1, L]
Plan make_plan(const PlanInput& input);
std::string plan_to_json(const Plan& plan);
// "22.9 TB": a byte count in SI units with one decimal, as the planner tables print it.
std::string si_bytes(double bytes);
// Reads back what plan_to_json wrote (e.g. a plan file given to `lincat slurm --plan`), with
// every number range-checked; errors name `label` and the field.
Plan plan_from_json(const std::string& text, const std::string& label);

}  // namespace lincat
