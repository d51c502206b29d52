// Hybrid attention: the quadratic form against a naive loop (the spec) and an independent
// Python implementation; chunked and recurrent forms against the quadratic one, forward
// and backward, at odd lengths.
#include "attention/hybrid.h"

#include "attention/linearize.h"
#include "model/weights.h"
#include "attention/hybrid_inputs.h"
#include "test_util.h"
#include "util/json.h"

using namespace lincat;
using lincat::test::expect_error;

namespace {

using Inputs = lincat::test::HybridInputs;
using lincat::test::random_hybrid_inputs;

Inputs random_inputs(int64_t B, int64_t H, int64_t T, int64_t d, int64_t F, uint64_t seed) {
    return random_hybrid_inputs(B, H, T, d, F, seed);
}

// The spec, one (b, h, i) at a time.
torch::Tensor naive_hybrid(const Inputs& in, const WindowSpec& w) {
    const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), d = in.q.size(3);
    auto win = hybrid_window_mask(T, w);
    auto y = torch::zeros_like(in.q);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < T; ++i) {
                double m = -INFINITY;
                for (int64_t j = 0; j <= i; ++j)
                    if (win[i][j].item<bool>())
                        m = std::max(m, (in.q[b][h][i] * in.k[b][h][j]).sum().item<double>() / std::sqrt(double(d)));
                auto num = torch::zeros({d}, torch::kFloat64);
                double den = 0;
                for (int64_t j = 0; j <= i; ++j) {
                    double a =
                        win[i][j].item<bool>()
                            ? in.gamma[h].item<double>() *
                                  std::exp((in.q[b][h][i] * in.k[b][h][j]).sum().item<double>() / std::sqrt(double(d)) -
                                           m)
                            : in.lambda[h].item<double>() * (in.f_q[b][h][i] * in.f_k[b][h][j]).sum().item<double>();
                    num += a * in.v[b][h][j].to(torch::kFloat64);
                    den += a;
                }
                y[b][h][i] = (num / den).to(torch::kFloat32);
            }
    return y;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return lincat::test::max_abs_diff(a, b);
}

torch::Tensor quadratic(const Inputs& in, const WindowSpec& w) {
    return hybrid_attention_quadratic(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w);
}
torch::Tensor chunked(const Inputs& in, const WindowSpec& w) {
    return hybrid_attention_chunked(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w);
}

const WindowSpec kTk{WindowKind::Terraced, 8, BlockAlign::Start};
const WindowSpec kTkEnd{WindowKind::Terraced, 8, BlockAlign::End};
const WindowSpec kSw{WindowKind::Sliding, 8, BlockAlign::Start};

}  // namespace

TEST(HybridMask, TerracedAndSlidingSets) {
    // tk, w = 4, start-aligned: position 9 (block 2) sees blocks 1 and 2 = positions 4..9.
    auto tk = hybrid_window_mask(12, {WindowKind::Terraced, 4, BlockAlign::Start});
    for (int64_t j = 0; j < 12; ++j) EXPECT_EQ(tk[9][j].item<bool>(), j >= 4 && j <= 9) << j;
    // End-aligned with n = 10: block edges at 6 and 2, so position 9 sees 2..9.
    auto tke = hybrid_window_mask(10, {WindowKind::Terraced, 4, BlockAlign::End});
    for (int64_t j = 0; j < 10; ++j) EXPECT_EQ(tke[9][j].item<bool>(), j >= 2) << j;
    // sw, w = 4: the last 4 tokens.
    auto sw = hybrid_window_mask(12, {WindowKind::Sliding, 4, BlockAlign::Start});
    for (int64_t j = 0; j < 12; ++j) EXPECT_EQ(sw[9][j].item<bool>(), j >= 6 && j <= 9) << j;
    // Alignments agree when w divides n.
    EXPECT_TRUE(torch::equal(hybrid_window_mask(16, {WindowKind::Terraced, 4, BlockAlign::Start}),
                             hybrid_window_mask(16, {WindowKind::Terraced, 4, BlockAlign::End})));
}

