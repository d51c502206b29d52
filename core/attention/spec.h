// What a linearization is, as plain data (no torch): window variant and size, feature map,
// which layers. Parsed from checkpoints (linearization.json), so it lives with the parsers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/options.h"

namespace lincat {

enum class FeatureMapKind { SoftmaxDim, Relu, OnePlusElu, ExpDim };
FeatureMapKind parse_feature_map_kind(const std::string& name);  // softmax_dim | relu | 1+elu | exp_dim
std::string feature_map_kind_name(FeatureMapKind kind);

// A gate on the linear part's state (beyond LoLCATs): none; decay, a learned per-head rate
// (S_t = a_h S_{t-1} + phi(k_t) v_t^T, retention-style); gla, a per-head, per-feature rate
// from a small projection of the key (S_t = diag(a_t) S_{t-1} + phi(k_t) v_t^T, as GLA and Liger).
enum class GateKind { None, Decay, Gla };
GateKind parse_gate_kind(const std::string& name);  // none | decay | gla
std::string gate_kind_name(GateKind kind);

enum class WindowKind { Terraced, Sliding };            // "tk" (LoLCATs default) and "sw"
enum class BlockAlign { Start, End };                   // where tk block edges sit (see DESIGN.md 1.1)
WindowKind parse_window_kind(const std::string& name);  // tk | sw
std::string window_kind_name(WindowKind kind);
BlockAlign parse_block_align(const std::string& name);  // start | end
std::string block_align_name(BlockAlign align);

struct WindowSpec {
    WindowKind kind = WindowKind::Terraced;
    int64_t size = 64;  // w
    BlockAlign align = BlockAlign::Start;
    bool operator==(const WindowSpec&) const = default;
};

struct LinearizeOptions {
    WindowSpec window;
    int64_t feature_dim = 64;
    FeatureMapKind feature_map = FeatureMapKind::SoftmaxDim;
    bool identity_init = false;
    bool affine = false;
    WindowKind decode_window = WindowKind::Terraced;
    GateKind gate = GateKind::None;
    std::vector<int64_t> layers;  // empty = every layer
    bool operator==(const LinearizeOptions&) const = default;
};

// The layers o linearizes in a model of num_layers (o.layers, or every layer when empty),
// sorted and unique; a layer the model does not have is refused.
std::vector<int64_t> linearized_layers(const LinearizeOptions& o, int64_t num_layers);

// The options' field table (flat keys: variant, window, block_align, feature_map, ...).
const FieldTable<LinearizeOptions>& linearize_fields();

// linearization.json of a checkpoint. Errors name `label` and the field.
std::string linearization_to_json(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash);
LinearizeOptions linearization_from_json(const std::string& text, const std::string& label,
                                         std::string* base_model_hash);

}  // namespace lincat
