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
struct MemoryWatch {
    int64_t baseline_bytes = 0;
    bool reset_ok = false;
    MemoryWatch();  // resets the peak, then reads the baseline
    int64_t peak_bytes() const { return peak_resident_bytes(); }
    int64_t peak_above_baseline() const { return peak_bytes() - baseline_bytes; }
};

}  // namespace lincat