TEST(HybridQuadratic, MatchesNaiveLoop) {
    for (auto w : {kTk, kTkEnd, kSw}) {
        Inputs in = random_inputs(1, 2, 29, 8, 6, 1);
        EXPECT_LT(max_diff(quadratic(in, w), naive_hybrid(in, w)), 1e-5) << window_kind_name(w.kind);
    }
}

TEST(HybridQuadratic, WeightsAreNormalisedAndCausal) {
    Inputs in = random_inputs(1, 2, 20, 8, 6, 2);
    torch::Tensor weights;
    hybrid_attention_quadratic(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, kTk, &weights);
    EXPECT_LT(max_diff(weights.sum(-1), torch::ones({1, 2, 20})), 1e-5);
    EXPECT_EQ(weights.triu(1).abs().max().item<float>(), 0.0f);
}

// fp32 forms vs each other: outputs are convex combinations of v ~ N(0, 1); the forms sum in
// different orders, so differences are a few fp32 ulps of O(1) values. 2e-5 leaves room.
TEST(HybridChunked, MatchesQuadraticAtOddLengths) {
    for (int64_t n : {1, 7, 63, 64, 65, 200, 1000}) {
        for (auto w64 : {WindowSpec{WindowKind::Terraced, 64, BlockAlign::Start},
                         WindowSpec{WindowKind::Sliding, 64, BlockAlign::Start},
                         WindowSpec{WindowKind::Terraced, 64, BlockAlign::End}}) {
            Inputs in = random_inputs(1, 2, n, 16, 12, uint64_t(n));
            double diff = max_diff(chunked(in, w64), quadratic(in, w64));
            EXPECT_LT(diff, 2e-5) << "n=" << n << " " << window_kind_name(w64.kind)
                                  << (w64.align == BlockAlign::End ? " end" : "");
        }
    }
}

TEST(HybridChunked, SmallWindowsManyChunks) {
    for (auto w : {kTk, kTkEnd, kSw}) {
        Inputs in = random_inputs(2, 3, 77, 8, 6, 5);
        EXPECT_LT(max_diff(chunked(in, w), quadratic(in, w)), 2e-5) << window_kind_name(w.kind);
    }
}

TEST(HybridChunked, InferencePathMatchesGraphPath) {
    for (auto w : {kTk, kSw, kTkEnd}) {
        Inputs in = random_inputs(1, 2, 300, 8, 6, 31);
        torch::Tensor inference;
        {
            torch::NoGradGuard ng;
            inference = chunked(in, w);
        }
        in.q.set_requires_grad(true);
        EXPECT_LT(max_diff(chunked(in, w), inference), 2e-5) << window_kind_name(w.kind);
    }
}

TEST(HybridChunked, GradientsMatchQuadratic) {
    for (auto w : {kTk, kSw, kTkEnd}) {
        Inputs a = random_inputs(1, 2, 45, 8, 6, 9);
        std::vector<torch::Tensor*> leaves = {&a.q, &a.k, &a.v, &a.f_q, &a.f_k, &a.gamma, &a.lambda};
        for (auto* t : leaves) t->set_requires_grad(true);
        auto upstream = torch::randn({1, 2, 45, 8});
        auto gq = torch::autograd::grad({(quadratic(a, w) * upstream).sum()},
                                        {a.q, a.k, a.v, a.f_q, a.f_k, a.gamma, a.lambda});
        auto gc =
            torch::autograd::grad({(chunked(a, w) * upstream).sum()}, {a.q, a.k, a.v, a.f_q, a.f_k, a.gamma, a.lambda});
        const char* names[] = {"q", "k", "v", "f_q", "f_k", "gamma", "lambda"};
        for (size_t i = 0; i < gq.size(); ++i) {
            double scale = std::max(1.0, gq[i].abs().max().item<double>());
            EXPECT_LT(max_diff(gq[i], gc[i]) / scale, 1e-4) << "d/d" << names[i] << " " << window_kind_name(w.kind);
        }
    }
}

