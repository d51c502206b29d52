// Many small matrix products at once (the chunked hybrid attention's (B, H, C) batches of
// 64 x 48 tiles, the teacher's per-head scores) with the batches spread over threads.
// LibTorch 1.13 without MKL runs a batched matmul as a serial loop of one sgemm per batch, each
// too small for BLAS to thread: 96 products of 64 x 48 x 128 ran at 46 GFLOP/s where one mm of
// the same work runs at 108 on a 2-core Zen 3 (`lincat bench batched` prints both on a step's shapes).
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

// True where batched_matmul runs its own loop: CPU fp32 a (..., m, k) and b (..., k, n) with
// the same leading dims, at least 4 batches a thread.
bool batched_matmul_applies(const torch::Tensor& a, const torch::Tensor& b);

// a @ b, as torch::matmul computes it, with autograd; torch::matmul where the loop does not apply.
// Each batch is one single-threaded sgemm on a's and b's own strides (a transposed view is read
// in place), the call LibTorch's loop makes per batch, there with BLAS's own threads.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace lincat
