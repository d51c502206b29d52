// The one-pass linear layer at a few rows (model/few_rows_linear.h) against LibTorch's
// torch::linear in fp64 on the same values.
#include "model/few_rows_linear.h"

#include "test_util.h"

using namespace lincat;

namespace {

// |y - ref| within the worst-case bound of any order of K fp32 multiply-adds, K u sum|x w|
// (u = 2^-24); bf16 adds one rounding of the result (u = 2^-8 relative).
void expect_close_to_fp64(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                          const torch::Tensor& y) {
    auto xd = x.to(torch::kFloat64), wd = w.to(torch::kFloat64);
    auto bd = b.defined() ? b.to(torch::kFloat64) : torch::Tensor();
    auto ref = torch::linear(xd, wd, bd);
    auto magnitude = torch::linear(xd.abs(), wd.abs(), bd.defined() ? bd.abs() : torch::Tensor());
    const double K = double(w.size(1)) + 1;
    auto bound = K * std::ldexp(1.0, -24) * magnitude + 1e-30;
    if (y.scalar_type() == torch::kBFloat16) bound = bound + std::ldexp(1.0, -8) * ref.abs();
    ASSERT_EQ(y.sizes(), ref.sizes());
    ASSERT_EQ(y.scalar_type(), x.scalar_type());
    auto excess = ((y.to(torch::kFloat64) - ref).abs() - bound).max().item<double>();
    EXPECT_LE(excess, 0.0) << "x " << x.sizes() << " w " << w.sizes() << " " << w.scalar_type();
    // The bound is loose; the error should also be far under it (catches a sum that drops a lane).
    auto rel = ((y.to(torch::kFloat64) - ref).abs() / (magnitude + 1e-30)).max().item<double>();
    EXPECT_LT(rel, y.scalar_type() == torch::kBFloat16 ? 8e-3 : 1e-5);
}

}  // namespace

TEST(FewRowsLinear, MatchesFp64LinearAtEveryRowCountAndAwkwardWidth) {
    torch::manual_seed(3);
    torch::NoGradGuard no_grad;
    // K: a whole number of 32-wide steps, one with an 8-wide and a scalar tail, shorter than a lane.
    for (int64_t K : {288, 291, 5, 40})
        for (int64_t N : {37, 4096}) {  // 4096: split across threads
            auto w = torch::randn({N, K});
            auto b = torch::randn({N});
            for (int64_t M = 1; M <= kFewRowsMax; ++M) {
                auto x = torch::randn({M, 1, K});  // decode's (batch, 1 token, in)
                ASSERT_TRUE(few_rows_linear_applies(x, w, b));
                expect_close_to_fp64(x, w, b, few_rows_linear(x, w, b));
                expect_close_to_fp64(x, w, {}, few_rows_linear(x, w, {}));
            }
        }
}

TEST(FewRowsLinear, Bf16WeightsRoundOnceFromFp32Sums) {
    torch::manual_seed(4);
    torch::NoGradGuard no_grad;
    for (int64_t K : {288, 291, 7})
        for (int64_t N : {37, 4096}) {
            auto w = torch::randn({N, K}).to(torch::kBFloat16);
            auto b = torch::randn({N}).to(torch::kBFloat16);
            for (int64_t M = 1; M <= kFewRowsMaxBF16; ++M) {
                auto x = torch::randn({M, K}).to(torch::kBFloat16);
                ASSERT_TRUE(few_rows_linear_applies(x, w, b));
                expect_close_to_fp64(x, w, b, few_rows_linear(x, w, b));
            }
        }
}

TEST(FewRowsLinear, OneDimensionalInputKeepsItsShape) {
    torch::NoGradGuard no_grad;
    auto w = torch::randn({9, 16}), x = torch::randn({16});
    auto y = linear_layer(x, w, {});
    EXPECT_EQ(y.sizes(), torch::IntArrayRef({9}));
    expect_close_to_fp64(x, w, {}, y);
}

TEST(FewRowsLinear, LeavesWhatItDoesNotCoverToLibTorch) {
    torch::manual_seed(5);
    auto w = torch::randn({33, 24}), b = torch::randn({33});
    {
        torch::NoGradGuard no_grad;
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({kFewRowsMax + 1, 24}), w, b));  // sgemm's range
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({kFewRowsMaxBF16 + 1, 24}).to(torch::kBFloat16),
                                             w.to(torch::kBFloat16), {}));
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({1, 24}).to(torch::kBFloat16), w, {}));  // mixed dtypes
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({1, 24}), w.to(torch::kFloat64), {}));
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({0, 24}), w, {}));  // no rows
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({1, 23}), w, {}));  // wrong width: torch's error
        auto wt = torch::randn({24, 33}).t();                                 // a transposed view
        EXPECT_FALSE(few_rows_linear_applies(torch::randn({1, 24}), wt, {}));
        auto x = torch::randn({1, 24});
        EXPECT_TRUE(torch::allclose(linear_layer(x, wt, {}), torch::linear(x, wt, {})));
        auto many = torch::randn({20, 24});
        EXPECT_TRUE(torch::equal(linear_layer(many, w, b), torch::linear(many, w, b)));
        lincat::test::expect_error([&] { few_rows_linear(many, w, b); }, {"at most 8"});
        lincat::test::expect_error([&] { few_rows_linear(torch::randn({1, 23}), w, b); }, {"few_rows_linear"});
    }
    // Training: a graph is wanted, so LibTorch's op records it.
    auto wg = w.clone().requires_grad_(true);
    auto x = torch::randn({1, 24});
    EXPECT_FALSE(few_rows_linear_applies(x, wg, {}));
    auto y = linear_layer(x, wg, {});
    ASSERT_TRUE(y.requires_grad());
    y.sum().backward();
    EXPECT_TRUE(torch::allclose(wg.grad(), x.expand({33, 24})));
    {
        torch::NoGradGuard no_grad;  // the same weight under no_grad: the one-pass form again
        EXPECT_TRUE(few_rows_linear_applies(x, wg, {}));
    }
}