TEST(HybridRecurrent, StepByStepMatchesQuadratic) {
    for (auto w : {kTk, kSw}) {
        Inputs in = random_inputs(2, 2, 50, 8, 6, 11);
        HybridState state(w);
        std::vector<torch::Tensor> outs;
        for (int64_t t = 0; t < 50; ++t) {
            auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
            outs.push_back(state.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda));
        }
        EXPECT_LT(max_diff(torch::cat(outs, 2), quadratic(in, w)), 2e-5) << window_kind_name(w.kind);
        EXPECT_EQ(state.length(), 50);
    }
}

TEST(HybridRecurrent, CpuLoopsEqualTheLibTorchStep) {
    // Past the buffer's capacity (folds), rows and heads in one call, both window kinds.
    for (auto w : {kTk, kSw}) {
        Inputs in = random_inputs(3, 2, 70, 8, 6, 14);
        HybridState loops(w), ops(w);
        ops.use_cpu_loops(false);
        double worst = 0;
        for (int64_t t = 0; t < 70; ++t) {
            auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
            auto a = loops.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda);
            auto b = ops.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda);
            worst = std::max(worst, max_diff(a, b));
        }
        EXPECT_LT(worst, 1e-5) << window_kind_name(w.kind);  // fp32, summation order only
        EXPECT_EQ(loops.bytes(), ops.bytes());
    }
}

TEST(HybridRecurrent, GqaDecodeWithMapsInTheLoopsMatchesPrefill) {
    // Decode through the module: feature maps computed inside the CPU loops, kv heads read per
    // group of query heads; against the chunked form over the whole sequence.
    for (auto kind : {WindowKind::Terraced, WindowKind::Sliding}) {
        torch::manual_seed(8);
        HybridAttentionImpl attn(
            HybridOptions(4, 8).feature_dim(5).window({kind, 4, BlockAlign::Start}).decode_window(kind).affine(true));
        auto q = torch::randn({2, 4, 30, 8}), k = torch::randn({2, 2, 30, 8}), v = torch::randn({2, 2, 30, 8});
        torch::NoGradGuard ng;
        auto state = attn.new_state();
        std::vector<torch::Tensor> outs = {
            attn.forward(q.narrow(2, 0, 3), k.narrow(2, 0, 3), v.narrow(2, 0, 3), state.get())};
        for (int64_t t = 3; t < 30; ++t)
            outs.push_back(attn.forward(q.narrow(2, t, 1), k.narrow(2, t, 1), v.narrow(2, t, 1), state.get()));
        EXPECT_LT(max_diff(torch::cat(outs, 2), attn.forward(q, k, v, nullptr)), 2e-5) << window_kind_name(kind);
    }
}

TEST(HybridRecurrent, StateMemoryIsConstant) {
    HybridState state(kTk);
    Inputs in = random_inputs(1, 2, 100, 8, 6, 12);
    int64_t bytes_at_20 = 0;
    for (int64_t t = 0; t < 100; ++t) {
        auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
        state.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda);
        if (t == 20) bytes_at_20 = state.bytes();
    }
    EXPECT_EQ(state.bytes(), bytes_at_20);
    // S (F x d) + z (F) + ring of 2w keys, values, features (+ positions), per head, fp32.
    EXPECT_EQ(state.bytes(), 2 * (6 * 8 + 6 + 16 * (8 + 8 + 6)) * 4 + 16 * 8);
}

TEST(HybridRecurrent, PrefillThenDecodeMatchesQuadratic) {
    for (auto w : {kTk, kSw}) {
        Inputs in = random_inputs(1, 2, 60, 8, 6, 13);
        HybridAttentionImpl attn(HybridOptions(2, 8).window(w).feature_dim(3).decode_window(w.kind));
        // Use the module's own feature maps: recompute expected with them.
        torch::NoGradGuard ng;
        auto state = attn.new_state();
        auto first = attn.forward(in.q.narrow(2, 0, 37), in.k.narrow(2, 0, 37), in.v.narrow(2, 0, 37), state.get());
        std::vector<torch::Tensor> outs = {first};
        for (int64_t t = 37; t < 60; ++t)
            outs.push_back(attn.forward(in.q.narrow(2, t, 1), in.k.narrow(2, t, 1), in.v.narrow(2, t, 1), state.get()));
        auto full = attn.forward(in.q, in.k, in.v, nullptr);
        EXPECT_LT(max_diff(torch::cat(outs, 2), full), 2e-5) << window_kind_name(w.kind);
    }
}

