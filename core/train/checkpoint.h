// Linearized checkpoints: only the trained tensors (feature maps, gammas), in safetensors,
// beside linearization.json (variant, window, feature dim, layers, base-model hash). A
// checkpoint folder is written under a temp name and renamed, so it exists whole or not at all.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attention/linearize.h"
#include "model/llama.h"
#include "model/lora_model.h"

namespace lincat {

// The trained tensors of a linearized model (or of its students in transfer mode), with
// their model-level names ("model.layers.N.self_attn.attn.feature_map_q.layer").
std::vector<std::pair<std::string, torch::Tensor>> linearized_tensors(const LlamaModel& model);

// Writes <dir>/linear.safetensors + linearization.json, and with `lora` the model's attached
// adapters as adapter.safetensors + adapter.json (stage 2), atomically. checksum.txt lists the
// sha256 of each tensor file. Returns the sha256 of checksum.txt (it covers every file).
std::string save_linear_checkpoint(const std::string& dir, const LlamaModel& model, const LinearizeOptions& o,
                                   const std::string& base_model_hash, const LoraOptions* lora = nullptr);

// Base model + checkpoint -> a linearized model. Checks the base-model hash and the sha256
// recorded in the folder (checksum.txt), so a truncated or altered file is never used. A
// stage-2 checkpoint's adapters are merged into the weights unless merge_adapters is false
// (then they stay attached, e.g. to continue training them).
LlamaModel load_linearized(const std::string& model_dir, const std::string& checkpoint_dir,
                           std::optional<torch::Dtype> dtype = std::nullopt, bool merge_adapters = true);
void load_linear_tensors(LlamaModel& model, const std::string& checkpoint_dir);
// Loads every tensor of a (block) checkpoint into the matching linearized tensor of the model,
// which may hold more; each must exist there with its shape. Returns the names loaded.
std::vector<std::string> load_linear_tensors_into(LlamaModel& model, const std::string& checkpoint_dir);
// Loads adapter.safetensors into adapters already attached with the checkpoint's options.
void load_lora_tensors(LlamaModel& model, const std::string& checkpoint_dir);
// The LoRA options of a stage-2 checkpoint, or nullopt for a stage-1 one.
std::optional<LoraOptions> checkpoint_lora(const std::string& checkpoint_dir);

// Folds a checkpoint's adapters (if any) into the base weights and writes a whole Hugging Face
// model folder: config.json, model.safetensors, the tokenizer files, and linearization/ (the
// linearization keyed to the exported weights). Atomic: out_dir appears whole or not at all.
// Returns out_dir + "/linearization".
std::string export_linearized_model(const std::string& model_dir, const std::string& checkpoint_dir,
                                    const std::string& out_dir);

// A cheap fingerprint of a model folder: sha256 over config.json and each weight file's
// safetensors header and size.
std::string model_fingerprint(const std::string& model_dir);

}  // namespace lincat
