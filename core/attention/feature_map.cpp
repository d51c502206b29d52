#include "attention/feature_map.h"

#include "attention/softmax_dim_map.h"
#include "util/batched_matmul.h"
#include "util/error.h"

namespace lincat {

FeatureMapImpl::FeatureMapImpl(const FeatureMapOptions& o) : options_(o) {
    if (o.heads() <= 0 || o.head_dim() <= 0) fail("feature map: heads and head_dim must be positive");
    if (o.feature_dim() <= 0) fail("feature map: feature dim must be positive, got ", o.feature_dim());
    if (o.identity_init() && o.feature_dim() != o.head_dim())
        fail("feature map: identity init needs feature dim (", o.feature_dim(), ") == head dim (", o.head_dim(), ")");
    reset();
}

void FeatureMapImpl::reset() {
    torch::NoGradGuard ng;
    auto w = torch::empty({options_.heads(), options_.head_dim(), options_.feature_dim()});
    if (options_.identity_init()) {
        w.copy_(torch::eye(options_.head_dim()).expand_as(w));
    } else {
        // As LoLCATs: kaiming_uniform_ on the (H, d, f) tensor (fan_in = d * f).
        torch::nn::init::kaiming_uniform_(w);
    }
    layer = register_parameter("layer", w);
    if (options_.kind() == FeatureMapKind::Relu)
        bias = register_parameter("bias", torch::zeros({options_.heads(), 1, options_.feature_dim()}));
}

int64_t FeatureMapImpl::output_dim() const {
    auto k = options_.kind();
    return (k == FeatureMapKind::SoftmaxDim || k == FeatureMapKind::ExpDim) ? 2 * options_.feature_dim()
                                                                            : options_.feature_dim();
}

torch::Tensor FeatureMapImpl::forward(const torch::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != options_.heads() || x.size(3) != options_.head_dim())
        fail("feature map: expected input (B, ", options_.heads(), ", T, ", options_.head_dim(), "), got ", x.sizes());
    // (B, H, T, d) x (H, d, f), batched over (B, H): the weights broadcast over B (stride 0, no copy).
    auto w = layer.to(torch::kFloat32);
    auto xw = batched_matmul(x.to(torch::kFloat32), w.unsqueeze(0).expand({x.size(0), -1, -1, -1}));
    const bool with_grad = torch::GradMode::is_enabled() && (x.requires_grad() || layer.requires_grad());
    return activate(xw, with_grad);
}

torch::Tensor FeatureMapImpl::forward_grouped(const torch::Tensor& x, int64_t G) {
    const int64_t H = options_.heads();
    if (G <= 0 || H % G != 0 || x.dim() != 4 || x.size(1) * G != H || x.size(3) != options_.head_dim())
        fail("feature map: expected input (B, ", G > 0 ? H / G : 0, ", T, ", options_.head_dim(), ") for ", G,
             " query heads per kv head, got ", x.sizes());
    if (G == 1) return forward(x);
    const int64_t B = x.size(0), Hkv = x.size(1), T = x.size(2), d = x.size(3), f = options_.feature_dim();
    // (B, Hkv, T, d) x (Hkv, d, G f): one matmul per kv head over its G query heads' weights.
    auto w = layer.to(torch::kFloat32).view({Hkv, G, d, f}).permute({0, 2, 1, 3}).reshape({Hkv, d, G * f});
    auto xw = batched_matmul(x.to(torch::kFloat32), w.unsqueeze(0).expand({B, -1, -1, -1}))
                  .view({B, Hkv, T, G, f})
                  .permute({0, 1, 3, 2, 4});
    const bool with_grad = torch::GradMode::is_enabled() && (x.requires_grad() || layer.requires_grad());
    return activate(xw.reshape({B, H, T, f}), with_grad);
}

torch::Tensor FeatureMapImpl::activate(torch::Tensor xw, bool with_grad) const {
    switch (options_.kind()) {
        case FeatureMapKind::SoftmaxDim: {
            if (softmax_dim_fused_applies(xw)) return softmax_dim_activation(xw);  // CPU fp32: one pass a row
            if (!with_grad) {
                // No graph: write both halves into one buffer, clamp in place.
                const int64_t f = xw.size(-1);
                auto sizes = xw.sizes().vec();
                sizes.back() = 2 * f;
                auto out = torch::empty(sizes, xw.options());
                auto lo = out.narrow(-1, 0, f), hi = out.narrow(-1, f, f);
                torch::softmax_out(lo, xw, -1);
                torch::softmax_out(hi, xw.neg_(), -1);
                return out.clamp_min_(1e-12);
            }
            return softmax_dim_reference(xw);
        }
        case FeatureMapKind::Relu:
            return torch::relu(xw + bias.unsqueeze(0));
        case FeatureMapKind::OnePlusElu:
            return 1 + torch::elu(xw);
        case FeatureMapKind::ExpDim: {
            auto mx = std::get<0>(xw.max(-1, true)), mn = std::get<0>(xw.min(-1, true));
            return torch::cat({torch::exp(xw - mx), torch::exp(-xw + mn)}, -1).clamp_min(1e-12);
        }
    }
    fail("feature map: unknown kind");
}

}  // namespace lincat
