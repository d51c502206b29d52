#include "util/fast_exp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

using lincat::fast_exp;

TEST(FastExp, IsWithinTwoUlpOfFp64ExpOverFloatsRange) {
    // 2^20 evenly spaced points over [-87, 88], and +-2^-k near 0 where the polynomial alone works.
    double worst = 0;
    float worst_x = 0;
    auto check = [&](float x) {
        const double want = std::exp(double(x));
        const double rel = std::abs(double(fast_exp(x)) - want) / want;
        if (rel > worst) worst = rel, worst_x = x;
    };
    const int n = 1 << 20;
    for (int i = 0; i <= n; ++i) check(-87.0f + 175.0f * float(i) / float(n));
    for (int k = 1; k <= 60; ++k) check(std::ldexp(1.0f, -k)), check(-std::ldexp(1.0f, -k));
    // 2 ulp of a float is 2 * 2^-23 = 2.4e-7 relative at worst.
    EXPECT_LT(worst, 2.4e-7) << "at x = " << worst_x;
    std::printf("fast_exp: worst relative error %.3g at x = %g\n", worst, double(worst_x));
}

TEST(FastExp, EdgesAreExactWhereTheSamplerNeedsThem) {
    EXPECT_EQ(fast_exp(0.0f), 1.0f);                                     // the row's maximum weighs exactly 1
    EXPECT_EQ(fast_exp(-std::numeric_limits<float>::infinity()), 0.0f);  // a masked token is never drawn
    EXPECT_EQ(fast_exp(-100.0f), 0.0f);
    EXPECT_TRUE(std::isnan(fast_exp(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_TRUE(std::isfinite(fast_exp(1000.0f)));  // capped, not inf
}
