// Hedgehog's softmax_dim activation, [softmax(x), softmax(-x)] over the last dim clamped at
// 1e-12, forward and backward each one pass over a row. As LibTorch ops a stage-1 step spent
// ~30% of its students' time here: two softmaxes over rows of 16, a negation, a concatenation,
// and a clamp whose backward alone (ge + where) cost more than both softmaxes.
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

// True where softmax_dim_activation runs its own loops: a CPU fp32 tensor.
bool softmax_dim_fused_applies(const torch::Tensor& xw);

// (..., f) -> (..., 2f), with autograd; the LibTorch composition where the loops do not apply.
torch::Tensor softmax_dim_activation(const torch::Tensor& xw);

// The LibTorch composition: the reference the loops are tested against.
torch::Tensor softmax_dim_reference(const torch::Tensor& xw);

}  // namespace lincat
