#include "attention/softmax_dim_map.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "util/fast_exp.h"

namespace lincat {

namespace {

constexpr float kFloor = 1e-12f;  // FeatureMapImpl's clamp: no feature is exactly 0
constexpr int64_t kRowsPerTask = 256;

// raw = [softmax(x), softmax(-x)] of each row of f; out = max(raw, kFloor). raw may be null
// (no graph: only out is kept).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void forward_rows(const float* x,
                                                                                                float* raw, float* out,
                                                                                                int64_t f, int64_t r0,
                                                                                                int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * f;
        float* o = out + r * 2 * f;
        float hi = xr[0], lo = xr[0];
        for (int64_t j = 1; j < f; ++j) hi = std::max(hi, xr[j]), lo = std::min(lo, xr[j]);
        float s1 = 0, s2 = 0;
        for (int64_t j = 0; j < f; ++j) {
            o[j] = fast_exp(xr[j] - hi), o[f + j] = fast_exp(lo - xr[j]);
            s1 += o[j], s2 += o[f + j];
        }
        const float i1 = 1.0f / s1, i2 = 1.0f / s2;
        for (int64_t j = 0; j < f; ++j) o[j] *= i1, o[f + j] *= i2;
        if (raw) std::copy(o, o + 2 * f, raw + r * 2 * f);
        for (int64_t j = 0; j < 2 * f; ++j) o[j] = std::max(o[j], kFloor);
    }
}

// gx = J1^T g1' - J2^T g2', the two softmax Jacobians, g' = g where the clamp passed it
// (raw >= kFloor, as clamp_min's backward): per half, raw * (g' - sum(g' raw)).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void backward_rows(
    const float* raw, const float* g, float* gx, int64_t f, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
        const float *y = raw + r * 2 * f, *gr = g + r * 2 * f;
        float s1 = 0, s2 = 0;
        for (int64_t j = 0; j < f; ++j) {
            s1 += y[j] >= kFloor ? gr[j] * y[j] : 0.0f;
            s2 += y[f + j] >= kFloor ? gr[f + j] * y[f + j] : 0.0f;
        }
        float* o = gx + r * f;
        for (int64_t j = 0; j < f; ++j) {
            const float g1 = y[j] >= kFloor ? gr[j] : 0.0f, g2 = y[f + j] >= kFloor ? gr[f + j] : 0.0f;
            o[j] = y[j] * (g1 - s1) - y[f + j] * (g2 - s2);
        }
    }
}

torch::Tensor run_forward(const torch::Tensor& x, torch::Tensor* raw_out) {
    const int64_t f = x.size(-1), rows = x.numel() / std::max<int64_t>(1, f);
    auto sizes = x.sizes().vec();
    sizes.back() = 2 * f;
    auto out = torch::empty(sizes, x.options());
    torch::Tensor raw;
    if (raw_out) raw = *raw_out = torch::empty(sizes, x.options());
    const float* xp = x.data_ptr<float>();
    float *op = out.data_ptr<float>(), *rp = raw_out ? raw.data_ptr<float>() : nullptr;
    at::parallel_for(0, rows, kRowsPerTask, [&](int64_t r0, int64_t r1) { forward_rows(xp, rp, op, f, r0, r1); });
    return out;
}

struct SoftmaxDimFunction : torch::autograd::Function<SoftmaxDimFunction> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
        torch::Tensor raw;
        auto out = run_forward(x.contiguous(), &raw);
        ctx->save_for_backward({raw});
        return out;
    }
    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::tensor_list grads) {
        const auto raw = ctx->get_saved_variables()[0];
        const auto g = grads[0].contiguous();
        const int64_t f = raw.size(-1) / 2, rows = raw.numel() / std::max<int64_t>(1, 2 * f);
        auto sizes = raw.sizes().vec();
        sizes.back() = f;
        auto gx = torch::empty(sizes, raw.options());
        const float *rp = raw.data_ptr<float>(), *gp = g.data_ptr<float>();
        float* xp = gx.data_ptr<float>();
        at::parallel_for(0, rows, kRowsPerTask, [&](int64_t r0, int64_t r1) { backward_rows(rp, gp, xp, f, r0, r1); });
        return {gx};
    }
};

}  // namespace

bool softmax_dim_fused_applies(const torch::Tensor& xw) {
    return xw.defined() && xw.device().is_cpu() && xw.scalar_type() == torch::kFloat32 && xw.dim() >= 1 &&
           xw.size(-1) > 0 && xw.numel() > 0;
}

torch::Tensor softmax_dim_reference(const torch::Tensor& xw) {
    return torch::cat({torch::softmax(xw, -1), torch::softmax(-xw, -1)}, -1).clamp_min(kFloor);
}

torch::Tensor softmax_dim_activation(const torch::Tensor& xw) {
    if (!softmax_dim_fused_applies(xw)) return softmax_dim_reference(xw);
    if (torch::GradMode::is_enabled() && xw.requires_grad()) return SoftmaxDimFunction::apply(xw);
    return run_forward(xw.contiguous(), nullptr);
}

}  // namespace lincat
