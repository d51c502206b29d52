// Gated hybrid attention (GateKind decay and gla): the quadratic form against a naive loop that
// multiplies the rates one token at a time, and an independent Python implementation; the
// chunked and recurrent forms against the quadratic one, values and gradients, at odd lengths;
// a gated module's decode against its chunked form over 300 steps, in constant memory.
#include "attention/hybrid.h"
#include "attention/hybrid_inputs.h"
#include "attention/linearize.h"
#include "model/weights.h"
#include "test_util.h"
#include "util/json.h"

using namespace lincat;

namespace {

using Inputs = lincat::test::HybridInputs;
using lincat::test::max_abs_diff;
using lincat::test::random_hybrid_inputs;

// Log rates in (-0.4, 0): strong enough that a decay applied one token off changes the result.
torch::Tensor random_log_gate(int64_t B, int64_t H, int64_t T, int64_t Fg, uint64_t seed) {
    torch::manual_seed(seed);
    return -0.4 * torch::rand({B, H, T, Fg});
}

// The spec, one (b, h, i, j) at a time: lambda_h sum_f fq_f fk_f prod_{t=j+1..i} exp(lg_t,f).
torch::Tensor naive_gated(const Inputs& in, const torch::Tensor& lg, const WindowSpec& w) {
    const int64_t B = in.q.size(0), H = in.q.size(1), T = in.q.size(2), d = in.q.size(3), F = in.f_q.size(3);
    auto win = hybrid_window_mask(T, w);
    auto q = in.q.to(torch::kFloat64), k = in.k.to(torch::kFloat64), v = in.v.to(torch::kFloat64);
    auto fq = in.f_q.to(torch::kFloat64), fk = in.f_k.to(torch::kFloat64);
    auto rate = lg.to(torch::kFloat64).exp().expand({B, H, T, F});
    auto y = torch::zeros({B, H, T, d}, torch::kFloat64);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < T; ++i) {
                double m = -INFINITY;
                for (int64_t j = 0; j <= i; ++j)
                    if (win[i][j].item<bool>())
                        m = std::max(m, (q[b][h][i] * k[b][h][j]).sum().item<double>() / std::sqrt(double(d)));
                auto num = torch::zeros({d}, torch::kFloat64);
                double den = 0;
                auto decay = torch::ones({F}, torch::kFloat64);  // prod over t = j+1..i, built from j = i down
                for (int64_t j = i; j >= 0; --j) {
                    double a;
                    if (win[i][j].item<bool>())
                        a = in.gamma[h].item<double>() *
                            std::exp((q[b][h][i] * k[b][h][j]).sum().item<double>() / std::sqrt(double(d)) - m);
                    else
                        a = in.lambda[h].item<double>() * (fq[b][h][i] * fk[b][h][j] * decay).sum().item<double>();
                    num += a * v[b][h][j];
                    den += a;
                    decay = decay * rate[b][h][j];
                }
                y[b][h][i] = num / den;
            }
    return y;
}

torch::Tensor quadratic(const Inputs& in, const torch::Tensor& lg, const WindowSpec& w) {
    return hybrid_attention_quadratic(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w, nullptr, lg);
}
torch::Tensor chunked(const Inputs& in, const torch::Tensor& lg, const WindowSpec& w) {
    return hybrid_attention_chunked(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w, lg);
}

std::string label(const WindowSpec& w, int64_t Fg) {
    return window_kind_name(w.kind) + (w.align == BlockAlign::End ? " end" : "") + (Fg == 1 ? " decay" : " gla");
}

const WindowSpec kTk{WindowKind::Terraced, 8, BlockAlign::Start};
const WindowSpec kTkEnd{WindowKind::Terraced, 8, BlockAlign::End};
const WindowSpec kSw{WindowKind::Sliding, 8, BlockAlign::Start};

}  // namespace

// fp32 forms against the float64 loop: outputs are convex combinations of v ~ N(0, 1), so a few
// fp32 ulps of O(1) values; 2e-5 as for the ungated forms.
TEST(GatedQuadratic, MatchesNaiveLoop) {
    for (auto w : {kTk, kTkEnd, kSw})
        for (int64_t Fg : {1, 6}) {
            Inputs in = random_hybrid_inputs(1, 2, 29, 8, 6, 1);
            auto lg = random_log_gate(1, 2, 29, Fg, 2);
            EXPECT_LT(max_abs_diff(quadratic(in, lg, w), naive_gated(in, lg, w)), 2e-5) << label(w, Fg);
        }
}

