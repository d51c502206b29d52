#pragma once

namespace lincat {

// LibTorch uses one intra-op thread unless told; use every core (or LINCAT_THREADS).
// Returns the count set.
int init_torch_threads();

}  // namespace lincat
