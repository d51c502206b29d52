// Drawing one token per row of logits by the inverse CDF: the sampler's step (data/dataset.cpp).
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

// One token per row of logits (b, V; fp32, or bf16 read as it is) at temperature 1: the first
// whose cumulative probability exceeds u (b, 1) in [0, 1) times the total. Returns (b, 1) int64
// on logits' device. Fails on a row whose logits are NaN or all -inf.
torch::Tensor inverse_cdf_sample(const torch::Tensor& logits, const torch::Tensor& u);

}  // namespace lincat
