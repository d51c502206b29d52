// CUDA launchers for the kernel bodies in hybrid_body.h (sm_90 + PTX, see CMakeLists.txt).
#include <cuda_runtime.h>

#include "hybrid_body.h"

namespace lincat::kernels {

namespace {

constexpr int kThreads = 256;

__device__ body::Ctx block_ctx() {
    body::Ctx c;
    c.bx = blockIdx.x;
    c.by = blockIdx.y;
    c.tid = int(threadIdx.x);
    c.nthreads = int(blockDim.x);
    return c;
}

__global__ void chunk_state_kernel(PrefillArgs a, float* states) {
    extern __shared__ float smem[];
    body::chunk_state(block_ctx(), a, states, smem);
}
__global__ void state_scan_kernel(PrefillArgs a, float* states) {
    body::state_scan(block_ctx(), a, states);
}
__global__ void chunk_output_kernel(PrefillArgs a, const float* states) {
    extern __shared__ float smem[];
    body::chunk_output(block_ctx(), a, states, smem);
}
__global__ void decode_step_kernel(DecodeArgs a) {
    extern __shared__ float smem[];
    body::decode_step(block_ctx(), a, smem);
}

// Over 48 KiB of dynamic shared memory needs an opt-in per kernel.
cudaError_t allow_smem(const void* kernel, size_t bytes) {
    if (bytes <= 48 * 1024) return cudaSuccess;
    int dev = 0, limit = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    if (e != cudaSuccess) return e;
    if (bytes > size_t(limit)) return cudaErrorInvalidValue;
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
}

const char* error_text(cudaError_t e) {
    return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

}  // namespace

bool cuda_kernels_built() {
    return true;
}

const char* hybrid_prefill_cuda(const PrefillArgs& a, void* workspace, void* stream) {
    if (const char* why = prefill_unsupported(a); *why) return why;
    auto s = static_cast<cudaStream_t>(stream);
    auto* states = static_cast<float*>(workspace);
    const unsigned C = unsigned(body::chunk_count(a)), BH = unsigned(a.B * a.H);
    const size_t smem_state = size_t(body::chunk_state_smem_floats(a)) * sizeof(float);
    const size_t smem_out = size_t(body::output_smem_floats(a)) * sizeof(float);
    cudaError_t e = allow_smem(reinterpret_cast<const void*>(chunk_state_kernel), smem_state);
    if (e == cudaSuccess) e = allow_smem(reinterpret_cast<const void*>(chunk_output_kernel), smem_out);
    if (e != cudaSuccess) return error_text(e);
    chunk_state_kernel<<<dim3(C, BH), kThreads, smem_state, s>>>(a, states);
    const unsigned tiles = unsigned((body::state_floats(a) + body::kScanTile - 1) / body::kScanTile);
    state_scan_kernel<<<dim3(tiles, BH), kThreads, 0, s>>>(a, states);
    chunk_output_kernel<<<dim3(C, BH), kThreads, smem_out, s>>>(a, states);
    return error_text(cudaGetLastError());
}

const char* hybrid_decode_cuda(const DecodeArgs& a, void* stream) {
    if (const char* why = decode_unsupported(a); *why) return why;
    const size_t smem = size_t(body::decode_smem_floats(a)) * sizeof(float);
    decode_step_kernel<<<dim3(1, unsigned(a.B * a.H)), 128, smem, static_cast<cudaStream_t>(stream)>>>(a);
    return error_text(cudaGetLastError());
}

}  // namespace lincat::kernels
