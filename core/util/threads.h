#pragma once

namespace lincat {

// Process start-up for torch work: LibTorch uses one intra-op thread unless told, so use
// every core (or LINCAT_THREADS, else OMP_NUM_THREADS); and keep large allocations in the heap. Returns the threads.
int init_torch_threads();

}  // namespace lincat
