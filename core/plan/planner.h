// The k-block planner (DESIGN.md 1.6): for every block size k, the disk for the saved hidden
// states, the GPU memory to train one block, the time, and whether it fits. Pure arithmetic,
// no torch, so the studio and the CLI share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "train/distill_config.h"

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
// "L126 h16384 H128/8 d128 i53248 v128256": what jobs record so measurements match a plan's model.
std::string plan_shape_key(const PlanModel& model);

struct PlanInput {
    PlanModel model;
    int64_t tokens = 50'000'000;        // training tokens for attention transfer
    double bytes_per_value = 2;         // saved states (bf16)
    double weight_bytes_per_value = 2;  // frozen weights as computed (bf16 on a GPU, 4 for fp32 on a CPU)
    int64_t seq_len = 1024;
    int64_t micro_batch = 1;
    // hybrid attention (2f features): stage 1's defaults
    int64_t window = default_stage1_linearization().window.size,
            feature_dim = default_stage1_linearization().feature_dim;
    double gpu_bytes = 80e9;  // memory of one GPU
    int64_t gpus = 8;
    double gpu_flops = 989e12;     // dense bf16 peak (H100 SXM)
    double utilization = 0.35;     // achieved fraction of peak
    double disk_limit_bytes = 0;   // 0 = no limit
    int64_t dump_micro_batch = 8;  // sequences per teacher forward in the state dump
    // Achieved FLOP/s measured on earlier runs (lincat plan --calibrate); 0 = gpu_flops x utilization.
    double dump_flops_measured = 0, block_flops_measured = 0;
    // Money: on-demand price of one GPU-hour and of one TB of disk for the run (defaults: an H100
    // at a cloud's list price, block storage for about a month); both are user inputs.
    double gpu_hour_price = 3.0, disk_tb_price = 25.0;
};

// FLOPs per token of the planner's time model, shared with the jobs that record achieved FLOP/s:
// the dump pushes each token through layers (2 FLOPs per weight); a block job is the teacher's
// forward of its k layers plus the student's attention forward and backward.
double dump_flops_per_layer_token(const PlanModel& model);
double block_flops_per_token(const PlanModel& model, int64_t k, int64_t window, int64_t feature_dim);

struct PlanRow {
    int64_t k = 0, blocks = 0;
    double disk_bytes = 0;
    double gpu_bytes_per_block = 0;
    double weights_bytes = 0, optimizer_bytes = 0, activation_bytes = 0;  // the terms of gpu_bytes_per_block
    // A streaming dump job holds one block's layers (or the embeddings) and a micro-batch.
    double dump_gpu_bytes = 0;
    // The dump is a chain of one job per block (block b's input needs b-1's); each block trains as
    // soon as its input exists. dump_hours: the chain; hours_wall: dump and training overlapped.
    double dump_hours = 0, block_hours = 0, hours_wall = 0;
    double gpu_hours = 0, cost_gpu = 0, cost_disk = 0, cost = 0;  // cost = GPU-hours x price + disk TB x price
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