TEST(GatedQuadratic, ZeroRatesAreTheUngatedForm) {
    Inputs in = random_hybrid_inputs(1, 2, 40, 8, 6, 3);
    for (auto w : {kTk, kSw}) {
        auto plain = hybrid_attention_quadratic(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w);
        EXPECT_LT(max_abs_diff(quadratic(in, torch::zeros({1, 2, 40, 6}), w), plain), 1e-6);
        // And a real decay changes it (the test above would pass with a gate that does nothing).
        EXPECT_GT(max_abs_diff(quadratic(in, random_log_gate(1, 2, 40, 6, 4), w), plain), 1e-3);
    }
}

TEST(GatedChunked, MatchesQuadraticAtOddLengths) {
    for (int64_t n : {1, 7, 63, 64, 65, 200, 333})
        for (auto w : {WindowSpec{WindowKind::Terraced, 64, BlockAlign::Start},
                       WindowSpec{WindowKind::Sliding, 64, BlockAlign::Start},
                       WindowSpec{WindowKind::Terraced, 64, BlockAlign::End}, kTk, kSw, kTkEnd})
            for (int64_t Fg : {1, 12}) {
                Inputs in = random_hybrid_inputs(1, 2, n, 16, 12, uint64_t(n));
                // Slower rates at w = 64, so the state of distant chunks still counts.
                auto lg = random_log_gate(1, 2, n, Fg, uint64_t(n) + 1) * (w.size == 64 ? 0.1 : 1.0);
                EXPECT_LT(max_abs_diff(chunked(in, lg, w), quadratic(in, lg, w)), 2e-5)
                    << "n=" << n << " w=" << w.size << " " << label(w, Fg);
            }
}

TEST(GatedChunked, GradientsMatchQuadratic) {
    for (auto w : {kTk, kSw, kTkEnd})
        for (int64_t Fg : {1, 6}) {
            Inputs a = random_hybrid_inputs(1, 2, 45, 8, 6, 9);
            auto lg = random_log_gate(1, 2, 45, Fg, 10);
            for (auto* t : {&a.q, &a.k, &a.v, &a.f_q, &a.f_k, &a.gamma, &a.lambda, &lg}) t->set_requires_grad(true);
            std::vector<torch::Tensor> leaves = {a.q, a.k, a.v, a.f_q, a.f_k, a.gamma, a.lambda, lg};
            auto upstream = torch::randn({1, 2, 45, 8});
            auto gq = torch::autograd::grad({(quadratic(a, lg, w) * upstream).sum()}, leaves);
            auto gc = torch::autograd::grad({(chunked(a, lg, w) * upstream).sum()}, leaves);
            const char* names[] = {"q", "k", "v", "f_q", "f_k", "gamma", "lambda", "log_gate"};
            for (size_t i = 0; i < gq.size(); ++i) {
                double scale = std::max(1.0, gq[i].abs().max().item<double>());
                EXPECT_LT(max_abs_diff(gq[i], gc[i]) / scale, 1e-4) << "d/d" << names[i] << " " << label(w, Fg);
                EXPECT_TRUE(torch::isfinite(gc[i]).all().item<bool>()) << names[i];
            }
        }
}

TEST(GatedChunked, LongSequenceWithStrongDecayStaysFinite) {
    // 4096 tokens at rates down to exp(-0.4): cumulative log rates reach -800, whose exp(+800)
    // would overflow in any form that factors exp(G_i) exp(-G_j) over the whole sequence.
    Inputs in = random_hybrid_inputs(1, 1, 4096, 8, 6, 15);
    auto lg = random_log_gate(1, 1, 4096, 6, 16);
    for (auto w : {kTk, kSw}) {
        auto y = chunked(in, lg, w);
        EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << window_kind_name(w.kind);
        // Far-away keys are gone; the last 300 positions agree with the quadratic form on them alone.
        Inputs tail = in;
        for (auto* t : {&tail.q, &tail.k, &tail.v, &tail.f_q, &tail.f_k}) *t = t->narrow(2, 4096 - 512, 512);
        auto yt = quadratic(tail, lg.narrow(2, 4096 - 512, 512), w);
        EXPECT_LT(max_abs_diff(y.narrow(2, 4096 - 300, 300), yt.narrow(2, 512 - 300, 300)), 2e-5);
    }
}

