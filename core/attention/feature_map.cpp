#include "attention/feature_map.h"

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
    auto xw = torch::einsum("bhtd,hdf->bhtf", {x.to(torch::kFloat32), layer.to(torch::kFloat32)});
    switch (options_.kind()) {
        case FeatureMapKind::SoftmaxDim: {
            if (!torch::GradMode::is_enabled() || !(x.requires_grad() || layer.requires_grad())) {
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
            return torch::cat({torch::softmax(xw, -1), torch::softmax(-xw, -1)}, -1).clamp_min(1e-12);
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