TEST(HybridModule, GqaRepeatsKeysAndQuadraticEqualsChunked) {
    torch::manual_seed(3);
    HybridAttentionImpl attn(HybridOptions(4, 8).feature_dim(5).window({WindowKind::Terraced, 4, BlockAlign::Start}));
    auto q = torch::randn({1, 4, 21, 8}), k = torch::randn({1, 2, 21, 8}), v = torch::randn({1, 2, 21, 8});
    auto y = attn.forward(q, k, v, nullptr);
    EXPECT_EQ(y.sizes(), q.sizes());
    HybridAttentionImpl quad(HybridOptions(4, 8)
                                 .feature_dim(5)
                                 .window({WindowKind::Terraced, 4, BlockAlign::Start})
                                 .quadratic_prefill(true));
    torch::NoGradGuard ng;
    quad.feature_map_q->layer.copy_(attn.feature_map_q->layer);
    quad.feature_map_k->layer.copy_(attn.feature_map_k->layer);
    EXPECT_LT(max_diff(quad.forward(q, k, v, nullptr), y), 2e-5);
    // Gamma starts at sigmoid(-2.1972) = 0.1.
    EXPECT_NEAR(attn.gamma()[0].item<double>(), 0.1, 1e-4);
    EXPECT_EQ(attn.attention_weights(q, k).sizes(), (std::vector<int64_t>{1, 4, 21, 21}));
}

TEST(HybridModule, Bf16InputsGiveBf16OutputsCloseToFp32) {
    torch::manual_seed(4);
    HybridAttentionImpl attn(HybridOptions(2, 16).feature_dim(8));
    auto q = torch::randn({1, 2, 130, 16}), k = torch::randn({1, 2, 130, 16}), v = torch::randn({1, 2, 130, 16});
    torch::NoGradGuard ng;
    auto ref = attn.forward(q, k, v, nullptr);
    auto bf = attn.forward(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16), nullptr);
    EXPECT_EQ(bf.scalar_type(), torch::kBFloat16);
    EXPECT_LT(max_diff(bf, ref), 0.05);  // bf16 input/output rounding (8 mantissa bits)
}

TEST(FeatureMaps, ShapesAndProperties) {
    torch::manual_seed(5);
    auto x = torch::randn({2, 3, 7, 8});
    FeatureMap hh(FeatureMapOptions(3, 8).feature_dim(4));
    auto f = hh(x);
    EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, 3, 7, 8}));                       // 2f
    EXPECT_LT(max_diff(f.narrow(-1, 0, 4).sum(-1), torch::ones({2, 3, 7})), 1e-5);  // each half is a softmax
    EXPECT_GE(f.min().item<float>(), 1e-12f);
    {
        torch::NoGradGuard ng;  // the in-place inference path computes the same map
        EXPECT_LT(max_diff(hh(x), f), 1e-7);
    }
    FeatureMap relu(FeatureMapOptions(3, 8).feature_dim(4).kind(FeatureMapKind::Relu));
    EXPECT_GE(relu(x).min().item<float>(), 0.0f);
    FeatureMap elu(FeatureMapOptions(3, 8).feature_dim(4).kind(FeatureMapKind::OnePlusElu));
    EXPECT_GT(elu(x).min().item<float>(), 0.0f);
    FeatureMap ex(FeatureMapOptions(3, 8).feature_dim(4).kind(FeatureMapKind::ExpDim));
    EXPECT_LE(ex(x).max().item<float>(), 1.0f + 1e-6f);
    FeatureMap ident(FeatureMapOptions(3, 8).feature_dim(8).identity_init(true));
    EXPECT_TRUE(torch::equal(ident->layer[1], torch::eye(8)));
    // Kaiming-uniform on (H, d, f): bound sqrt(6 / (d * f)).
    EXPECT_LE(hh->layer.abs().max().item<double>(), std::sqrt(6.0 / 32) + 1e-6);
}

