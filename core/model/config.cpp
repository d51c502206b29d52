#include "model/config.h"

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

static void require_positive(int64_t v, const char* field, const std::string& label) {
    if (v <= 0) fail(label, ": field '", field, "' must be positive, got ", v);
}

static RopeScaling parse_rope_scaling(const json& j, const std::string& label) {
    RopeScaling r;
    if (j.is_null()) return r;
    if (!j.is_object()) fail(label, ": field 'rope_scaling' must be an object or null");
    std::string lab = label + " rope_scaling";
    // HF has used both "type" and "rope_type".
    std::string type =
        j.contains("rope_type") ? json_get<std::string>(j, "rope_type", lab) : json_get<std::string>(j, "type", lab);
    if (type == "default") type = "none";
    if (type != "none" && type != "linear" && type != "llama3")
        fail(label, ": rope_scaling type '", type, "' is not supported (supported: linear, llama3)");
    r.type = type;
    r.factor = json_get_or<double>(j, "factor", 1.0, lab);
    if (r.factor <= 0) fail(label, ": rope_scaling.factor must be positive");
    if (type == "llama3") {
        r.low_freq_factor = json_get<double>(j, "low_freq_factor", lab);
        r.high_freq_factor = json_get<double>(j, "high_freq_factor", lab);
        r.original_max_position_embeddings = json_get<int64_t>(j, "original_max_position_embeddings", lab);
        if (r.high_freq_factor <= r.low_freq_factor)
            fail(label, ": rope_scaling.high_freq_factor must exceed low_freq_factor");
        require_positive(r.original_max_position_embeddings, "rope_scaling.original_max_position_embeddings", label);
    }
    return r;
}

static int64_t first_token_id(const json& j, const char* field, int64_t fallback, const std::string& label) {
    if (!j.contains(field) || j.at(field).is_null()) return fallback;
    const json& v = j.at(field);
    if (v.is_array()) {  // Llama 3.1 lists several eos ids; the first is the main one
        if (v.empty() || !v[0].is_number_integer())
            fail(label, ": field '", field, "' must be an integer or a list of integers");
        return v[0].get<int64_t>();
    }
    return json_get<int64_t>(j, field, label);
}

ModelConfig parse_model_config(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    if (!j.is_object()) fail(label, ": expected a JSON object at the top level");
    ModelConfig c;
    c.model_type = json_get_or<std::string>(j, "model_type", "", label);
    if (c.model_type.empty() && j.contains("architectures") && j["architectures"].is_array() &&
        !j["architectures"].empty() && j["architectures"][0].is_string()) {
        std::string arch = j["architectures"][0];
        if (arch == "LlamaForCausalLM") c.model_type = "llama";
        if (arch == "MistralForCausalLM") c.model_type = "mistral";
        if (arch == "Qwen2ForCausalLM") c.model_type = "qwen2";
        if (arch == "Qwen3ForCausalLM") c.model_type = "qwen3";
    }
    if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2" && c.model_type != "qwen3")
        fail(label, ": field 'model_type' is '", c.model_type,
             "', which is not supported (supported: llama, mistral, qwen2, qwen3; mixture-of-experts models such as "
             "mixtral or qwen3_moe are not)");
    for (const char* moe : {"num_experts", "num_local_experts", "num_experts_per_tok", "moe_intermediate_size"})
        if (j.contains(moe) && !j[moe].is_null() && !(j[moe].is_number() && j[moe].get<double>() == 0))
            fail(label, ": field '", moe, "' describes a mixture-of-experts model, which is not supported");
    c.vocab_size = json_get<int64_t>(j, "vocab_size", label);
    c.hidden_size = json_get<int64_t>(j, "hidden_size", label);
    c.intermediate_size = json_get<int64_t>(j, "intermediate_size", label);
    c.num_hidden_layers = json_get<int64_t>(j, "num_hidden_layers", label);
    c.num_attention_heads = json_get<int64_t>(j, "num_attention_heads", label);
    c.num_key_value_heads = json_get_or<int64_t>(j, "num_key_value_heads", c.num_attention_heads, label);
    require_positive(c.vocab_size, "vocab_size", label);
    require_positive(c.hidden_size, "hidden_size", label);
    require_positive(c.intermediate_size, "intermediate_size", label);
    require_positive(c.num_hidden_layers, "num_hidden_layers", label);
    require_positive(c.num_attention_heads, "num_attention_heads", label);
    require_positive(c.num_key_value_heads, "num_key_value_heads", label);
    if (c.num_attention_heads % c.num_key_value_heads != 0)
        fail(label, ": num_attention_heads (", c.num_attention_heads, ") must be a multiple of num_key_value_heads (",
             c.num_key_value_heads, ")");
    if (!j.contains("head_dim") || j["head_dim"].is_null()) {
        if (c.hidden_size % c.num_attention_heads != 0)
            fail(label, ": hidden_size (", c.hidden_size, ") is not divisible by num_attention_heads (",
                 c.num_attention_heads, ") and no head_dim is given");
        c.head_dim = c.hidden_size / c.num_attention_heads;
    } else {
        c.head_dim = json_get<int64_t>(j, "head_dim", label);
    }
    require_positive(c.head_dim, "head_dim", label);
    if (c.head_dim % 2 != 0) fail(label, ": field 'head_dim' must be even for RoPE, got ", c.head_dim);
    // Guard against absurd sizes before anything allocates (and against overflow below).
    if (c.hidden_size > (1 << 20) || c.intermediate_size > (1 << 22) || c.vocab_size > (1 << 24) ||
        c.num_hidden_layers > 4096 || c.num_attention_heads > 4096 || c.head_dim > 4096)
        fail(label, ": model dimensions are implausibly large");

    c.max_position_embeddings = json_get_or<int64_t>(j, "max_position_embeddings", 2048, label);
    require_positive(c.max_position_embeddings, "max_position_embeddings", label);
    c.sliding_window = json_get_or<int64_t>(j, "sliding_window", 0, label);
    if (c.sliding_window < 0) fail(label, ": field 'sliding_window' must not be negative");
    const bool qwen = c.model_type == "qwen2" || c.model_type == "qwen3";
    if (qwen) {
        // Qwen configs carry a sliding_window that only counts with use_sliding_window true,
        // and then only for layers from max_window_layers on: that mix is not supported.
        if (json_get_or<bool>(j, "use_sliding_window", false, label))
            fail(label, ": field 'use_sliding_window' is true; Qwen's per-layer sliding window is not supported");
        c.sliding_window = 0;
    }
    c.rms_norm_eps = json_get_or<double>(j, "rms_norm_eps", 1e-6, label);
    if (c.rms_norm_eps <= 0) fail(label, ": field 'rms_norm_eps' must be positive");
    c.rope_theta = json_get_or<double>(j, "rope_theta", 10000.0, label);
    if (c.rope_theta <= 1) fail(label, ": field 'rope_theta' must be greater than 1");
    c.rope_scaling = parse_rope_scaling(j.value("rope_scaling", json()), label);
    c.tie_word_embeddings = json_get_or<bool>(j, "tie_word_embeddings", false, label);
    c.attention_bias = json_get_or<bool>(j, "attention_bias", false, label);
    if (c.model_type == "qwen2") c.qkv_bias = true, c.attention_bias = false;  // Qwen2Attention: q/k/v bias, no o bias
    c.qk_norm = c.model_type == "qwen3";
    c.mlp_bias = json_get_or<bool>(j, "mlp_bias", false, label);
    c.bos_token_id = first_token_id(j, "bos_token_id", 1, label);
    c.eos_token_id = first_token_id(j, "eos_token_id", 2, label);
    c.torch_dtype = json_get_or<std::string>(j, "torch_dtype", "float32", label);
    if (j.contains("hidden_act") && j["hidden_act"] != "silu")
        fail(label, ": field 'hidden_act' is ", j["hidden_act"].dump(), "; only silu is supported");
    return c;
}

