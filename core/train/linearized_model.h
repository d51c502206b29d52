// A linearized model assembled from its base model folder and a checkpoint folder.
#pragma once

#include <optional>
#include <string>

#include "model/llama.h"

namespace lincat {

// Base model + checkpoint -> a linearized model. Checks the base-model hash and the sha256
// recorded in the folder (checksum.txt), so a truncated or altered file is never used. A
// stage-2 checkpoint's adapters are merged into the weights unless merge_adapters is false
// (then they stay attached, e.g. to continue training them).
// Applies a checkpoint to a loaded model of the base with fingerprint base_hash (from
// model_dir, for messages): linearization, trained tensors, and a stage-2 checkpoint's adapters
// (merged, or attached when merge_adapters is false). Every parameter is left frozen.
void apply_checkpoint(LlamaModel& model, const std::string& base_hash, const std::string& model_dir,
                      const std::string& checkpoint_dir, bool merge_adapters);
LlamaModel load_linearized(const std::string& model_dir, const std::string& checkpoint_dir,
                           std::optional<torch::Dtype> dtype = std::nullopt, bool merge_adapters = true);

}  // namespace lincat
