// LibTorch tensors to the fused kernels of kernels/hybrid_attention.h and back. CUDA tensors
// go to the CUDA kernels (when this build has them and LibTorch has CUDA); the Emulated
// backend runs the very same kernel bodies on CPU tensors, so CPU tests check this marshalling
// (dtype, contiguity, end-aligned shift, state layout) against the LibTorch forms.
#pragma once

#include <string>

#include "attention/spec.h"
#include "util/torch_prelude.h"

namespace lincat {

enum class KernelBackend { Cuda, Emulated };

// The fused kernels serve CUDA tensors unless switched off here or by LINCAT_NO_KERNELS=1 in
// the environment (then the LibTorch ops run: a fallback to compare against, or to debug).
void set_hybrid_kernels_enabled(bool enabled);
bool hybrid_kernels_enabled();

// True when a LibTorch-free fused kernel serves these inputs on their device: CUDA tensors,
// a build with the kernels, no graph to record (backward stays in LibTorch), fp32 or bf16,
// and shapes the kernels take. `why` (optional) says why not.
bool hybrid_kernel_applies(const torch::Tensor& q, const torch::Tensor& f_q, const WindowSpec& window, bool needs_grad,
                           std::string* why = nullptr);

// The chunked hybrid attention by the fused kernel: q, k, v (B, H, T, d), f_q, f_k (B, H, T, F),
// gamma, lambda (H). Computes in q's dtype (fp32 or bf16) with fp32 accumulation; returns q's dtype.
torch::Tensor hybrid_attention_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                      const torch::Tensor& lambda, const WindowSpec& window, KernelBackend backend);

// One decode step on the recurrent state's tensors, in place (layouts of HybridState):
// S (B,H,F,d), z (B,H,F), ring_k/ring_v (B,H,cap,d), ring_f (B,H,cap,F), all fp32 contiguous.
// q, k, v (B,H,1,d), f_q, f_k (B,H,1,F) in one dtype (fp32 or bf16). Returns (B,H,1,d) fp32.
torch::Tensor hybrid_decode_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                   const torch::Tensor& lambda, torch::Tensor& S, torch::Tensor& z,
                                   torch::Tensor& ring_k, torch::Tensor& ring_v, torch::Tensor& ring_f,
                                   const WindowSpec& window, int64_t capacity, int64_t position, KernelBackend backend);

}  // namespace lincat
