#include "util/threads.h"

#include <cstdlib>
#include <thread>

#include "util/torch_prelude.h"

namespace lincat {

int init_torch_threads() {
    int n = int(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("LINCAT_THREADS"); env && std::atoi(env) > 0) n = std::atoi(env);
    if (n < 1) n = 1;
    at::set_num_threads(n);
    return n;
}

}  // namespace lincat
