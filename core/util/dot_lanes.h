// Dot products of the CPU decode loops in eight partial sums: the compiler vectorises them
// without reassociating floats (a single running sum is a chain of dependent adds, ~4 cycles an
// element). B may be float or c10::BFloat16 (widened exactly by float()).
#pragma once

#include <cstdint>

namespace lincat {

template <typename A, typename B>
inline float dot_lanes(const A* a, const B* b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += float(a[i + l]) * float(b[i + l]);
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += float(a[i]) * float(b[i]);
    return s;
}

}  // namespace lincat
