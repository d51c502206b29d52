// The fused softmax_dim activation (attention/softmax_dim_map.h) against LibTorch's composition
// (softmax, softmax of the negation, cat, clamp_min) in fp64, values and gradients.
#include "attention/softmax_dim_map.h"

#include "test_util.h"

using namespace lincat;

namespace {

struct TwoThreads {  // rows are split over threads: tests run with OMP_NUM_THREADS=1
    int before = at::get_num_threads();
    TwoThreads() { at::set_num_threads(2); }
    ~TwoThreads() { at::set_num_threads(before); }
};

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

TEST(SoftmaxDimMap, ValuesMatchTheComposition) {
    TwoThreads two;
    torch::manual_seed(11);
    torch::NoGradGuard no_grad;
    for (int64_t f : {1, 7, 16, 64}) {
        // Spread 8: some features of each row fall under the 1e-12 floor and are clamped.
        auto x = torch::randn({3, 5, 37, f}) * 8;
        ASSERT_TRUE(softmax_dim_fused_applies(x));
        auto got = softmax_dim_activation(x);
        auto want = softmax_dim_reference(x.to(torch::kFloat64));
        ASSERT_EQ(got.sizes(), want.sizes());
        // Relative to fp64, no worse than LibTorch's own fp32 composition (whose error is mostly
        // the fp32 rounding of x - max, up to ~40 here, inside the exp) plus a few ulps.
        auto rel = [&](const torch::Tensor& y) {
            return ((y.to(torch::kFloat64) - want).abs() / want).max().item<double>();
        };
        const double torch_rel = rel(softmax_dim_reference(x));
        EXPECT_LT(rel(got), 1.5 * torch_rel + std::ldexp(1.0, -21)) << "f " << f << ", LibTorch fp32: " << torch_rel;
        EXPECT_GE(got.min().item<float>(), 1e-12f);
        if (f == 64) EXPECT_GT((want <= 1.0001e-12).sum().item<int64_t>(), 0) << "the test should reach the floor";
    }
    // A non-contiguous input (a transposed view) reads as its values.
    auto xt = torch::randn({4, 16, 9}).transpose(1, 2);
    EXPECT_LT(max_abs_diff(softmax_dim_activation(xt), softmax_dim_reference(xt.to(torch::kFloat64))), 1e-6);
}

TEST(SoftmaxDimMap, GradientsMatchTheComposition) {
    TwoThreads two;
    torch::manual_seed(12);
    for (int64_t f : {3, 16}) {
        auto base = torch::randn({2, 3, 300, f}) * 6;
        auto w = torch::randn({2, 3, 300, 2 * f});
        auto x = base.clone().requires_grad_();
        auto y = softmax_dim_activation(x);
        ASSERT_TRUE(y.requires_grad());
        (y * w).sum().backward();
        auto xd = base.to(torch::kFloat64).requires_grad_();
        (softmax_dim_reference(xd) * w.to(torch::kFloat64)).sum().backward();
        // |g| ~ 1 per feature: fp32 rounding of sums over 2f terms.
        EXPECT_LT(max_abs_diff(x.grad(), xd.grad()), 2e-6) << "f " << f;
    }
}

TEST(SoftmaxDimMap, OtherDtypesTakeTheComposition) {
    auto x = torch::randn({2, 8}, torch::kFloat64);
    EXPECT_FALSE(softmax_dim_fused_applies(x));
    EXPECT_TRUE(torch::equal(softmax_dim_activation(x), softmax_dim_reference(x)));
    EXPECT_FALSE(softmax_dim_fused_applies(torch::randn({0, 8})));
}
