// Fused hybrid attention (DESIGN.md 1.1-1.3) for CUDA: chunked prefill and one decode step.
// A raw-pointer API with neither torch nor CUDA headers, so the core compiles against any
// LibTorch (Debian's CPU 1.13 or an upstream 2.x with CUDA) and tests can run the very same
// kernel code on the CPU (the *_emulated entry points: one thread per block, same phases).
//
// Math (per batch row b and head h, fp32 accumulation whatever the storage type):
//   a(i,j) = gamma_h exp(q_i.k_j / sqrt(d) - m_i)   j in W(i)      (m_i: max over W(i))
//          + lambda_h fq_i.fk_j                     j <= i outside W(i)
//   y_i = sum_j a(i,j) v_j / sum_j a(i,j)
// Prefill works in chunks of w tokens, the LibTorch chunked form: softmax (and, for sliding
// windows, the linear part left of the window) against chunks c-1 and c, linear attention
// against the running state S = sum fk v^T, z = sum fk of chunks <= c-2. Three kernels:
// per-chunk states (parallel over chunks), an exclusive scan over chunks, per-chunk output.
// Backward stays in LibTorch: these kernels serve inference (generate, eval, bench).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lincat::kernels {

enum class DType : int { F32 = 0, BF16 = 1 };  // bf16: raw uint16 storage, fp32 math

// q, k, v (B, H, T, d), fq, fk (B, H, T, F): contiguous, all of `dtype`; gamma, lambda (H)
// fp32; out (B, H, T, d) of `dtype`. Positions are padded in front by `shift` (end-aligned
// terraced blocks, 0 otherwise) so that chunk c holds padded positions c*w .. c*w+w-1.
struct PrefillArgs {
    const void *q = nullptr, *k = nullptr, *v = nullptr, *fq = nullptr, *fk = nullptr;
    const float *gamma = nullptr, *lambda = nullptr;
    void* out = nullptr;
    int64_t B = 0, H = 0, T = 0, d = 0, F = 0;
    int64_t window = 64;   // w
    bool sliding = false;  // false: terraced (tk) blocks
    int64_t shift = 0;
    DType dtype = DType::F32;
};

// One decode step at position p = `position` for B rows. The state is the LibTorch
// HybridState's, fp32 and updated in place: S (B, H, F, d), z (B, H, F), ring buffers of the
// last `capacity` tokens (B, H, cap, d | F); slot s holds position p - ((p - s) mod cap).
// q, k, v (B, H, d) and fq, fk (B, H, F) of `dtype`; out (B, H, d) of `dtype`.
struct DecodeArgs {
    const void *q = nullptr, *k = nullptr, *v = nullptr, *fq = nullptr, *fk = nullptr;
    const float *gamma = nullptr, *lambda = nullptr;
    float *S = nullptr, *z = nullptr, *ring_k = nullptr, *ring_v = nullptr, *ring_f = nullptr;
    void* out = nullptr;
    int64_t B = 0, H = 0, d = 0, F = 0;
    int64_t window = 64, capacity = 128;
    bool sliding = false;
    int64_t position = 0;
    DType dtype = DType::F32;
};

// "" when the kernels take these shapes, else why not (the caller falls back to LibTorch).
// Limits: d, F multiples of 4 up to 256, w a multiple of 4 up to 128, shared memory per block.
const char* prefill_unsupported(const PrefillArgs& a);
const char* decode_unsupported(const DecodeArgs& a);

// fp32 bytes of per-chunk states the prefill needs as scratch (B * H * chunks * (F*d + F) * 4).
size_t prefill_workspace_bytes(const PrefillArgs& a);
int64_t prefill_chunks(const PrefillArgs& a);

// True when this build has the CUDA kernels (CMake found nvcc).
bool cuda_kernels_built();

// Launch on `stream` (a cudaStream_t; nullptr = the default stream). `workspace`: device
// memory of prefill_workspace_bytes(). Returns "" or the CUDA error / refusal as text.
const char* hybrid_prefill_cuda(const PrefillArgs& a, void* workspace, void* stream);
const char* hybrid_decode_cuda(const DecodeArgs& a, void* stream);

// The same kernel bodies run on the host, block after block, one thread per block.
void hybrid_prefill_emulated(const PrefillArgs& a, void* workspace);
void hybrid_decode_emulated(const DecodeArgs& a);

// bf16 <-> fp32 as LibTorch does it (round to nearest even, NaN stays NaN).
float bf16_to_float(uint16_t bits);
uint16_t float_to_bf16(float f);

}  // namespace lincat::kernels
