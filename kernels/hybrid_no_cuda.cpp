// Built instead of hybrid_attention.cu when CMake finds no CUDA compiler.
#include "hybrid_attention.h"

namespace lincat::kernels {

bool cuda_kernels_built() {
    return false;
}
const char* hybrid_prefill_cuda(const PrefillArgs&, void*, void*) {
    return "this build has no CUDA kernels (CMake found no CUDA compiler)";
}
const char* hybrid_decode_cuda(const DecodeArgs&, void*) {
    return "this build has no CUDA kernels (CMake found no CUDA compiler)";
}

}  // namespace lincat::kernels
