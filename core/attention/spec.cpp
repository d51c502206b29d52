#include "attention/spec.h"

#include <algorithm>

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

GateKind parse_gate_kind(const std::string& s) {
    if (s == "none") return GateKind::None;
    if (s == "decay") return GateKind::Decay;
    if (s == "gla") return GateKind::Gla;
    fail("gate '", s, "' is not one of none, decay, gla");
}

std::string gate_kind_name(GateKind k) {
    switch (k) {
        case GateKind::None:
            return "none";
        case GateKind::Decay:
            return "decay";
        case GateKind::Gla:
            return "gla";
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

BlockAlign parse_block_align(const std::string& s) {
    if (s == "start") return BlockAlign::Start;
    if (s == "end") return BlockAlign::End;
    fail("block align '", s, "' is not one of start, end");
}

std::string block_align_name(BlockAlign a) {
    return a == BlockAlign::End ? "end" : "start";
}

const FieldTable<LinearizeOptions>& linearize_fields() {
    using O = LinearizeOptions;
    static const FieldTable<O> t = {
        enum_field<O>("variant", "window variant: tk (terraced) or sw (sliding)",
                      [](O & o) -> auto& { return o.window.kind; }, window_kind_name, parse_window_kind, {"tk", "sw"}),
        field<O>(
            "window", "window size w", [](O & o) -> auto& { return o.window.size; })
            .at_least(1)
            .at_most(65536),
        enum_field<O>("block_align", "where tk block edges sit: start or end",
                      [](O & o) -> auto& { return o.window.align; }, block_align_name, parse_block_align,
                      {"start", "end"})
            .added_later(),
        enum_field<O>("feature_map", "feature map: softmax_dim, relu, 1+elu or exp_dim",
                      [](O & o) -> auto& { return o.feature_map; }, feature_map_kind_name, parse_feature_map_kind,
                      {"softmax_dim", "relu", "1+elu", "exp_dim"}),
        field<O>(
            "feature_dim", "feature dim f (softmax_dim gives 2f)", [](O & o) -> auto& { return o.feature_dim; })
            .at_least(1)
            .at_most(65536),
        field<O>(
            "identity_init", "feature-map weights start as the identity (needs f = head dim)",
            [](O & o) -> auto& { return o.identity_init; })
            .added_later(),
        field<O>(
            "affine", "lambda = 1 - gamma", [](O & o) -> auto& { return o.affine; })
            .added_later(),
        enum_field<O>("decode_window", "window kept while decoding: tk or sw",
                      [](O & o) -> auto& { return o.decode_window; }, window_kind_name, parse_window_kind, {"tk", "sw"})
            .added_later(),
        enum_field<O>("gate", "gate on the linear state: none, decay (per head) or gla (per feature, from the key)",
                      [](O & o) -> auto& { return o.gate; }, gate_kind_name, parse_gate_kind, {"none", "decay", "gla"})
            .added_later(),
        field<O>(
            "layers", "layers to linearize (empty: all)", [](O & o) -> auto& { return o.layers; })
            .at_least(0),
    };
    return t;
}

std::string linearization_to_json(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash) {
    LinearizeOptions explicit_layers = o;
    if (explicit_layers.layers.empty())
        for (int64_t i = 0; i < num_layers; ++i) explicit_layers.layers.push_back(i);
    json j = {{"format", "lincat-linearization"}, {"version", 1}};
    j.update(table_to_json(linearize_fields(), explicit_layers));
    j["base_model_hash"] = base_model_hash;
    return j.dump(2) + "\n";
}

LinearizeOptions linearization_from_json(const std::string& text, const std::string& label, std::string* hash) {
    json j = parse_json(text, label);
    if (json_get_or<std::string>(j, "format", "", label) != "lincat-linearization")
        fail(label, ": field 'format' is not 'lincat-linearization'");
    if (json_get<int64_t>(j, "version", label) != 1) fail(label, ": unsupported version");
    LinearizeOptions o;
    table_from_json(linearize_fields(), j, o, label);
    if (hash) *hash = json_get<std::string>(j, "base_model_hash", label);
    return o;
}

std::vector<int64_t> linearized_layers(const LinearizeOptions& o, int64_t num_layers) {
    std::vector<int64_t> layers = o.layers;
    if (layers.empty())
        for (int64_t i = 0; i < num_layers; ++i) layers.push_back(i);
    for (int64_t l : layers)
        if (l < 0 || l >= num_layers)
            fail("linearize: layer ", l, " does not exist (the model has ", num_layers, " layers)");
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    return layers;
}

}  // namespace lincat
