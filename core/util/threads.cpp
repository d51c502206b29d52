#include "util/threads.h"

#include <malloc.h>

#include <cstdlib>
#include <thread>

#include "util/torch_prelude.h"

namespace lincat {

int init_torch_threads() {
    // Attention temporaries and stage 2's logits are hundreds of MB; glibc would mmap and unmap
    // each one, or trim the heap after each, and every reuse paid its page faults again
    // (measured: ~40% of a 16K-token prefill; a stage-2 step took 2.4 s with a 64 MB threshold,
    // 1.2 s with 1 GB). Keep them in the heap.
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, int(kHeapTrimThreshold));
    int n = int(std::thread::hardware_concurrency());
    if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && std::atoi(omp) > 0) n = std::atoi(omp);
    if (const char* env = std::getenv("LINCAT_THREADS"); env && std::atoi(env) > 0) n = std::atoi(env);
    if (n < 1) n = 1;
    at::set_num_threads(n);
    return n;
}

}  // namespace lincat
