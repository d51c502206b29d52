// Applying LoRA adapters to a Llama model: attach, list, save names, merge.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"

namespace lincat {

struct LoraSlot {
    std::string name;  // "model.layers.3.self_attn.q_proj"
    Linear* base;
    LoraAdapter* adapter;
};

// Every adaptable projection of the model whose short name is in `targets`.
std::vector<LoraSlot> lora_slots(const LlamaModel& model, const std::vector<std::string>& targets);

// Fresh adapters on the chosen projections (A from the global torch seed, B = 0). The base
// weights stay frozen; the adapters' parameters require grad.
void attach_lora(const LlamaModel& model, const LoraOptions& options);

// Attached adapters as PEFT-style tensors: "<slot>.lora_A.weight" (r, in), "<slot>.lora_B.weight" (out, r).
std::vector<std::pair<std::string, torch::Tensor>> lora_tensors(const LlamaModel& model);
std::vector<torch::Tensor> lora_parameters(const LlamaModel& model);

// Dropout on (training) or off (evaluation) in every attached adapter.
void set_lora_training(const LlamaModel& model, bool on);

// W += scale * B A for every attached adapter, then detaches them: same function, no extra cost.
void merge_lora(const LlamaModel& model);
// Removes every attached adapter without touching the weights (the base model again).
void detach_lora(const LlamaModel& model);

}  // namespace lincat
