#include "model/few_rows_linear.h"

#include "util/error.h"

#include <ATen/Parallel.h>

#include <cstring>

namespace lincat {

namespace {

// The vector helpers are always inlined into an ISA's clone; GCC still warns that their
// signatures would change ABI if they were called from baseline code, which they never are.
#pragma GCC diagnostic ignored "-Wpsabi"

// Eight floats as GCC vector types: each clone below compiles them to its ISA's registers
// (one ymm on AVX2 and AVX-512, two xmm on the baseline), without intrinsics.
typedef float f32x8 __attribute__((vector_size(32)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

__attribute__((always_inline)) inline f32x8 load8(const float* p) {
    f32x8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
__attribute__((always_inline)) inline f32x8 load8(const c10::BFloat16* p) {
    uint16_t h[8];
    std::memcpy(h, p, sizeof h);
    u32x8 bits;
    for (int l = 0; l < 8; ++l) bits[l] = uint32_t(h[l]) << 16;  // exact: bf16 is fp32's top half
    f32x8 v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}
__attribute__((always_inline)) inline float widen(float x) {
    return x;
}
__attribute__((always_inline)) inline float widen(c10::BFloat16 x) {
    return float(x);
}
__attribute__((always_inline)) inline float sum8(f32x8 a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// y[m * N + n] = x[m] . w[n] for weight rows n in [n0, n1). One weight row streams past while
// the partial sums stay in registers: C independent chains per row of x, since one chain of adds
// waits ~4 cycles a step and a single row would run at a quarter of the load rate.
template <typename W, int M>
__attribute__((always_inline)) inline void rows_times_weight(const float* x, const W* w, float* y, int64_t K, int64_t N,
                                                             int64_t n0, int64_t n1) {
    constexpr int C = M >= 4 ? 1 : 4 / M;
    for (int64_t n = n0; n < n1; ++n) {
        const W* wn = w + n * K;
        f32x8 acc[M][C];
        for (int m = 0; m < M; ++m)
            for (int c = 0; c < C; ++c) acc[m][c] = f32x8{};
        int64_t k = 0;
        for (; k + 8 * C <= K; k += 8 * C)
            for (int c = 0; c < C; ++c) {
                const f32x8 wv = load8(wn + k + 8 * c);
                for (int m = 0; m < M; ++m) acc[m][c] += load8(x + m * K + k + 8 * c) * wv;
            }
        for (; k + 8 <= K; k += 8) {
            const f32x8 wv = load8(wn + k);
            for (int m = 0; m < M; ++m) acc[m][0] += load8(x + m * K + k) * wv;
        }
        for (int m = 0; m < M; ++m) {
            for (int c = 1; c < C; ++c) acc[m][0] += acc[m][c];
            float s = sum8(acc[m][0]);
            for (int64_t t = k; t < K; ++t) s += x[m * K + t] * widen(wn[t]);
            y[m * N + n] = s;
        }
    }
}

template <typename W>
__attribute__((always_inline)) inline void rows_times_weight(int64_t M, const float* x, const W* w, float* y, int64_t K,
                                                             int64_t N, int64_t n0, int64_t n1) {
    static_assert(kFewRowsMax == 8, "one case per row count below");
    switch (M) {
        case 1:
            return rows_times_weight<W, 1>(x, w, y, K, N, n0, n1);
        case 2:
            return rows_times_weight<W, 2>(x, w, y, K, N, n0, n1);
        case 3:
            return rows_times_weight<W, 3>(x, w, y, K, N, n0, n1);
        case 4:
            return rows_times_weight<W, 4>(x, w, y, K, N, n0, n1);
        case 5:
            return rows_times_weight<W, 5>(x, w, y, K, N, n0, n1);
        case 6:
            return rows_times_weight<W, 6>(x, w, y, K, N, n0, n1);
        case 7:
            return rows_times_weight<W, 7>(x, w, y, K, N, n0, n1);
        case 8:
            return rows_times_weight<W, 8>(x, w, y, K, N, n0, n1);
    }
}

// Compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and the baseline, picked at load time by the
// CPU's features (the package is built for baseline x86-64).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void rows_times_weight_f32(
    int64_t M, const float* x, const float* w, float* y, int64_t K, int64_t N, int64_t n0, int64_t n1) {
    rows_times_weight(M, x, w, y, K, N, n0, n1);
}
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void rows_times_weight_bf16(
    int64_t M, const float* x, const c10::BFloat16* w, float* y, int64_t K, int64_t N, int64_t n0, int64_t n1) {
    rows_times_weight(M, x, w, y, K, N, n0, n1);
}

bool fp32_or_bf16(const torch::Tensor& t) {
    return t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16;
}

}  // namespace

int64_t few_rows_max(torch::ScalarType weight_dtype) {
    return weight_dtype == torch::kBFloat16 ? kFewRowsMaxBF16 : kFewRowsMax;
}

bool few_rows_linear_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    if (!x.defined() || !weight.defined() || !x.device().is_cpu() || !weight.device().is_cpu()) return false;
    if (weight.dim() != 2 || !weight.is_contiguous() || !fp32_or_bf16(weight)) return false;
    if (x.dim() < 1 || x.scalar_type() != weight.scalar_type() || x.size(-1) != weight.size(1)) return false;
    if (bias.defined() && (bias.dim() != 1 || bias.scalar_type() != weight.scalar_type() ||
                           bias.size(0) != weight.size(0) || !bias.device().is_cpu()))
        return false;
    if (torch::GradMode::is_enabled() &&
        (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad())))
        return false;
    if (weight.size(1) == 0 || weight.size(0) == 0) return false;
    const int64_t rows = x.numel() / x.size(-1);
    return rows >= 1 && rows <= few_rows_max(weight.scalar_type());
}

torch::Tensor few_rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    if (!few_rows_linear_applies(x, weight, bias))
        fail("few_rows_linear: needs a CPU fp32 (bf16) weight, no graph, and at most ", kFewRowsMax, " (",
             kFewRowsMaxBF16, ") rows of its dtype; got x ", x.sizes(), " ", x.scalar_type(), ", weight ",
             weight.sizes(), " ", weight.scalar_type());
    const int64_t N = weight.size(0), K = weight.size(1), M = x.numel() / K;
    const auto xf = x.to(torch::kFloat32).contiguous();  // a few rows: converted once, read N times
    auto y = torch::empty({M, N}, xf.options());
    const float* xp = xf.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    // Enough weight per task that a thread's start costs less than its reads.
    const int64_t grain = std::max<int64_t>(16, (int64_t(1) << 16) / K);
    if (weight.scalar_type() == torch::kBFloat16) {
        const auto* wp = weight.data_ptr<c10::BFloat16>();
        at::parallel_for(0, N, grain,
                         [&](int64_t n0, int64_t n1) { rows_times_weight_bf16(M, xp, wp, yp, K, N, n0, n1); });
    } else {
        const float* wp = weight.data_ptr<float>();
        at::parallel_for(0, N, grain,
                         [&](int64_t n0, int64_t n1) { rows_times_weight_f32(M, xp, wp, yp, K, N, n0, n1); });
    }
    if (bias.defined()) y.add_(bias.to(torch::kFloat32));
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    return y.view(sizes).to(x.scalar_type());
}

torch::Tensor linear_layer(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    if (few_rows_linear_applies(x, weight, bias)) return few_rows_linear(x, weight, bias);
    return torch::linear(x, weight, bias);
}

}  // namespace lincat
