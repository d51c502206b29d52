#include "attention/softmax_decode.h"

#include "util/dot_lanes.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace lincat {

static bool fp32_or_bf16(torch::ScalarType t) {
    return t == torch::kFloat32 || t == torch::kBFloat16;
}

bool softmax_decode_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    if (!q.device().is_cpu() || !fp32_or_bf16(q.scalar_type()) || !fp32_or_bf16(k.scalar_type()) ||
        v.scalar_type() != k.scalar_type())
        return false;
    if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
    if (k.stride(3) != 1 || v.stride(3) != 1) return false;
    return q.size(2) * q.size(3) <= kDecodeLoopMaxRows;  // G x T rows per kv head
}

// bf16 widens exactly to fp32 (its bits are fp32's top half).
static inline float widen(float x) {
    return x;
}
static inline float widen(c10::BFloat16 x) {
    return float(x);
}

// KV is the cache's element type; q and the output are fp32.
template <typename KV>
static torch::Tensor decode(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_start,
                            int64_t sliding_window) {
    const int64_t B = q.size(0), Hkv = q.size(1), G = q.size(2), T = q.size(3), D = q.size(4), S = k.size(2);
    const int64_t rows = G * T;
    // Keys row r may see: [lo(r), hi(r)], causal and inside the window.
    auto key_range = [&](int64_t r, int64_t& lo, int64_t& hi) {
        const int64_t pos = q_start + r % T;
        hi = std::min(pos, S - 1);
        lo = sliding_window > 0 ? std::max<int64_t>(0, pos - sliding_window + 1) : 0;
    };
    const float* qp = q.data_ptr<float>();
    const KV* kp = k.data_ptr<KV>();
    const KV* vp = v.data_ptr<KV>();
    const int64_t ks0 = k.stride(0), ks1 = k.stride(1), ks2 = k.stride(2);
    const int64_t vs0 = v.stride(0), vs1 = v.stride(1), vs2 = v.stride(2);
    const float scale = float(1.0 / std::sqrt(double(D)));

    // 1. Scores, -inf outside each row's range; every key read once for all rows of its head.
    auto scores = torch::full({B, Hkv, rows, S}, -std::numeric_limits<float>::infinity(), q.options());
    float* sp = scores.data_ptr<float>();
    at::parallel_for(0, B * Hkv, 1, [&](int64_t begin, int64_t end) {
        for (int64_t item = begin; item < end; ++item) {
            const KV* K = kp + (item / Hkv) * ks0 + (item % Hkv) * ks1;
            const float* Q = qp + item * rows * D;
            float* sc = sp + item * rows * S;
            for (int64_t r = 0; r < rows; ++r) {
                int64_t lo, hi;
                key_range(r, lo, hi);
                for (int64_t s = lo; s <= hi; ++s) sc[r * S + s] = scale * dot_lanes(Q + r * D, K + s * ks2, D);
            }
        }
    });
    // 2. The softmax by LibTorch's vectorised kernel (exp dominates a scalar loop here).
    auto w = torch::softmax(scores, -1);
    // 3. Weighted values over the same ranges.
    auto out = torch::zeros({B, Hkv, G, T, D}, q.options());
    const float* wp = w.data_ptr<float>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, B * Hkv, 1, [&](int64_t begin, int64_t end) {
        for (int64_t item = begin; item < end; ++item) {
            const KV* V = vp + (item / Hkv) * vs0 + (item % Hkv) * vs1;
            for (int64_t r = 0; r < rows; ++r) {
                int64_t lo, hi;
                key_range(r, lo, hi);
                const float* wr = wp + (item * rows + r) * S;
                float* o = op + (item * rows + r) * D;
                for (int64_t s = lo; s <= hi; ++s) {
                    const float ws = wr[s];
                    const KV* vs = V + s * vs2;
                    for (int64_t d = 0; d < D; ++d) o[d] += ws * widen(vs[d]);
                }
            }
        }
    });
    return out;
}

torch::Tensor softmax_decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       int64_t q_start, int64_t sliding_window) {
    // A bf16 cache is read as bf16 (half the bytes of a step that is bound by reading it) and
    // widened in registers; queries are few, so they are converted once.
    const auto qf = q.to(torch::kFloat32).contiguous();
    auto out = k.scalar_type() == torch::kBFloat16 ? decode<c10::BFloat16>(qf, k, v, q_start, sliding_window)
                                                   : decode<float>(qf, k, v, q_start, sliding_window);
    return out.to(q.scalar_type());
}

}  // namespace lincat
