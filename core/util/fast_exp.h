// exp(x) in plain float arithmetic that the compiler vectorises inside a loop (std::exp is one
// library call per element; LibTorch's vectorised exp is a whole-tensor pass, which the
// sampler's and the decode loop's row buffers would leave cache for). Cephes' expf: Cody-Waite
// reduction by ln 2, a degree-5 polynomial, the power of two built in the exponent bits.
// Relative error under 2 ulp for x in [-87, 88] (tests/util/test_fast_exp.cpp checks it
// against fp64 exp); 0 below -87.3 (and for -inf), x capped at 88.3, NaN gives NaN.
#pragma once

#include <bit>
#include <cstdint>

namespace lincat {

__attribute__((always_inline)) inline float fast_exp(float x) {
    const bool underflow = x < -87.3f;  // -inf too; NaN stays NaN
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    // n = round(x / ln 2) by the 1.5 * 2^23 trick (no call, so it vectorises).
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    const float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    const float scale = std::bit_cast<float>(uint32_t(int32_t(n) + 127) << 23);
    return underflow ? 0.0f : p * scale;
}

}  // namespace lincat
