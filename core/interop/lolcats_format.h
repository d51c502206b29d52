// The LoLCATs checkpoint format as plain data (no torch): its tensor names and its YAML
// configs (HazyResearch/lolcats: src/model/load_model.py, src/trainer/default_lm.py,
// src/model/feature_map.py, src/model/linear_attention/linear_window_attention_{tk,sw}.py,
// configs/model/*.yaml, configs/experiment/finetune_*.yaml).
//
// A distill checkpoint holds, per linearized layer i, model.layers.i.self_attn.feature_map_q.mlp.layer
// and ...feature_map_k.mlp.layer (num_attention_heads, head_dim, feature_dim) and
// ...window_factors (1, H, 1, 1), a logit used through sigmoid; a finetune checkpoint holds
// base_model.model.model.layers.i.self_attn.{q,k,v,o}_proj.lora_{A,B}.default.weight. The
// prefixes vary between their runs (model., model.model., base_model.model.model.).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "attention/spec.h"
#include "model/lora_options.h"

namespace lincat {

enum class LolcatsTensor { FeatureMapQ, FeatureMapK, WindowFactors, LoraA, LoraB };

struct LolcatsKey {
    int64_t layer = 0;
    LolcatsTensor tensor = LolcatsTensor::FeatureMapQ;
    std::string projection;  // LoRA only: q_proj, k_proj, v_proj or o_proj
    bool operator==(const LolcatsKey&) const = default;
};

// The layer and tensor a LoLCATs key names, under any of the prefixes their loaders accept;
// nullopt when the key is not one of theirs.
std::optional<LolcatsKey> parse_lolcats_key(const std::string& key);
// The name LoLCATs writes: model.layers.i.self_attn.... (distill), base_model.model.model.... (LoRA).
std::string lolcats_key_name(const LolcatsKey& key);
// Our checkpoint's name for the same tensor (model.layers.i.self_attn.attn.feature_map_q.layer,
// model.layers.i.self_attn.q_proj.lora_A.weight, ...).
std::string lincat_tensor_name(const LolcatsKey& key);
// PEFT's saved name: base_model.model.model.layers.i.self_attn.q_proj.lora_A.weight (LoRA keys only).
std::string peft_tensor_name(const LolcatsKey& key);

// What a LoLCATs model config (the `attention:` block) means for us. Refuses, naming the
// field, what we cannot reproduce exactly (other attention types, tied or biased kernels,
// half-space maps). tk layers get end alignment and sliding-window decoding: what LoLCATs'
// own forward and generation do.
struct LolcatsAttention {
    LinearizeOptions linearize;
    double init_window_factor = -2.1972245773362196;  // used when the checkpoint has no window_factors
};
LolcatsAttention lolcats_attention_from_yaml(const std::string& text, const std::string& label, int64_t num_layers);
std::string lolcats_model_yaml(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model,
                               const std::string& torch_dtype);

// A LoLCATs finetune config's finetune.kwargs (r, lora_alpha, lora_dropout, target_modules).
LoraOptions lolcats_lora_from_yaml(const std::string& text, const std::string& label);
std::string lolcats_finetune_yaml(const LoraOptions& o);

// PEFT's adapter_config.json for these adapters on a Llama-style causal LM.
std::string peft_adapter_config(const LoraOptions& o, const std::string& base_model);

}  // namespace lincat
