// util/batched_matmul against LibTorch's matmul in fp64 on the same values, forward and backward.
#include "util/batched_matmul.h"

#include "test_util.h"

using namespace lincat;

namespace {

// Within K u sum|a b| (u = 2^-24, any order of K fp32 multiply-adds), and far under it.
void expect_close_to_fp64(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& got) {
    auto ad = a.to(torch::kFloat64), bd = b.to(torch::kFloat64);
    auto ref = torch::matmul(ad, bd);
    auto magnitude = torch::matmul(ad.abs(), bd.abs());
    ASSERT_EQ(got.sizes(), ref.sizes());
    const double bound = double(a.size(-1) + 1) * std::ldexp(1.0, -24);
    auto rel = ((got.to(torch::kFloat64) - ref).abs() / (magnitude + 1e-30)).max().item<double>();
    EXPECT_LE(rel, bound) << "a " << a.sizes() << " b " << b.sizes();
}

// The loop spreads batches over threads: tests run with OMP_NUM_THREADS=1, so ask for two.
struct TwoThreads {
    int before = at::get_num_threads();
    TwoThreads() { at::set_num_threads(2); }
    ~TwoThreads() { at::set_num_threads(before); }
};

}  // namespace

TEST(BatchedMatmul, MatchesFp64MatmulOnEveryLayoutItReads) {
    TwoThreads two;
    torch::manual_seed(7);
    torch::NoGradGuard no_grad;
    const int64_t B = 2, H = 3, C = 4, m = 17, k = 9, n = 13;
    auto a = torch::randn({B, H, C, m, k}), b = torch::randn({B, H, C, k, n});
    ASSERT_TRUE(batched_matmul_applies(a, b));
    expect_close_to_fp64(a, b, batched_matmul(a, b));
    // Transposed views are read in place ('T'), each side and both.
    auto at = torch::randn({B, H, C, k, m}).transpose(-1, -2), bt = torch::randn({B, H, C, n, k}).transpose(-1, -2);
    expect_close_to_fp64(at, b, batched_matmul(at, b));
    expect_close_to_fp64(a, bt, batched_matmul(a, bt));
    expect_close_to_fp64(at, bt, batched_matmul(at, bt));
    // A column stride of 2 is not BLAS-readable: copied first. A broadcast batch dim (stride 0).
    auto strided = torch::randn({B, H, C, m, 2 * k}).slice(-1, 0, 2 * k, 2);
    expect_close_to_fp64(strided, b, batched_matmul(strided, b));
    auto shared = torch::randn({1, H, C, k, n}).expand({B, H, C, k, n});
    expect_close_to_fp64(a, shared, batched_matmul(a, shared));
    // Narrowed rows of a bigger buffer (the chunked form's views): leading strides not packed.
    auto big = torch::randn({B, H, C + 2, m + 3, k});
    auto view = big.narrow(2, 1, C).narrow(3, 2, m);
    expect_close_to_fp64(view, b, batched_matmul(view, b));
    // An empty contraction is zeros, as matmul's.
    auto a0 = torch::randn({B, H, C, m, 0}), b0 = torch::randn({B, H, C, 0, n});
    EXPECT_TRUE(torch::equal(batched_matmul(a0, b0), torch::zeros({B, H, C, m, n})));
}

TEST(BatchedMatmul, GradientsMatchMatmulsGradients) {
    TwoThreads two;
    torch::manual_seed(8);
    auto a = torch::randn({3, 8, 11, 6}, torch::requires_grad());
    auto b = torch::randn({3, 8, 6, 5}, torch::requires_grad());
    auto w = torch::randn({3, 8, 11, 5});
    ASSERT_TRUE(batched_matmul_applies(a, b));
    auto y = batched_matmul(a, b);
    ASSERT_TRUE(y.requires_grad());
    (y * w).sum().backward();
    auto ad = a.detach().to(torch::kFloat64).requires_grad_(), bd = b.detach().to(torch::kFloat64).requires_grad_();
    (torch::matmul(ad, bd) * w.to(torch::kFloat64)).sum().backward();
    // Each gradient is one more product of the same small sizes: fp32 rounding of ~11 terms.
    EXPECT_LT((a.grad().to(torch::kFloat64) - ad.grad()).abs().max().item<double>(), 1e-5);
    EXPECT_LT((b.grad().to(torch::kFloat64) - bd.grad()).abs().max().item<double>(), 1e-5);
    // Only one side wants a gradient: the other gets none and is not computed.
    auto c = torch::randn({3, 8, 6, 5});
    auto a2 = a.detach().clone().requires_grad_();
    batched_matmul(a2, c).sum().backward();
    EXPECT_TRUE(a2.grad().defined());
    EXPECT_FALSE(c.grad().defined());
    auto ref = torch::matmul(torch::ones({3, 8, 11, 5}, torch::kFloat64), c.to(torch::kFloat64).transpose(-1, -2));
    EXPECT_LT((a2.grad().to(torch::kFloat64) - ref).abs().max().item<double>(), 1e-5);
}

TEST(BatchedMatmul, LeavesWhatItDoesNotCoverToMatmul) {
    TwoThreads two;
    torch::manual_seed(9);
    torch::NoGradGuard no_grad;
    auto a = torch::randn({2, 4, 5, 6}), b = torch::randn({2, 4, 6, 7});
    EXPECT_FALSE(batched_matmul_applies(a.to(torch::kFloat64), b.to(torch::kFloat64)));
    EXPECT_FALSE(batched_matmul_applies(a.narrow(1, 0, 1), b.narrow(1, 0, 1)));  // 2 batches: too few
    auto b_bcast = torch::randn({6, 7});                                         // matmul broadcasts it
    EXPECT_FALSE(batched_matmul_applies(a, b_bcast));
    EXPECT_TRUE(torch::allclose(batched_matmul(a, b_bcast), torch::matmul(a, b_bcast)));
    EXPECT_FALSE(batched_matmul_applies(a, torch::randn({2, 4, 5, 7})));  // k differs: matmul's error
    EXPECT_THROW(batched_matmul(a, torch::randn({2, 4, 5, 7})), c10::Error);
    ASSERT_TRUE(batched_matmul_applies(a, b));
    at::set_num_threads(1);  // one thread: nothing to spread
    EXPECT_FALSE(batched_matmul_applies(a, b));
}
