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

// The peak bytes of the tensors a job allocates from here on: what a GPU's caching allocator
// reports as its peak, and what the planner's memory model predicts (RSS adds the allocator's
// slack and BLAS buffers).
struct TensorPeakWatch {
    int64_t baseline_bytes = 0;
    TensorPeakWatch();  // installs the tracker and resets its peak
    int64_t peak_bytes() const { return TensorMemory::peak() - baseline_bytes; }
};

}  // namespace lincat
