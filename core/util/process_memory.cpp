#include "util/process_memory.h"

#include <malloc.h>

#include <fstream>
#include <string>

#include "util/error.h"

namespace lincat {

// A field of /proc/self/status in bytes; the kernel writes kB.
static int64_t status_bytes(const std::string& field) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.compare(0, field.size() + 1, field + ":") == 0)
            return std::stoll(line.substr(field.size() + 1)) * 1024;
    fail("/proc/self/status: no field ", field, " (resident memory is measured on Linux only)");
}

int64_t resident_bytes() {
    return status_bytes("VmRSS");
}
int64_t peak_resident_bytes() {
    return status_bytes("VmHWM");
}

bool reset_peak_resident() {
    std::ofstream out("/proc/self/clear_refs");
    if (!out) return false;
    out << "5";
    out.flush();
    return bool(out);
}

void use_lean_heap() {
    // A fixed mmap threshold also turns off glibc's dynamic one, which would otherwise rise to
    // the largest freed block and keep every later tensor of that size in the heap.
    mallopt(M_MMAP_MAX, 1 << 16);
    mallopt(M_MMAP_THRESHOLD, 64 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    malloc_trim(0);
}

MemoryWatch::MemoryWatch() {
    use_lean_heap();
    reset_ok = reset_peak_resident();
    baseline_bytes = resident_bytes();
}

}  // namespace lincat
