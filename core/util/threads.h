#pragma once

#include <cstdint>

namespace lincat {

// Process start-up for torch work: LibTorch uses one intra-op thread unless told, so use
// every core (or LINCAT_THREADS, else OMP_NUM_THREADS); and keep large allocations in the heap. Returns the threads.
int init_torch_threads();

// glibc's M_TRIM_THRESHOLD that init_torch_threads sets (and `lincat bench train` gives the plain
// PyTorch step it compares against).
constexpr int64_t kHeapTrimThreshold = int64_t(1) << 30;

}  // namespace lincat
