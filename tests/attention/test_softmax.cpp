#include "attention/softmax.h"
#include "attention/softmax_decode.h"

#include "test_util.h"

using namespace lincat;

// Naive per-(head, query) loop: the spec of causal softmax attention with GQA.
static torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     int64_t window) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), G = H / k.size(1);
    auto out = torch::zeros_like(q);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < T; ++i) {
                int64_t lo = window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
                auto s = torch::mv(k[b][h / G].slice(0, lo, i + 1), q[b][h][i]) / std::sqrt(double(D));
                out[b][h][i] = torch::mv(v[b][h / G].slice(0, lo, i + 1).t(), torch::softmax(s, 0));
            }
    return out;
}

TEST(SoftmaxAttention, MatchesNaiveLoopWithGqaAndWindow) {
    torch::manual_seed(0);
    auto q = torch::randn({2, 6, 13, 8}), k = torch::randn({2, 3, 13, 8}), v = torch::randn({2, 3, 13, 8});
    for (int64_t window : {0, 4}) {
        auto fast = softmax_attention(q, k, v, 0, window);
        EXPECT_LT((fast - naive_attention(q, k, v, window)).abs().max().item<double>(), 1e-5) << "window " << window;
    }
}

TEST(SoftmaxAttention, CacheDecodeMatchesPrefill) {
    torch::manual_seed(1);
    auto q = torch::randn({1, 4, 20, 16}), k = torch::randn({1, 2, 20, 16}), v = torch::randn({1, 2, 20, 16});
    SoftmaxAttentionImpl attn;
    auto full = attn.forward(q, k, v, nullptr);
    auto state = attn.new_state();
    std::vector<torch::Tensor> parts;
    parts.push_back(attn.forward(q.slice(2, 0, 7), k.slice(2, 0, 7), v.slice(2, 0, 7), state.get()));
    for (int64_t t = 7; t < 20; ++t)  // crosses the cache's initial capacity? (64) no: also test growth below
        parts.push_back(attn.forward(q.slice(2, t, t + 1), k.slice(2, t, t + 1), v.slice(2, t, t + 1), state.get()));
    EXPECT_LT((torch::cat(parts, 2) - full).abs().max().item<double>(), 1e-5);
    EXPECT_EQ(state->length(), 20);
}

TEST(SoftmaxAttention, CacheGrowsPastCapacity) {
    KVCache cache;
    auto k = torch::randn({1, 1, 50, 4}), v = torch::randn({1, 1, 50, 4});
    cache.append(k, v);
    cache.append(k, v);
    cache.append(k, v);  // 150 > initial 64 -> two growths
    EXPECT_EQ(cache.length(), 150);
    EXPECT_TRUE(torch::equal(cache.keys().slice(2, 100, 150), k));
    EXPECT_EQ(cache.bytes(), 2 * 150 * 4 * 4);
}

TEST(SoftmaxAttention, Bf16InputsAccumulateInFp32) {
    torch::manual_seed(2);
    auto q = torch::randn({1, 2, 30, 32}), k = torch::randn({1, 2, 30, 32}), v = torch::randn({1, 2, 30, 32});
    auto ref = softmax_attention(q, k, v, 0);
    auto bf = softmax_attention(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16), 0);
    EXPECT_EQ(bf.scalar_type(), torch::kBFloat16);
    // bf16 has 8 mantissa bits: inputs and output rounding bound the error near 2^-7 relative.
    EXPECT_LT((bf.to(torch::kFloat32) - ref).abs().max().item<double>(), 0.05);
}

TEST(SoftmaxAttention, QueryChunksMatchTheNaiveLoop) {
    // A score budget of 3 query rows per chunk (odd, so the last chunk is short): the chunked
    // path must equal the spec, with GQA, a sliding window and a decode offset.
    torch::manual_seed(2);
    auto q = torch::randn({2, 4, 17, 8}), k = torch::randn({2, 2, 17, 8}), v = torch::randn({2, 2, 17, 8});
    const int64_t three_rows = 3 * 4 * 2 * 4 * 17;  // rows x (fp32 bytes x B x H x S)
    for (int64_t window : {0, 5}) {
        auto chunked = softmax_attention(q, k, v, 0, window, nullptr, three_rows);
        EXPECT_LT((chunked - naive_attention(q, k, v, window)).abs().max().item<double>(), 1e-5) << "window " << window;
    }
    // Queries at positions 10..16 over all 17 keys, in chunks, equal the last rows of the prefill.
    auto tail = softmax_attention(q.slice(2, 10), k, v, 10, 0, nullptr, three_rows);
    EXPECT_LT((tail - naive_attention(q, k, v, 0).slice(2, 10)).abs().max().item<double>(), 1e-5);
}