TEST(GatedRecurrent, StepByStepMatchesQuadratic) {
    for (auto w : {kTk, kSw})
        for (int64_t Fg : {1, 6}) {
            Inputs in = random_hybrid_inputs(2, 2, 50, 8, 6, 11);
            auto lg = random_log_gate(2, 2, 50, Fg, 12);
            HybridState state(w);
            std::vector<torch::Tensor> outs;
            for (int64_t t = 0; t < 50; ++t) {
                auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
                outs.push_back(state.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda, s(lg)));
            }
            EXPECT_LT(max_abs_diff(torch::cat(outs, 2), quadratic(in, lg, w)), 2e-5) << label(w, Fg);
        }
}

TEST(GatedRecurrent, PrefillThenDecodeMatchesQuadratic) {
    for (auto w : {kTk, kSw})
        for (int64_t Fg : {1, 6}) {
            Inputs in = random_hybrid_inputs(1, 2, 60, 8, 6, 13);
            auto lg = random_log_gate(1, 2, 60, Fg, 14);
            HybridState state(w);
            auto head = [](const torch::Tensor& x) { return x.narrow(2, 0, 37); };
            std::vector<torch::Tensor> outs = {chunked(
                {head(in.q), head(in.k), head(in.v), head(in.f_q), head(in.f_k), in.gamma, in.lambda}, head(lg), w)};
            state.absorb_prefill(head(in.k), head(in.v), head(in.f_k), head(lg));
            for (int64_t t = 37; t < 60; ++t) {
                auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
                outs.push_back(state.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda, s(lg)));
            }
            EXPECT_LT(max_abs_diff(torch::cat(outs, 2), quadratic(in, lg, w)), 2e-5) << label(w, Fg);
        }
}

// The CPU decode loops (step_cpu_loops) against the LibTorch step they replace: past the
// buffer's capacity (folds with their decay), rows and heads in one call; fp32, summation order.
TEST(GatedRecurrent, CpuLoopsEqualTheLibTorchStep) {
    for (auto w : {kTk, kSw})
        for (int64_t Fg : {1, 6}) {
            Inputs in = random_hybrid_inputs(3, 2, 70, 8, 6, 15);
            auto lg = random_log_gate(3, 2, 70, Fg, 16);
            HybridState loops(w), ops(w);
            ops.use_cpu_loops(false);
            double worst = 0;
            for (int64_t t = 0; t < 70; ++t) {
                auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
                auto a = loops.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda, s(lg));
                auto b = ops.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda, s(lg));
                worst = std::max(worst, max_abs_diff(a, b));
            }
            EXPECT_LT(worst, 1e-5) << label(w, Fg);
            EXPECT_EQ(loops.bytes(), ops.bytes());
        }
}

TEST(GatedRecurrent, GatingAStateRequiresItEveryStep) {
    Inputs in = random_hybrid_inputs(1, 2, 3, 8, 6, 17);
    HybridState state(kTk);
    auto s = [&](const torch::Tensor& x) { return x.narrow(2, 0, 1); };
    state.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda, torch::zeros({1, 2, 1, 1}));
    lincat::test::expect_error(
        [&] { state.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda); },
        {"gated state needs log_gate"});
    lincat::test::expect_error([&] { quadratic(in, torch::zeros({1, 2, 3, 5}), kTk); }, {"log_gate", "(B, H, T, F)"});
}

// The check: a gated layer's decode, token by token from the first, equals its chunked
// form over 300 steps, with a state that does not grow; the module's own gate from its keys.
TEST(GatedModule, DecodeOf300StepsEqualsChunkedInConstantMemory) {
    // Decay decodes in the CPU loops with or without GQA, gla there without it (4 kv heads).
    for (GateKind gate : {GateKind::Decay, GateKind::Gla})
        for (WindowKind kind : {WindowKind::Terraced, WindowKind::Sliding})
            for (int64_t kv_heads : {2, 4}) {
                torch::manual_seed(21);
                HybridAttentionImpl attn(HybridOptions(4, 8)
                                             .feature_dim(5)
                                             .window({kind, 16, BlockAlign::Start})
                                             .decode_window(kind)
                                             .gate(gate)
                                             .affine(true));
                torch::NoGradGuard ng;
                // Make the gla gate depend on the key (it starts data-independent, up = 0).
                if (gate == GateKind::Gla) attn.gate_up.normal_(0, 1.0);
                auto q = torch::randn({2, 4, 300, 8}), k = torch::randn({2, kv_heads, 300, 8}),
                     v = torch::randn({2, kv_heads, 300, 8});
                auto state = attn.new_state();
                std::vector<torch::Tensor> outs;
                int64_t bytes_at_50 = 0;
                for (int64_t t = 0; t < 300; ++t) {
                    outs.push_back(attn.forward(q.narrow(2, t, 1), k.narrow(2, t, 1), v.narrow(2, t, 1), state.get()));
                    if (t == 50) bytes_at_50 = state->bytes();
                }
                const std::string name =
                    gate_kind_name(gate) + " " + window_kind_name(kind) + " kv " + std::to_string(kv_heads);
                EXPECT_LT(max_abs_diff(torch::cat(outs, 2), attn.forward(q, k, v, nullptr)), 2e-5) << name;
                EXPECT_EQ(state->bytes(), bytes_at_50) << name;
                auto lg = attn.log_gate(k.repeat_interleave(4 / kv_heads, 1));
                EXPECT_LT(lg.max().item<double>(), 0.0) << name;  // every rate below 1
                if (gate == GateKind::Gla)
                    EXPECT_GT((lg - lg.mean(2, true)).abs().max().item<double>(), 1e-3)
                        << "gla rates depend on the key";
            }
}

