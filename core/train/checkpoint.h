// Linearized checkpoints: only the trained tensors (feature maps, gammas), in safetensors,
// beside linearization.json (variant, window, feature dim, layers, base-model hash). A
// checkpoint folder is written under a temp name and renamed, so it exists whole or not at all.
#pragma once

#include <functional>
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
// adapters as adapter.safetensors + adapter.json (stage 2), then whatever `extra` writes into
// the folder (the trainer's optimizer.pt and trainer.json), atomically. checksum.txt lists the
// sha256 of every file; returns its own sha256.
std::string save_linear_checkpoint(const std::string& dir, const LlamaModel& model, const LinearizeOptions& o,
                                   const std::string& base_model_hash, const LoraOptions* lora = nullptr,
                                   const std::function<void(const std::string& dir)>& extra = {});
// The same folder from named tensors, without a model (an import): linear = the linearized
// tensors under their model-level names, lora_tensors = PEFT-style adapter names.
std::string save_checkpoint_tensors(const std::string& dir,
                                    const std::vector<std::pair<std::string, torch::Tensor>>& linear,
                                    const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash,
                                    const LoraOptions* lora = nullptr,
                                    const std::vector<std::pair<std::string, torch::Tensor>>& lora_tensors = {},
                                    const std::function<void(const std::string& dir)>& extra = {});
// Reads linearization.json after checking it against checksum.txt.
LinearizeOptions checkpoint_linearization(const std::string& checkpoint_dir, std::string* base_model_hash);

void load_linear_tensors(LlamaModel& model, const std::string& checkpoint_dir);
// Loads every tensor of a (block) checkpoint into the matching linearized tensor of the model,
// which may hold more; each must exist there with its shape. Returns the names loaded.
std::vector<std::string> load_linear_tensors_into(LlamaModel& model, const std::string& checkpoint_dir);
// Loads adapter.safetensors into adapters already attached with the checkpoint's options.
void load_lora_tensors(LlamaModel& model, const std::string& checkpoint_dir);
// The LoRA options of a stage-2 checkpoint, or nullopt for a stage-1 one.
std::optional<LoraOptions> checkpoint_lora(const std::string& checkpoint_dir);

}  // namespace lincat
