#include "interop/lolcats_format.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "util/error.h"
#include "util/json.h"

namespace lincat {

namespace {

const std::vector<std::string>& projections() {
    static const std::vector<std::string> p = {"q_proj", "k_proj", "v_proj", "o_proj"};
    return p;
}

bool is_projection(const std::string& p) {
    return std::find(projections().begin(), projections().end(), p) != projections().end();
}

YAML::Node load_yaml(const std::string& text, const std::string& label) {
    try {
        YAML::Node root = YAML::Load(text);
        if (!root.IsMap()) fail(label, ": is not a YAML mapping");
        return root;
    } catch (const YAML::Exception& e) {
        fail(label, ": not valid YAML: ", e.what());
    }
}

// A scalar of type T at node[key], or `fallback` when the key is absent; errors name the field.
template <typename T>
T field(const YAML::Node& node, const std::string& key, const T& fallback, const std::string& label) {
    YAML::Node v = node[key];
    if (!v || v.IsNull()) return fallback;
    try {
        if (!v.IsScalar()) fail("not a scalar");
        return v.as<T>();
    } catch (const std::exception&) {
        fail(label, ": field '", key, "' has the wrong type (", YAML::Dump(v).substr(0, 40), ")");
    }
}

}  // namespace

std::optional<LolcatsKey> parse_lolcats_key(const std::string& key) {
    static const std::set<std::string> prefixes = {"", "model.", "model.model.", "base_model.model.",
                                                   "base_model.model.model."};
    const size_t at = key.find("layers.");
    if (at == std::string::npos || !prefixes.count(key.substr(0, at))) return std::nullopt;
    size_t p = at + 7, digits = 0;
    int64_t layer = 0;
    while (p < key.size() && key[p] >= '0' && key[p] <= '9' && digits < 7)
        layer = layer * 10 + (key[p++] - '0'), ++digits;
    if (digits == 0 || digits == 7 || (digits > 1 && key[at + 7] == '0')) return std::nullopt;
    const std::string mid = ".self_attn.";
    if (key.compare(p, mid.size(), mid) != 0) return std::nullopt;
    const std::string rest = key.substr(p + mid.size());
    LolcatsKey k;
    k.layer = layer;
    if (rest == "feature_map_q.mlp.layer") {
        k.tensor = LolcatsTensor::FeatureMapQ;
        return k;
    }
    if (rest == "feature_map_k.mlp.layer") {
        k.tensor = LolcatsTensor::FeatureMapK;
        return k;
    }
    if (rest == "window_factors") {
        k.tensor = LolcatsTensor::WindowFactors;
        return k;
    }
    const size_t dot = rest.find('.');
    if (dot == std::string::npos || !is_projection(rest.substr(0, dot))) return std::nullopt;
    const std::string tail = rest.substr(dot + 1);
    if (tail == "lora_A.weight" || tail == "lora_A.default.weight")
        k.tensor = LolcatsTensor::LoraA;
    else if (tail == "lora_B.weight" || tail == "lora_B.default.weight")
        k.tensor = LolcatsTensor::LoraB;
    else
        return std::nullopt;
    k.projection = rest.substr(0, dot);
    return k;
}

static std::string layer_prefix(const std::string& model_prefix, int64_t layer) {
    return model_prefix + "layers." + std::to_string(layer) + ".self_attn.";
}

static const char* lora_part(LolcatsTensor t) {
    return t == LolcatsTensor::LoraA ? "lora_A" : "lora_B";
}

std::string lolcats_key_name(const LolcatsKey& k) {
    switch (k.tensor) {
        case LolcatsTensor::FeatureMapQ:
            return layer_prefix("model.", k.layer) + "feature_map_q.mlp.layer";
        case LolcatsTensor::FeatureMapK:
            return layer_prefix("model.", k.layer) + "feature_map_k.mlp.layer";
        case LolcatsTensor::WindowFactors:
            return layer_prefix("model.", k.layer) + "window_factors";
        case LolcatsTensor::LoraA:
        case LolcatsTensor::LoraB:
            return layer_prefix("base_model.model.model.", k.layer) + k.projection + "." + lora_part(k.tensor) +
                   ".default.weight";
    }
    return "";
}

std::string lincat_tensor_name(const LolcatsKey& k) {
    switch (k.tensor) {
        case LolcatsTensor::FeatureMapQ:
            return layer_prefix("model.", k.layer) + "attn.feature_map_q.layer";
        case LolcatsTensor::FeatureMapK:
            return layer_prefix("model.", k.layer) + "attn.feature_map_k.layer";
        case LolcatsTensor::WindowFactors:
            return layer_prefix("model.", k.layer) + "attn.window_factors";
        case LolcatsTensor::LoraA:
        case LolcatsTensor::LoraB:
            return layer_prefix("model.", k.layer) + k.projection + "." + lora_part(k.tensor) + ".weight";
    }
    return "";
}

std::string peft_tensor_name(const LolcatsKey& k) {
    if (k.tensor != LolcatsTensor::LoraA && k.tensor != LolcatsTensor::LoraB)
        fail("PEFT adapters hold LoRA tensors only, not layer ", k.layer, "'s feature maps");
    return layer_prefix("base_model.model.model.", k.layer) + k.projection + "." + lora_part(k.tensor) + ".weight";
}

LolcatsAttention lolcats_attention_from_yaml(const std::string& text, const std::string& label, int64_t num_layers) {
    YAML::Node root = load_yaml(text, label);
    YAML::Node a = root["attention"] ? root["attention"] : root;
    if (!a.IsMap() || !a["attention_type"]) fail(label, ": has no attention.attention_type (a LoLCATs model config?)");
    const std::string where = label + " attention";
    LolcatsAttention out;
    LinearizeOptions& o = out.linearize;

    const std::string type = field<std::string>(a, "attention_type", "", where);
    if (type == "lolcats_llama_window_tk" || type == "lolcats_llama_window_tk_gen")
        o.window.kind = WindowKind::Terraced;
    else if (type == "lolcats_llama_window_sw")
        o.window.kind = WindowKind::Sliding;
    else
        fail(where, ": attention_type '", type,
             "' is not supported (lolcats_llama_window_tk, lolcats_llama_window_tk_gen, lolcats_llama_window_sw)");
    // LoLCATs' quadratic forward puts tk block edges at n - w, n - 2w, ... and decodes with a
    // sliding window of the last w tokens: the same here, so outputs agree at every length.
    o.window.align = BlockAlign::End;
    o.decode_window = WindowKind::Sliding;
    o.window.size = field<int64_t>(a, "window_size", 64, where);
    if (o.window.size < 1 || o.window.size > 65536) fail(where, ": window_size ", o.window.size, " not in [1, 65536]");
    const int64_t decode = field<int64_t>(a, "decode_window_size", o.window.size, where);
    if (decode != o.window.size)
        fail(where, ": decode_window_size ", decode, " differs from window_size ", o.window.size, "; not supported");
    o.affine = field<bool>(a, "affine_attention_factors", false, where);
    out.init_window_factor = field<double>(a, "init_window_factor", out.init_window_factor, where);
    if (!std::isfinite(out.init_window_factor)) fail(where, ": init_window_factor is not finite");

    const std::string map = field<std::string>(a, "feature_map", "softmax_dim", where);
    if (map == "softmax_dim")
        o.feature_map = FeatureMapKind::SoftmaxDim;
    else if (map == "exp_dim")
        o.feature_map = FeatureMapKind::ExpDim;
    else if (map == "pos_elu")
        o.feature_map = FeatureMapKind::OnePlusElu;
    else
        fail(where, ": feature_map '", map, "' is not supported (softmax_dim, exp_dim, pos_elu)");
    if (YAML::Node kw = a["feature_map_kwargs"]; kw && kw.IsMap()) {
        if (!field<bool>(kw, "fullspace", true, where + ".feature_map_kwargs"))
            fail(where, ".feature_map_kwargs: fullspace false (half-space maps) is not supported");
        const double eps = field<double>(kw, "eps", 1e-12, where + ".feature_map_kwargs");
        if (std::fabs(eps - 1e-12) > 1e-15) fail(where, ".feature_map_kwargs: eps ", eps, " (lincat clamps at 1e-12)");
    }
    const std::string kernel = field<std::string>(a, "learned_kernel", "untied_head_einsum", where);
    if (kernel != "untied_head_einsum")
        fail(where, ": learned_kernel '", kernel, "' is not supported (untied_head_einsum)");
    YAML::Node lk = a["learned_kernel_kwargs"];
    if (!lk || !lk.IsMap() || !lk["feature_dim"]) fail(where, ": learned_kernel_kwargs.feature_dim is missing");
    o.feature_dim = field<int64_t>(lk, "feature_dim", 64, where + ".learned_kernel_kwargs");
    if (o.feature_dim < 1 || o.feature_dim > 4096)
        fail(where, ".learned_kernel_kwargs: feature_dim ", o.feature_dim, " not in [1, 4096]");
    if (field<bool>(lk, "skip_connection", false, where + ".learned_kernel_kwargs"))
        fail(where, ".learned_kernel_kwargs: skip_connection true is not supported");
    if (field<bool>(lk, "bias", false, where + ".learned_kernel_kwargs"))
        fail(where, ".learned_kernel_kwargs: bias true is not supported");
    if (field<bool>(a, "tie_qk_kernels", false, where)) fail(where, ": tie_qk_kernels true is not supported");

    std::set<int64_t> kept;
    if (YAML::Node s = a["softmax_attentions"]; s && !s.IsNull()) {
        if (!s.IsSequence()) fail(where, ": softmax_attentions is not a list of layers");
        for (const auto& e : s) {
            int64_t l = 0;
            try {
                l = e.as<int64_t>();
            } catch (const YAML::Exception&) {
                fail(where, ": softmax_attentions holds '", YAML::Dump(e).substr(0, 20), "', not a layer number");
            }
            if (l < 0 || l >= num_layers)
                fail(where, ": softmax_attentions layer ", l, " not in [0, ", num_layers, ") of this model");
            kept.insert(l);
        }
    }
    if (!kept.empty()) {
        for (int64_t l = 0; l < num_layers; ++l)
            if (!kept.count(l)) o.layers.push_back(l);
        if (o.layers.empty()) fail(where, ": softmax_attentions keeps every layer softmax; nothing is linearized");
    }
    return out;
}

std::string lolcats_model_yaml(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model,
                               const std::string& torch_dtype) {
    std::vector<int64_t> kept;
    for (int64_t l = 0; l < num_layers; ++l)
        if (!o.layers.empty() && std::find(o.layers.begin(), o.layers.end(), l) == o.layers.end()) kept.push_back(l);
    YAML::Emitter y;
    y << YAML::BeginMap;
    y << YAML::Key << "name" << YAML::Value << "llama";
    y << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "pretrained_model_name_or_path" << YAML::Value << base_model;
    y << YAML::Key << "torch_dtype" << YAML::Value << torch_dtype;
    y << YAML::Key << "attn_implementation" << YAML::Value << "eager";
    y << YAML::EndMap;
    y << YAML::Key << "attention" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "attention_type" << YAML::Value
      << (o.window.kind == WindowKind::Terraced ? "lolcats_llama_window_tk" : "lolcats_llama_window_sw");
    y << YAML::Key << "state_chunk_len" << YAML::Value << 1024;
    y << YAML::Key << "window_size" << YAML::Value << o.window.size;
    y << YAML::Key << "affine_attention_factors" << YAML::Value << o.affine;
    y << YAML::Key << "init_window_factor" << YAML::Value << -2.1972245773362196;
    const char* map = o.feature_map == FeatureMapKind::SoftmaxDim   ? "softmax_dim"
                      : o.feature_map == FeatureMapKind::ExpDim     ? "exp_dim"
                      : o.feature_map == FeatureMapKind::OnePlusElu ? "pos_elu"
                                                                    : nullptr;
    if (!map) fail("feature map ", feature_map_kind_name(o.feature_map), " has no LoLCATs equivalent");
    y << YAML::Key << "feature_map" << YAML::Value << map;
    y << YAML::Key << "feature_map_kwargs" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "eps" << YAML::Value << 1e-12;
    y << YAML::Key << "fullspace" << YAML::Value << true << YAML::EndMap;
    y << YAML::Key << "layer_idx" << YAML::Value << YAML::Null;
    y << YAML::Key << "learned_kernel" << YAML::Value << "untied_head_einsum";
    y << YAML::Key << "learned_kernel_kwargs" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "feature_dim" << YAML::Value << o.feature_dim;
    y << YAML::Key << "skip_connection" << YAML::Value << false;
    y << YAML::Key << "bias" << YAML::Value << false;
    y << YAML::Key << "zero_init" << YAML::Value << o.identity_init << YAML::EndMap;
    y << YAML::Key << "tie_qk_kernels" << YAML::Value << false;
    y << YAML::Key << "train_qk" << YAML::Value << false;
    y << YAML::Key << "softmax_attentions" << YAML::Value << YAML::Flow << kept;
    y << YAML::EndMap << YAML::EndMap;
    return std::string(y.c_str()) + "\n";
}

LoraOptions lolcats_lora_from_yaml(const std::string& text, const std::string& label) {
    YAML::Node root = load_yaml(text, label);
    YAML::Node f = root["finetune"];
    if (!f || !f.IsMap()) fail(label, ": has no finetune: block (a LoLCATs finetune config?)");
    const std::string method = field<std::string>(f, "method", "lora", label + " finetune");
    if (method != "lora") fail(label, ": finetune.method '", method, "' is not supported (lora)");
    YAML::Node kw = f["kwargs"];
    if (!kw || !kw.IsMap()) fail(label, ": finetune.kwargs is missing");
    const std::string where = label + " finetune.kwargs";
    LoraOptions o;
    o.rank = field<int64_t>(kw, "r", o.rank, where);
    o.alpha = field<double>(kw, "lora_alpha", o.alpha, where);
    o.dropout = field<double>(kw, "lora_dropout", o.dropout, where);
    if (YAML::Node t = kw["target_modules"]; t && t.IsSequence()) {
        o.targets.clear();
        for (const auto& e : t) {
            std::string name = e.IsScalar() ? e.as<std::string>() : "";
            // LoLCATs' own runs rewrite the targets as self_attn.q_proj: the projection is the last part.
            if (size_t dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
            if (!is_projection(name))
                fail(where, ": target_modules holds '", name, "' (q_proj, k_proj, v_proj, o_proj)");
            o.targets.push_back(name);
        }
    }
    // The same bounds as adapter.json, so both files refuse the same values.
    lora_options_from_json(lora_options_to_json(o), where);
    return o;
}

std::string lolcats_finetune_yaml(const LoraOptions& o) {
    YAML::Emitter y;
    y << YAML::BeginMap << YAML::Key << "finetune" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "method" << YAML::Value << "lora";
    y << YAML::Key << "kwargs" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "r" << YAML::Value << o.rank;
    y << YAML::Key << "lora_alpha" << YAML::Value << o.alpha;
    y << YAML::Key << "lora_dropout" << YAML::Value << o.dropout;
    y << YAML::Key << "target_modules" << YAML::Value << YAML::Flow << o.targets;
    y << YAML::EndMap << YAML::EndMap << YAML::EndMap;
    return std::string(y.c_str()) + "\n";
}

std::string peft_adapter_config(const LoraOptions& o, const std::string& base_model) {
    json j = {{"peft_type", "LORA"},
              {"task_type", "CAUSAL_LM"},
              {"base_model_name_or_path", base_model},
              {"r", o.rank},
              {"lora_alpha", o.alpha},
              {"lora_dropout", o.dropout},
              {"target_modules", o.targets},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"inference_mode", true},
              {"init_lora_weights", true},
              {"modules_to_save", nullptr},
              {"layers_to_transform", nullptr},
              {"layers_pattern", nullptr},
              {"rank_pattern", json::object()},
              {"alpha_pattern", json::object()},
              {"use_rslora", false},
              {"use_dora", false},
              {"revision", nullptr}};
    return j.dump(2) + "\n";
}

}  // namespace lincat
