// Random hybrid-attention inputs shared by the attention tests.
#pragma once

#include "util/torch_prelude.h"

namespace lincat::test {

struct HybridInputs {
    torch::Tensor q, k, v, f_q, f_k, gamma, lambda;
};

// q, k scaled like real attention (scores of a few units), positive features as a
// softmax_dim map gives, gamma in (0, 1) and lambda = 1 - gamma.
inline HybridInputs random_hybrid_inputs(int64_t B, int64_t H, int64_t T, int64_t d, int64_t F, uint64_t seed) {
    torch::manual_seed(seed);
    HybridInputs in;
    in.q = torch::randn({B, H, T, d}) * 1.5;
    in.k = torch::randn({B, H, T, d}) * 1.5;
    in.v = torch::randn({B, H, T, d});
    in.f_q = torch::softmax(torch::randn({B, H, T, F}), -1);
    in.f_k = torch::softmax(torch::randn({B, H, T, F}), -1);
    in.gamma = torch::sigmoid(torch::randn({H}));
    in.lambda = 1 - in.gamma;
    return in;
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace lincat::test