TEST(SoftmaxAttention, DecodeLoopMatchesTheNaiveLoopOverACacheView) {
    // The CPU decode loop (attention/softmax_decode) reads the cache's narrowed, strided view;
    // GQA, a window, head dims off the 8-lane dot product, and 1 or 3 query rows at an offset.
    torch::manual_seed(3);
    const int64_t S = 21;
    for (int64_t D : {8, 13, 48})
        for (int64_t window : {0, 5})
            for (int64_t T : {1, 3}) {
                auto q = torch::randn({2, 6, S, D}), k = torch::randn({2, 3, S, D}), v = torch::randn({2, 3, S, D});
                KVCache cache;
                cache.append(k, v);  // capacity 64 > 21: keys() is a view with the cache's strides
                ASSERT_FALSE(cache.keys().is_contiguous());
                auto qt = q.slice(2, S - T);
                ASSERT_TRUE(softmax_decode_applies(qt.reshape({2, 3, 2, T, D}), cache.keys(), cache.values()));
                auto fast = softmax_attention(qt, cache.keys(), cache.values(), S - T, window);
                // fp32 sums in a different order than the spec's mv: ~1e-6 on outputs of size ~1.
                auto want = naive_attention(q, k, v, window).slice(2, S - T);
                EXPECT_LT((fast - want).abs().max().item<double>(), 1e-5)
                    << "D " << D << " window " << window << " T " << T;
            }
}

TEST(SoftmaxAttention, DecodeLoopReadsABf16CacheAsTheNaiveLoopOnItsValues) {
    // A bf16 model's cache is read in bf16 and widened exactly, so the loop must equal the fp32
    // spec on the bf16 values themselves; only the bf16 rounding of the output (2^-8 relative,
    // outputs of size ~1) separates them.
    torch::manual_seed(4);
    const int64_t S = 37, D = 48, T = 1;
    auto q = torch::randn({3, 6, S, D}).to(torch::kBFloat16), k = torch::randn({3, 2, S, D}).to(torch::kBFloat16),
         v = torch::randn({3, 2, S, D}).to(torch::kBFloat16);
    KVCache cache;
    cache.append(k, v);
    ASSERT_EQ(cache.keys().scalar_type(), torch::kBFloat16);
    for (int64_t window : {0, 7}) {
        auto qt = q.slice(2, S - T);
        ASSERT_TRUE(softmax_decode_applies(qt.reshape({3, 2, 3, T, D}), cache.keys(), cache.values()));
        auto fast = softmax_attention(qt, cache.keys(), cache.values(), S - T, window);
        EXPECT_EQ(fast.scalar_type(), torch::kBFloat16);
        auto f32 = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
        auto want = naive_attention(f32(q), f32(k), f32(v), window).slice(2, S - T);
        auto err = (f32(fast) - want).abs().max().item<double>();
        EXPECT_LT(err, 8e-3) << "window " << window;
    }
}

TEST(SoftmaxAttention, DecodeLoopLeavesGraphsAndLongQueriesToTheMatmulPath) {
    auto q = torch::randn({1, 2, 1, 2, 8}), k = torch::randn({1, 2, 5, 8}), v = torch::randn({1, 2, 5, 8});
    EXPECT_TRUE(softmax_decode_applies(q, k, v));
    EXPECT_FALSE(softmax_decode_applies(q.clone().requires_grad_(true), k, v));  // autograd needs the graph
    EXPECT_FALSE(softmax_decode_applies(torch::randn({1, 2, 1, 17, 8}), k, v));  // 17 rows > 16
    EXPECT_TRUE(softmax_decode_applies(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16)));
    EXPECT_FALSE(softmax_decode_applies(q, k.to(torch::kBFloat16), v));  // k and v of one dtype
    EXPECT_FALSE(softmax_decode_applies(q.to(torch::kHalf), k, v));      // fp32 or bf16 only
    torch::NoGradGuard ng;  // without grad mode a leaf that wants grad records nothing
    EXPECT_TRUE(softmax_decode_applies(q.clone().requires_grad_(true), k, v));
}

TEST(SoftmaxAttention, OurParallelLoopsRunOnEveryTorchThread) {
    // at::parallel_for is inline: a file built without OpenMP ran the decode and sampling loops
    // on one thread while LibTorch's own kernels used all of them.
    const int saved = at::get_num_threads();
    at::set_num_threads(2);
    std::vector<int> ran_on(64, -1);
    at::parallel_for(0, 64, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ran_on[size_t(i)] = at::get_thread_num();
    });
    at::set_num_threads(saved);
    EXPECT_EQ(ran_on.front(), 0);
    EXPECT_EQ(ran_on.back(), 1);  // the second half ran on the second thread
}
