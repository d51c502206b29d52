// A linear layer applied to a few rows (decode: one token per sequence) as one pass over its
// weight. LibTorch sends y = x W^T to OpenBLAS's sgemm, which packs the whole weight into a
// buffer on every call: at one row the lm_head of stories15M took 1.4 ms where reading its
// 37 MB once takes 0.4 ms (`lincat bench linear` prints the table).
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

// Most rows the one-pass form takes. Each weight row is read once and dotted with every row of
// x, so its cost grows with rows only in arithmetic; beyond these, blocked GEMMs win (the
// crossovers `lincat bench linear` measured on this machine: OpenBLAS's sgemm from 16 fp32 rows,
// oneDNN's bf16 GEMM from 4 bf16 rows, whose weights the one-pass form widens one by one).
constexpr int64_t kFewRowsMax = 8;      // the kernel's largest case
constexpr int64_t kFewRowsMaxBF16 = 2;  // used for a bf16 weight

// kFewRowsMax or kFewRowsMaxBF16 by the weight's dtype.
int64_t few_rows_max(torch::ScalarType weight_dtype);

// True where few_rows_linear computes what torch::linear would: a CPU fp32 or bf16 weight
// (out, in), contiguous; x (..., in) of the weight's dtype with at most few_rows_max rows; bias
// of that dtype or undefined; no autograd graph wanted.
bool few_rows_linear_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// x W^T + b accumulated in fp32, rounded once to x's dtype. Fails where it does not apply.
torch::Tensor few_rows_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// torch::linear, or few_rows_linear where it applies: what the model's layers call.
torch::Tensor linear_layer(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace lincat
