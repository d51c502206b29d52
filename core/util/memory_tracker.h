// Peak CPU memory of LibTorch tensors, measured by wrapping LibTorch's CPU allocator (exact
// for tensor storage; BLAS-internal scratch buffers are not counted).
#pragma once

#include <cstdint>

namespace lincat {

class TensorMemory {
  public:
    static void install();  // idempotent; tensors allocated before it are not counted
    static int64_t current();
    static int64_t peak();
    static void reset_peak();  // peak := current
};

}  // namespace lincat