TEST(GatedModule, ParametersAndCheckpointFields) {
    HybridAttentionImpl decay(HybridOptions(6, 48).feature_dim(16).gate(GateKind::Decay));
    HybridAttentionImpl gla(HybridOptions(6, 48).feature_dim(16).gate(GateKind::Gla).gate_rank(4));
    auto count = [](torch::nn::Module& m) {
        int64_t n = 0;
        for (auto& p : m.parameters()) n += p.numel();
        return n;
    };
    const int64_t base = 2 * 6 * 48 * 16 + 6;
    EXPECT_EQ(count(decay), base + 6);
    EXPECT_EQ(count(gla), base + 6 * (48 * 4 + 4 * 32 + 32));
    // Rates spread over heads, all below 1 and above 0.9.
    auto rates = decay.log_gate(torch::zeros({1, 6, 1, 48})).exp().flatten();
    EXPECT_GT(rates.min().item<double>(), 0.9);
    EXPECT_LT(rates.max().item<double>(), 1.0);
    EXPECT_GT(rates.max().item<double>() - rates.min().item<double>(), 0.01);
    // The gate is a recorded option, read back from linearization.json; old files have none.
    LinearizeOptions o;
    o.gate = GateKind::Gla;
    EXPECT_EQ(linearization_from_json(linearization_to_json(o, 2, "h"), "t", nullptr).gate, GateKind::Gla);
    json old = parse_json(linearization_to_json(LinearizeOptions{}, 2, "h"), "t");
    old.erase("gate");
    EXPECT_EQ(linearization_from_json(old.dump(), "old", nullptr).gate, GateKind::None);
    lincat::test::expect_error([] { parse_gate_kind("mamba"); }, {"none, decay, gla"});
}

TEST(GatedIndependent, MatchesPythonReference) {
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "skipped: /usr/bin/python3 with torch (Debian python3-torch) is not installed";
    lincat::test::TempDir dir;
    for (auto [w, kind, align] :
         {std::tuple{kTk, "tk", "start"}, std::tuple{kTkEnd, "tk", "end"}, std::tuple{kSw, "sw", "start"}})
        for (int64_t Fg : {1, 6}) {
            Inputs in = random_hybrid_inputs(1, 2, 27, 8, 6, 21);
            auto lg = random_log_gate(1, 2, 27, Fg, 22);
            save_tensors(dir.file("in.safetensors"), {{"q", in.q},
                                                      {"k", in.k},
                                                      {"v", in.v},
                                                      {"f_q", in.f_q},
                                                      {"f_k", in.f_k},
                                                      {"gamma", in.gamma},
                                                      {"lambda", in.lambda},
                                                      {"log_gate", lg}});
            std::string cmd = "/usr/bin/python3 " + std::string(LINCAT_TESTS_DIR) + "/reference/hybrid_reference.py " +
                              dir.file("in.safetensors") + " " + kind + " 8 " + align;
            auto result = lincat::test::run_command(cmd);
            ASSERT_EQ(result.code, 0) << cmd;
            auto ref =
                torch::tensor(parse_json(result.out, "reference")["y"].get<std::vector<double>>()).view({1, 2, 27, 8});
            // Python computes in float64; ours in fp32.
            EXPECT_LT(max_abs_diff(chunked(in, lg, w), ref), 2e-5) << label(w, Fg);
            EXPECT_LT(max_abs_diff(quadratic(in, lg, w), ref), 2e-5) << label(w, Fg);
        }
}
