#include "attention/spec.h"

#include "util/error.h"
#include "util/json.h"

namespace lincat {

FeatureMapKind parse_feature_map_kind(const std::string& s) {
    if (s == "softmax_dim" || s == "hedgehog") return FeatureMapKind::SoftmaxDim;
    if (s == "relu" || s == "t2r") return FeatureMapKind::Relu;
    if (s == "1+elu" || s == "elu") return FeatureMapKind::OnePlusElu;
    if (s == "exp_dim") return FeatureMapKind::ExpDim;
    fail("feature map '", s, "' is not one of softmax_dim, relu, 1+elu, exp_dim");
}

std::string feature_map_kind_name(FeatureMapKind k) {
    switch (k) {
        case FeatureMapKind::SoftmaxDim:
            return "softmax_dim";
        case FeatureMapKind::Relu:
            return "relu";
        case FeatureMapKind::OnePlusElu:
            return "1+elu";
        case FeatureMapKind::ExpDim:
            return "exp_dim";
    }
    return "?";
}

WindowKind parse_window_kind(const std::string& s) {
    if (s == "tk" || s == "terraced") return WindowKind::Terraced;
    if (s == "sw" || s == "sliding") return WindowKind::Sliding;
    fail("window variant '", s, "' is not one of tk, sw");
}

std::string window_kind_name(WindowKind k) {
    return k == WindowKind::Terraced ? "tk" : "sw";
}

std::string linearization_to_json(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash) {
    std::vector<int64_t> layers = o.layers;
    if (layers.empty())
        for (int64_t i = 0; i < num_layers; ++i) layers.push_back(i);
    json j = {{"format", "lincat-linearization"},
              {"version", 1},
              {"variant", window_kind_name(o.window.kind)},
              {"window", o.window.size},
              {"block_align", o.window.align == BlockAlign::End ? "end" : "start"},
              {"feature_map", feature_map_kind_name(o.feature_map)},
              {"feature_dim", o.feature_dim},
              {"affine", o.affine},
              {"decode_window", window_kind_name(o.decode_window)},
              {"layers", layers},
              {"base_model_hash", base_model_hash}};
    return j.dump(2) + "\n";
}

LinearizeOptions linearization_from_json(const std::string& text, const std::string& label, std::string* hash) {
    json j = parse_json(text, label);
    if (json_get_or<std::string>(j, "format", "", label) != "lincat-linearization")
        fail(label, ": field 'format' is not 'lincat-linearization'");
    if (json_get<int64_t>(j, "version", label) != 1) fail(label, ": unsupported version");
    LinearizeOptions o;
    o.window.kind = parse_window_kind(json_get<std::string>(j, "variant", label));
    o.window.size = json_get<int64_t>(j, "window", label);
    if (o.window.size <= 0 || o.window.size > 65536) fail(label, ": field 'window' out of range");
    o.window.align =
        json_get_or<std::string>(j, "block_align", "start", label) == "end" ? BlockAlign::End : BlockAlign::Start;
    o.feature_map = parse_feature_map_kind(json_get<std::string>(j, "feature_map", label));
    o.feature_dim = json_get<int64_t>(j, "feature_dim", label);
    if (o.feature_dim <= 0 || o.feature_dim > 65536) fail(label, ": field 'feature_dim' out of range");
    o.affine = json_get_or<bool>(j, "affine", false, label);
    o.decode_window = parse_window_kind(json_get_or<std::string>(j, "decode_window", "tk", label));
    const json& layers = json_get<json>(j, "layers", label);
    if (!layers.is_array()) fail(label, ": field 'layers' must be an array");
    for (const json& l : layers) {
        if (!l.is_number_integer() || l.get<int64_t>() < 0) fail(label, ": field 'layers' must hold layer indices");
        o.layers.push_back(l.get<int64_t>());
    }
    if (hash) *hash = json_get<std::string>(j, "base_model_hash", label);
    return o;
}

}  // namespace lincat
