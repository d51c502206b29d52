// Resident memory of this process, as the kernel counts it (/proc/self/status VmRSS and
// VmHWM): what a block job or a state dump really holds, libraries and allocator slack
// included. Block and dump jobs record the peak next to the planner's prediction (issue 16).
#pragma once

#include <cstdint>

namespace lincat {

int64_t resident_bytes();       // VmRSS
int64_t peak_resident_bytes();  // VmHWM: the high-water mark since start or the last reset
// Sets the high-water mark to the current RSS (writes 5 to /proc/self/clear_refs, Linux >= 4.0);
// false where the kernel refuses, and the peak then counts from process start.
bool reset_peak_resident();

// A job's memory: RSS when it began (runtime and libraries loaded, no model yet) and its peak.
// (util/memory_tracker.h's TensorPeakWatch adds the peak of its tensors' bytes.)
//
// A watched job also switches glibc to a lean heap: blocks of 256 kB and more are mapped and
// unmapped one by one, and free pages go back to the OS. The default policy of this program
// (util/threads.h) keeps up to 1 GB of freed memory for speed; a block job's RSS would then count
// what it once held rather than what it needs (measured: +96 MB after 4 steps on a 42 MB block).
struct MemoryWatch {
    int64_t baseline_bytes = 0;
    bool reset_ok = false;
    MemoryWatch();  // lean heap, trims, resets the peak, then reads the baseline
    int64_t peak_bytes() const { return peak_resident_bytes(); }
    int64_t peak_above_baseline() const { return peak_bytes() - baseline_bytes; }
};

// glibc's heap for memory-bound jobs (see MemoryWatch); idempotent.
void use_lean_heap();

}  // namespace lincat
