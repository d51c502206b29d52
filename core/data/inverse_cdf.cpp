#include "data/inverse_cdf.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "util/error.h"
#include "util/fast_exp.h"

namespace lincat {

namespace {

// Tokens per block: a row's 32K-128K weights are summed block by block, so the search crosses a
// few hundred block sums and then scans one block.
constexpr int64_t kCdfBlock = 256;

__attribute__((always_inline)) inline float widen(float x) {
    return x;
}
__attribute__((always_inline)) inline float widen(c10::BFloat16 x) {
    return float(x);  // exact: bf16 is fp32's top half
}

// One row in one pass over its logits, all in a row buffer that stays in L2: the maximum, then
// per block w = exp(l - max) and its sum (fp64 in eight lanes, so it vectorises; a single running
// fp64 sum is a chain of dependent adds), then the block holding u times the total and the token
// in it. Lanes and blocks reassociate only fp64 roundings: a pick moves only where u lands within
// ~1e-12 of a bucket's edge, and then to the neighbouring token. -1 for a NaN or empty row.
// Sixteen lanes: a plain max reduction over floats does not vectorise without -ffast-math.
template <typename T>
__attribute__((always_inline)) inline float row_max(const T* x, int64_t V) {
    float lane[16];
    for (float& l : lane) l = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + 16 <= V; i += 16)
        for (int l = 0; l < 16; ++l) lane[l] = widen(x[i + l]) > lane[l] ? widen(x[i + l]) : lane[l];
    float m = lane[0];
    for (int l = 1; l < 16; ++l) m = lane[l] > m ? lane[l] : m;
    for (; i < V; ++i) m = widen(x[i]) > m ? widen(x[i]) : m;
    return m;  // NaNs are not propagated here; pick_row's total catches them
}

// Inlined into each ISA's clone below, so it is compiled for that ISA.
template <typename T>
__attribute__((always_inline)) inline int64_t pick_row(const T* logits, int64_t V, double u, float* w,
                                                       double* block_sums) {
    const float m = row_max(logits, V);
    if (!(m > -std::numeric_limits<float>::infinity())) return -1;
    const int64_t blocks = (V + kCdfBlock - 1) / kCdfBlock;
    double total = 0;
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t lo = b * kCdfBlock, hi = std::min(V, lo + kCdfBlock);
        for (int64_t i = lo; i < hi; ++i) w[i] = fast_exp(widen(logits[i]) - m);
        double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; ++l) lane[l] += double(w[i + l]);
        double s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        for (; i < hi; ++i) s += double(w[i]);
        block_sums[b] = s;
        total += s;
    }
    if (!std::isfinite(total)) return -1;  // a NaN logit
    const double target = u * total;
    double before = 0;  // the running sum at the start of block b
    for (int64_t b = 0; b < blocks; ++b) {
        if (before + block_sums[b] > target) {
            const int64_t lo = b * kCdfBlock, hi = std::min(V, lo + kCdfBlock);
            double acc = before;
            int64_t last_positive = -1;
            for (int64_t i = lo; i < hi; ++i) {
                acc += double(w[i]);
                if (w[i] > 0) last_positive = i;
                if (acc > target) return i;
            }
            // The block's sum crossed the target but its scan, rounded differently, did not:
            // u sits on the block's end, so its last token that can be drawn.
            if (last_positive >= 0) return last_positive;
        }
        before += block_sums[b];
    }
    for (int64_t i = V - 1; i > 0; --i)  // u rounded past the total: the last token that can be drawn
        if (w[i] > 0) return i;
    return 0;
}

// Compiled for AVX-512, AVX2 and the baseline, picked at load time: exp and the sums are the
// step's arithmetic, and the package is built for baseline x86-64.
__attribute__((target_clones("avx512f", "avx2", "default"))) int64_t pick_row_f32(const float* l, int64_t V, double u,
                                                                                  float* w, double* sums) {
    return pick_row(l, V, u, w, sums);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) int64_t pick_row_bf16(const c10::BFloat16* l, int64_t V,
                                                                                   double u, float* w, double* sums) {
    return pick_row(l, V, u, w, sums);
}

}  // namespace

torch::Tensor inverse_cdf_sample(const torch::Tensor& logits, const torch::Tensor& u) {
    if (!logits.device().is_cpu()) {  // on a GPU the tensor form stays on the device
        auto cdf = torch::softmax(logits.to(torch::kFloat32), -1).cumsum_(-1);
        auto target = u.to(cdf.device(), torch::kFloat32) * cdf.narrow(1, cdf.size(1) - 1, 1);
        return torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).clamp_max_(cdf.size(1) - 1);
    }
    // One fused pass per row (whole-batch max, exp and cumsum tensors were five passes over
    // 32 MB a step at 256 x 32K; LibTorch's max and exp alone took about 4 ms each of a step).
    auto lg = logits.contiguous();
    if (lg.scalar_type() != torch::kBFloat16) lg = lg.to(torch::kFloat32);
    auto uf = u.to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t b = lg.size(0), V = lg.size(1);
    auto out = torch::empty({b, 1}, torch::kLong);
    const double* up = uf.data_ptr<double>();
    int64_t* op = out.data_ptr<int64_t>();
    std::atomic<int64_t> bad_row{-1};
    at::parallel_for(0, b, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> w(static_cast<size_t>(V));
        std::vector<double> sums(static_cast<size_t>((V + kCdfBlock - 1) / kCdfBlock));
        for (int64_t r = begin; r < end; ++r) {
            op[r] = lg.scalar_type() == torch::kBFloat16
                        ? pick_row_bf16(lg.data_ptr<c10::BFloat16>() + r * V, V, up[r], w.data(), sums.data())
                        : pick_row_f32(lg.data_ptr<float>() + r * V, V, up[r], w.data(), sums.data());
            if (op[r] < 0) bad_row = r;
        }
    });
    if (bad_row >= 0) fail("sampling: the logits of row ", bad_row.load(), " are NaN or all -inf");
    return out;
}

}  // namespace lincat
