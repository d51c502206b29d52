// The fused kernels' bodies (kernels/hybrid_body.h), run on the CPU through the same
// marshalling the CUDA path uses (KernelBackend::Emulated), against the LibTorch forms: the
// chunked prefill (itself tested against the quadratic spec and a Python reference) and the
// recurrent HybridState. The CUDA build runs these bodies on the GPU; kernels/tests compares
// the two there. Tolerances: fp32 within 2e-5 (order of fp32 sums differs: tiles vs BLAS);
// bf16 kernels against fp32 LibTorch on the same bf16-rounded inputs within 2e-2, the rounding
// of outputs of size ~1 to bf16's 8 mantissa bits (2^-8 = 0.004) plus bf16 features.
// The CudaKernels tests need a GPU and a LibTorch with CUDA; they skip, saying so, otherwise.
#include "attention/hybrid.h"
#include "attention/hybrid_kernels.h"
#include "hybrid_attention.h"
#include "attention/hybrid_inputs.h"
#include "test_util.h"

using namespace lincat;

namespace {

using Inputs = lincat::test::HybridInputs;
using lincat::test::random_hybrid_inputs;

Inputs random_inputs(int64_t B, int64_t H, int64_t T, int64_t d, int64_t F, uint64_t seed) {
    return random_hybrid_inputs(B, H, T, d, F, seed);
}

Inputs to_dtype(const Inputs& in, torch::ScalarType t) {
    return {in.q.to(t), in.k.to(t), in.v.to(t), in.f_q.to(t), in.f_k.to(t), in.gamma, in.lambda};
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return lincat::test::max_abs_diff(a, b);
}

torch::Tensor by_torch(const Inputs& in, const WindowSpec& w) {
    torch::NoGradGuard ng;
    return hybrid_attention_chunked(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w);
}
torch::Tensor by_kernel(const Inputs& in, const WindowSpec& w) {
    return hybrid_attention_kernel(in.q, in.k, in.v, in.f_q, in.f_k, in.gamma, in.lambda, w, KernelBackend::Emulated);
}

const WindowSpec kTk{WindowKind::Terraced, 64, BlockAlign::Start};
const WindowSpec kTkEnd{WindowKind::Terraced, 64, BlockAlign::End};
const WindowSpec kSw{WindowKind::Sliding, 64, BlockAlign::Start};

}  // namespace

TEST(KernelBodies, PrefillMatchesLibTorchChunkedFp32) {
    // Lengths below one chunk, exactly one, odd lengths over several; head dims 48 (stories15M),
    // 64, 128; feature dim 128 (Hedgehog 2f).
    for (int64_t T : {1, 40, 64, 65, 200, 331})
        for (int64_t d : {48, 64, 128})
            for (const auto& w : {kTk, kTkEnd, kSw}) {
                Inputs in = random_inputs(2, 2, T, d, 128, uint64_t(T * 1000 + d));
                auto y = by_kernel(in, w);
                EXPECT_EQ(y.sizes(), in.q.sizes());
                EXPECT_EQ(y.scalar_type(), torch::kFloat32);
                EXPECT_LT(max_diff(y, by_torch(in, w)), 2e-5)
                    << "T=" << T << " d=" << d << " " << window_kind_name(w.kind)
                    << (w.align == BlockAlign::End ? " end" : "");
            }
}

TEST(KernelBodies, PrefillSmallWindowsAndManyChunks) {
    for (const auto& w : {WindowSpec{WindowKind::Terraced, 8, BlockAlign::End}, WindowSpec{WindowKind::Sliding, 4}}) {
        Inputs in = random_inputs(1, 3, 257, 16, 12, 5);
        EXPECT_LT(max_diff(by_kernel(in, w), by_torch(in, w)), 2e-5) << window_kind_name(w.kind);
    }
}

TEST(KernelBodies, PrefillBf16) {
    for (const auto& w : {kTk, kSw}) {
        Inputs in = to_dtype(random_inputs(1, 2, 300, 64, 128, 9), torch::kBFloat16);
        auto y = by_kernel(in, w);
        EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
        auto ref = by_torch(to_dtype(in, torch::kFloat32), w);  // same rounded inputs, fp32 math
        EXPECT_LT(max_diff(y, ref), 2e-2) << window_kind_name(w.kind);
    }
}

TEST(KernelBodies, NonContiguousInputsAreHandled) {
    Inputs in = random_inputs(1, 2, 150, 64, 128, 21);
    Inputs t = in;
    t.q = in.q.transpose(1, 2).contiguous().transpose(1, 2);  // same values, other strides
    t.v = in.v.transpose(1, 2).contiguous().transpose(1, 2);
    EXPECT_FALSE(t.q.is_contiguous());
    EXPECT_LT(max_diff(by_kernel(t, kTk), by_torch(in, kTk)), 2e-5);
}

