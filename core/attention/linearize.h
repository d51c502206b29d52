// Swapping softmax attention for hybrid attention in chosen layers of a Llama model.
#pragma once

#include <vector>

#include "attention/hybrid.h"
#include "model/llama.h"

namespace lincat {

// Replaces the attention core of each chosen layer with a fresh HybridAttention (feature
// maps initialised from the global torch seed). The q/k/v/o weights and RoPE stay.
void linearize(LlamaModel& model, const LinearizeOptions& options);

// Parameters a linearization adds (feature maps + gammas) for a config, without building it.
int64_t linearized_parameter_count(const ModelConfig& config, const LinearizeOptions& options);

// The hybrid core of layer i, or nullptr when that layer is softmax.
HybridAttentionImpl* hybrid_core(const LlamaModel& model, int64_t layer);

}  // namespace lincat
