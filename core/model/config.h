// Model configuration: the fields of a Hugging Face config.json that a Llama-shaped model
// needs: Llama 1/2/3/3.1/3.2, Mistral v0.1-v0.3, Qwen 2.5 (qwen2) and Qwen 3 (qwen3).
// Torch-free so parsers can be fuzzed cheaply. Anything else is refused naming the field.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace lincat {

struct RopeScaling {
    std::string type = "none";  // none | linear | llama3
    double factor = 1.0;
    double low_freq_factor = 1.0;                     // llama3 only
    double high_freq_factor = 4.0;                    // llama3 only
    int64_t original_max_position_embeddings = 8192;  // llama3 only
};

struct ModelConfig {
    std::string model_type = "llama";  // llama | mistral | qwen2 | qwen3
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;
    int64_t head_dim = 0;
    int64_t max_position_embeddings = 2048;
    int64_t sliding_window = 0;  // Mistral (Qwen's only with use_sliding_window); 0 = none
    double rms_norm_eps = 1e-5;
    double rope_theta = 10000.0;
    RopeScaling rope_scaling;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  // q, k, v and o (Llama's attention_bias)
    bool qkv_bias = false;        // q, k and v only (Qwen 2.5)
    bool qk_norm = false;         // RMSNorm over head_dim on q and k before RoPE (Qwen 3)
    bool mlp_bias = false;
    int64_t bos_token_id = 1;
    int64_t eos_token_id = 2;
    std::string torch_dtype = "float32";

    bool has_qkv_bias() const { return attention_bias || qkv_bias; }
    int64_t q_dim() const { return num_attention_heads * head_dim; }
    int64_t kv_dim() const { return num_key_value_heads * head_dim; }
    // (in, out) features of an attention projection: q_proj, k_proj, v_proj or o_proj.
    std::pair<int64_t, int64_t> projection_features(const std::string& projection) const;
    int64_t parameter_count() const;
};

// `label` names the source in error messages (usually the config.json path).
ModelConfig parse_model_config(const std::string& json_text, const std::string& label);
ModelConfig load_model_config(const std::string& path);
// "Llama 3.x", "Qwen 3", ...: what a person calls the family, for summaries.
std::string model_family_name(const ModelConfig& config);
std::string model_config_to_json(const ModelConfig& config);

}  // namespace lincat