TEST(KernelBodies, DecodeMatchesLibTorchState) {
    // A prefill of 70 tokens, then 230 steps: well past the ring's capacity (2w = 128 for tk,
    // w = 64 for sw), so tokens fold into S and z on the way.
    for (auto kind : {WindowKind::Terraced, WindowKind::Sliding})
        for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
            WindowSpec w{kind, 64, BlockAlign::Start};
            Inputs in = to_dtype(random_inputs(2, 2, 300, 48, 128, 31), dtype);
            HybridState ref(w), ker(w);
            ker.use_kernel(KernelBackend::Emulated);
            auto pre = [&](const torch::Tensor& x) { return x.narrow(2, 0, 70).to(torch::kFloat32); };
            ref.absorb_prefill(pre(in.k), pre(in.v), pre(in.f_k));
            ker.absorb_prefill(pre(in.k), pre(in.v), pre(in.f_k));
            double worst = 0;
            for (int64_t t = 70; t < 300; ++t) {
                auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
                auto a = ref.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda);
                auto b = ker.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda);
                // LibTorch's step returns fp32; the kernel rounds to the input dtype first.
                worst = std::max(worst, max_diff(b, dtype == torch::kFloat32 ? a : a.to(dtype)));
            }
            EXPECT_LT(worst, dtype == torch::kFloat32 ? 2e-5 : 2e-2) << window_kind_name(kind) << " " << dtype;
            EXPECT_EQ(ker.length(), 300);
            EXPECT_EQ(ker.bytes(), ref.bytes());
        }
}

TEST(KernelBodies, UnsupportedShapesAreClearErrors) {
    Inputs in = random_inputs(1, 1, 10, 50, 128, 1);  // head dim 50: not a multiple of 4
    lincat::test::expect_error([&] { by_kernel(in, kTk); }, {"multiples of 4"});
    Inputs wide = random_inputs(1, 1, 10, 64, 128, 1);
    lincat::test::expect_error([&] { by_kernel(wide, WindowSpec{WindowKind::Terraced, 6}); }, {"window must be"});
    Inputs half = to_dtype(wide, torch::kFloat16);
    lincat::test::expect_error([&] { by_kernel(half, kTk); }, {"is not fp32 or bf16"});
    std::string why;
    EXPECT_FALSE(hybrid_kernel_applies(wide.q, wide.f_q, kTk, false, &why));
    EXPECT_EQ(why, "not a CUDA tensor");
}

TEST(KernelBodies, Bf16RoundingMatchesLibTorch) {
    auto x =
        torch::cat({torch::randn({10000}) * 100,
                    torch::tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, 3.4e38f, 1.00390625f, 1.01171875f})});
    auto bits = x.to(torch::kBFloat16).view(torch::kInt16);
    auto* xs = x.data_ptr<float>();
    auto* bs = bits.data_ptr<int16_t>();
    for (int64_t i = 0; i < x.numel(); ++i) {
        const uint16_t mine = kernels::float_to_bf16(xs[i]);
        if (std::isnan(xs[i])) {
            EXPECT_TRUE(std::isnan(kernels::bf16_to_float(mine)));
            continue;
        }
        ASSERT_EQ(mine, uint16_t(bs[i])) << "x = " << xs[i];
        EXPECT_EQ(kernels::bf16_to_float(mine), x.to(torch::kBFloat16).to(torch::kFloat32)[i].item<float>());
    }
}

// ---- on a GPU ----

static bool gpu_or_skip_reason(std::string* reason) {
    if (!torch::cuda::is_available()) {
        *reason = "no CUDA device visible to LibTorch (or a LibTorch without CUDA, as Debian's)";
        return false;
    }
    if (!kernels::cuda_kernels_built()) {
        *reason = "this build has no CUDA kernels (CMake found no nvcc)";
        return false;
    }
    return true;
}

TEST(CudaKernels, PrefillMatchesLibTorchOnTheGpu) {
    std::string reason;
    if (!gpu_or_skip_reason(&reason)) GTEST_SKIP() << reason;
    for (auto dtype : {torch::kFloat32, torch::kBFloat16})
        for (int64_t d : {64, 128})
            for (const auto& w : {kTk, kTkEnd, kSw}) {
                Inputs cpu = to_dtype(random_inputs(2, 4, 1000, d, 128, uint64_t(d)), dtype);
                Inputs gpu{cpu.q.cuda(),   cpu.k.cuda(),     cpu.v.cuda(),     cpu.f_q.cuda(),
                           cpu.f_k.cuda(), cpu.gamma.cuda(), cpu.lambda.cuda()};
                ASSERT_TRUE(hybrid_kernel_applies(gpu.q, gpu.f_q, w, false));
                auto y = by_torch(gpu, w).cpu();  // dispatches to the kernel
                auto ref = by_torch(to_dtype(cpu, torch::kFloat32), w);
                EXPECT_LT(max_diff(y, ref), dtype == torch::kFloat32 ? 2e-5 : 2e-2) << "d=" << d << " " << dtype;
            }
}

TEST(CudaKernels, DecodeMatchesLibTorchOnTheGpu) {
    std::string reason;
    if (!gpu_or_skip_reason(&reason)) GTEST_SKIP() << reason;
    for (auto kind : {WindowKind::Terraced, WindowKind::Sliding}) {
        WindowSpec w{kind, 64, BlockAlign::Start};
        Inputs in = random_inputs(4, 2, 300, 128, 128, 41);
        HybridState ref(w), gpu(w);
        double worst = 0;
        for (int64_t t = 0; t < 300; ++t) {
            auto s = [&](const torch::Tensor& x) { return x.narrow(2, t, 1); };
            auto c = [&](const torch::Tensor& x) { return x.narrow(2, t, 1).cuda(); };
            auto a = ref.step(s(in.q), s(in.k), s(in.v), s(in.f_q), s(in.f_k), in.gamma, in.lambda);
            auto b = gpu.step(c(in.q), c(in.k), c(in.v), c(in.f_q), c(in.f_k), in.gamma.cuda(), in.lambda.cuda());
            worst = std::max(worst, max_diff(b.cpu(), a));
        }
        EXPECT_LT(worst, 2e-5) << window_kind_name(kind);
    }
}