TEST(HybridErrors, BadInputsAreClearErrors) {
    Inputs in = random_inputs(1, 2, 10, 8, 6, 6);
    expect_error(
        [&] { hybrid_attention_chunked(in.q, in.k.narrow(2, 0, 5), in.v, in.f_q, in.f_k, in.gamma, in.lambda, kTk); },
        {"same shape"});
    expect_error([&] { chunked(in, {WindowKind::Terraced, 0, BlockAlign::Start}); }, {"window size must be positive"});
    expect_error([&] { HybridAttentionImpl(HybridOptions(2, 8).feature_dim(0)); }, {"feature dim must be positive"});
    expect_error([&] { FeatureMap(FeatureMapOptions(2, 8).feature_dim(0)); }, {"feature dim must be positive"});
    Inputs bad = in;
    bad.q = in.q.clone();
    bad.q[0][1][3][2] = NAN;
    expect_error([&] { chunked(bad, kTk); }, {"non-finite"});
    bad.q[0][1][3][2] = INFINITY;
    expect_error([&] { quadratic(bad, kSw); }, {"non-finite"});
    expect_error(
        [&] { hybrid_attention_quadratic(in.q, in.k, in.v, in.f_q, in.f_k, torch::ones({3}), in.lambda, kTk); },
        {"one value per head"});
    expect_error([] { parse_window_kind("xx"); }, {"tk, sw"});
    expect_error([] { parse_feature_map_kind("cosine"); }, {"softmax_dim"});
}

TEST(HybridIndependent, MatchesPythonReference) {
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "skipped: /usr/bin/python3 with torch (Debian python3-torch) is not installed";
    lincat::test::TempDir dir;
    for (auto [w, kind, align] :
         {std::tuple{kTk, "tk", "start"}, std::tuple{kTkEnd, "tk", "end"}, std::tuple{kSw, "sw", "start"}}) {
        Inputs in = random_inputs(1, 2, 27, 8, 6, 21);
        save_tensors(dir.file("in.safetensors"), {{"q", in.q},
                                                  {"k", in.k},
                                                  {"v", in.v},
                                                  {"f_q", in.f_q},
                                                  {"f_k", in.f_k},
                                                  {"gamma", in.gamma},
                                                  {"lambda", in.lambda}});
        std::string cmd = "/usr/bin/python3 " + std::string(LINCAT_TESTS_DIR) + "/reference/hybrid_reference.py " +
                          dir.file("in.safetensors") + " " + kind + " 8 " + align;
        auto result = lincat::test::run_command(cmd);
        ASSERT_EQ(result.code, 0) << cmd;
        auto ref =
            torch::tensor(parse_json(result.out, "reference")["y"].get<std::vector<double>>()).view({1, 2, 27, 8});
        // Python computes in float64; ours in fp32.
        EXPECT_LT(max_diff(chunked(in, w), ref), 2e-5) << kind << " " << align;
        EXPECT_LT(max_diff(quadratic(in, w), ref), 2e-5) << kind << " " << align;
    }
}

TEST(Linearize, ParameterCountOfLlama3_8B) {
    ModelConfig c = parse_model_config(R"({"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8})",
                                       "llama3-8b");
    LinearizeOptions o;
    int64_t added = linearized_parameter_count(c, o);
    // 32 layers x (2 maps x 32 heads x 128 x 64 + 32 gammas).
    EXPECT_EQ(added, 32 * (2 * 32 * 128 * 64 + 32));
    double pct = 100.0 * double(added) / double(c.parameter_count());
    std::printf("Llama 3 8B: %lld trainable hybrid parameters = %.3f%% of %.2fB\n", (long long)added, pct,
                double(c.parameter_count()) / 1e9);
    EXPECT_NEAR(pct, 0.21, 0.01);
}
