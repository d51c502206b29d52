// Learnable feature maps phi for the linear part of hybrid attention (DESIGN.md 1.2).
// One weight per head, W (H, d, f); parameter name "layer" (and "bias" for relu), so a
// layer's checkpoint keys read "...self_attn.attn.feature_map_q.layer".
#pragma once

#include <string>

#include "attention/spec.h"
#include "util/torch_prelude.h"

namespace lincat {

struct FeatureMapOptions {
    FeatureMapOptions(int64_t heads, int64_t head_dim) : heads_(heads), head_dim_(head_dim) {}
    TORCH_ARG(int64_t, heads);
    TORCH_ARG(int64_t, head_dim);
    TORCH_ARG(int64_t, feature_dim) = 64;  // f; softmax_dim and exp_dim output 2f
    TORCH_ARG(FeatureMapKind, kind) = FeatureMapKind::SoftmaxDim;
    TORCH_ARG(bool, identity_init) = false;  // W = I (needs f == d) instead of Kaiming-uniform
};

class FeatureMapImpl : public torch::nn::Module {
  public:
    explicit FeatureMapImpl(const FeatureMapOptions& options);
    void reset();
    // x (B, H, T, d) -> (B, H, T, output_dim()), computed in fp32.
    torch::Tensor forward(const torch::Tensor& x);
    // x (B, Hkv, T, d), the keys of Hkv = H / G kv heads -> (B, H, T, output_dim()): head h
    // reads kv head h / G, as after repeat_kv, without copying x G times.
    torch::Tensor forward_grouped(const torch::Tensor& x, int64_t groups);
    int64_t output_dim() const;
    const FeatureMapOptions& options() const { return options_; }

    torch::Tensor layer;  // (H, d, f)
    torch::Tensor bias;   // (H, 1, f), relu only

  private:
    torch::Tensor activate(torch::Tensor xw, bool with_grad) const;  // (..., f) -> (..., output_dim())
    FeatureMapOptions options_;
};
TORCH_MODULE(FeatureMap);

}  // namespace lincat
