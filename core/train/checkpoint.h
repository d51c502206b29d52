// Linearized checkpoints: only the trained tensors (feature maps, gammas), in safetensors,
// beside linearization.json (variant, window, feature dim, layers, base-model hash). A
// checkpoint folder is written under a temp name and renamed, so it exists whole or not at all.
#pragma once

#include <string>
#include <vector>

#include "attention/linearize.h"
#include "model/llama.h"

namespace lincat {

std::string linearization_to_json(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash);
LinearizeOptions linearization_from_json(const std::string& text, const std::string& label,
                                         std::string* base_model_hash);

// The trained tensors of a linearized model (or of its students in transfer mode), with
// their model-level names ("model.layers.N.self_attn.attn.feature_map_q.layer").
std::vector<std::pair<std::string, torch::Tensor>> linearized_tensors(const LlamaModel& model);

// Writes <dir>/linear.safetensors + linearization.json (+ extra files the writer adds) atomically.
// Returns the sha256 of linear.safetensors.
std::string save_linear_checkpoint(const std::string& dir, const LlamaModel& model, const LinearizeOptions& o,
                                   const std::string& base_model_hash);

// Base model + checkpoint -> a linearized model. Checks the base-model hash and the sha256
// recorded in the folder (checksum.txt), so a truncated or altered file is never used.
LlamaModel load_linearized(const std::string& model_dir, const std::string& checkpoint_dir,
                           torch::Dtype dtype = torch::kFloat32);
void load_linear_tensors(LlamaModel& model, const std::string& checkpoint_dir);

// A cheap fingerprint of a model folder: sha256 over config.json and each weight file's
// safetensors header and size.
std::string model_fingerprint(const std::string& model_dir);

}  // namespace lincat