ModelConfig load_model_config(const std::string& path) {
    return parse_model_config(read_file(path, 16 << 20), path);
}

int64_t ModelConfig::parameter_count() const {
    int64_t attn = hidden_size * q_dim() * 2 + hidden_size * kv_dim() * 2;
    if (has_qkv_bias()) attn += q_dim() + 2 * kv_dim();
    if (attention_bias) attn += hidden_size;
    if (qk_norm) attn += 2 * head_dim;
    int64_t mlp = 3 * hidden_size * intermediate_size;
    if (mlp_bias) mlp += 2 * intermediate_size + hidden_size;
    int64_t per_layer = attn + mlp + 2 * hidden_size;
    int64_t embed = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
    return num_hidden_layers * per_layer + embed + hidden_size;
}

std::string model_family_name(const ModelConfig& c) {
    if (c.model_type == "qwen2") return "Qwen 2.5";
    if (c.model_type == "qwen3") return "Qwen 3";
    if (c.model_type == "mistral") return "Mistral";
    if (c.rope_scaling.type == "llama3") return c.tie_word_embeddings ? "Llama 3.2" : "Llama 3.1";
    if (c.vocab_size >= 128000) return "Llama 3";
    return "Llama";
}

std::string model_config_to_json(const ModelConfig& c) {
    json j;
    const char* arch = c.model_type == "mistral" ? "MistralForCausalLM"
                       : c.model_type == "qwen2" ? "Qwen2ForCausalLM"
                       : c.model_type == "qwen3" ? "Qwen3ForCausalLM"
                                                 : "LlamaForCausalLM";
    j["architectures"] = {arch};
    j["model_type"] = c.model_type;
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["intermediate_size"] = c.intermediate_size;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["num_key_value_heads"] = c.num_key_value_heads;
    j["head_dim"] = c.head_dim;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["rms_norm_eps"] = c.rms_norm_eps;
    j["rope_theta"] = c.rope_theta;
    if (c.rope_scaling.type == "none") {
        j["rope_scaling"] = nullptr;
    } else {
        json r = {{"rope_type", c.rope_scaling.type}, {"factor", c.rope_scaling.factor}};
        if (c.rope_scaling.type == "llama3") {
            r["low_freq_factor"] = c.rope_scaling.low_freq_factor;
            r["high_freq_factor"] = c.rope_scaling.high_freq_factor;
            r["original_max_position_embeddings"] = c.rope_scaling.original_max_position_embeddings;
        }
        j["rope_scaling"] = r;
    }
    if (c.sliding_window > 0) j["sliding_window"] = c.sliding_window;
    if (c.model_type == "qwen2" || c.model_type == "qwen3") j["use_sliding_window"] = false;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = c.mlp_bias;
    j["hidden_act"] = "silu";
    j["bos_token_id"] = c.bos_token_id;
    j["eos_token_id"] = c.eos_token_id;
    j["torch_dtype"] = c.torch_dtype;
    return j.dump(2) + "\n";
}

std::pair<int64_t, int64_t> ModelConfig::projection_features(const std::string& p) const {
    if (p == "q_proj") return {hidden_size, q_dim()};
    if (p == "k_proj" || p == "v_proj") return {hidden_size, kv_dim()};
    if (p == "o_proj") return {q_dim(), hidden_size};
    fail("projection '", p, "': q_proj, k_proj, v_proj or o_proj");
}

}  // namespace lincat
