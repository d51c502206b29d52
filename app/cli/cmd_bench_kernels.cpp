// `lincat bench kernels --device cuda`: the fused hybrid-attention kernels (kernels/) against
// LibTorch on the same GPU, in one run: prefill at n = 4K..64K and decode at batch 1..256,
// with time, achieved TFLOP/s and GB/s, the ratio to LibTorch softmax attention (SDPA, flash
// on Hopper) and, for prefill, to the LibTorch chunked hybrid ops the kernel replaces. TFLOP/s
// are also given as a fraction of a bf16 matmul (8192^3) measured in the same run.
// Counted work: prefill hybrid 2 (4 w d + 2 F d) FLOP per token and head (+ 2 w F for sw), bytes
// = q, k, v, fq, fk read + out written + the fp32 chunk states written, scanned and read;
// softmax 2 n^2 d per head (causal half) and q, k, v read + out written (what flash moves).
// Decode: bytes = the fp32 state S read and written + the ring buffer read (hybrid), the K and
// V cache read (softmax). Times: best of --repeats after a warm-up, CUDA synchronised.
#include <chrono>
#include <cstdio>
#include <limits>

#include "attention/hybrid.h"
#include "attention/hybrid_kernels.h"
#include "attention/softmax.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "hybrid_attention.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/json.h"

#if __has_include(<torch/version.h>)
#include <torch/version.h>
#endif

namespace lincat::cli {

namespace {

double best_ms(const std::function<void()>& f, int repeats) {
    f();  // warm-up: allocator, kernel loading
    torch::cuda::synchronize();
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        torch::cuda::synchronize();
        best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

// Causal (or full, for one decode query) softmax attention as LibTorch does it best.
torch::Tensor softmax_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
    auto s = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(q.size(-1)));
    if (causal)
        s = s.masked_fill(torch::ones({q.size(2), k.size(2)}, q.options().dtype(torch::kBool)).triu(1), -INFINITY);
    return torch::matmul(torch::softmax(s, -1), v);
#endif
}

}  // namespace

int bench_kernels(const Argv& argv) {
    Args a("bench kernels",
           with_compute_options(
               {{"n", "prefill lengths", false, "4K,8K,16K,32K,64K"},
                {"batch", "decode batch sizes", false, "1,4,16,64,256"},
                {"context", "decode context length (softmax KV cache; the hybrid state is fixed)", false, "4K"},
                {"heads", "attention heads", false, "32"},
                {"head-dim", "head dim d", false, "128"},
                {"feature-dim", "feature dim F of phi(q).phi(k) (Hedgehog 2f)", false, "128"},
                {"window", "window w", false, "64"},
                {"variant", "tk or sw", false, "tk"},
                {"repeats", "timed repetitions (best is kept)", false, "10"},
                {"json", "print the rows as JSON", true}}),
           argv);
    apply_compute_options(a);
    const Compute c = compute();
    if (!c.device.is_cuda())
        fail(
            "bench kernels: times the CUDA kernels; run it with --device cuda (a GPU and a LibTorch with CUDA); "
            "the CPU paths are measured by `lincat bench attention`");
    if (!kernels::cuda_kernels_built()) fail("bench kernels: this build has no CUDA kernels (CMake found no nvcc)");
    const int64_t H = a.get_int("heads", 32), d = a.get_int("head-dim", 128), F = a.get_int("feature-dim", 128);
    const int64_t w = a.get_int("window", 64), ctx = parse_count(a.get("context", "4K"), "--context", true);
    const int repeats = int(a.get_int("repeats", 10));
    const WindowSpec window{parse_window_kind(a.get("variant", "tk")), w, BlockAlign::Start};
    const bool sw = window.kind == WindowKind::Sliding;
    const auto dt = c.dtype;
    const double eb = dt == torch::kBFloat16 ? 2 : 4;
    auto opt = torch::TensorOptions().device(c.device).dtype(dt);
    auto f32 = torch::TensorOptions().device(c.device).dtype(torch::kFloat32);
    torch::NoGradGuard ng;
    nlohmann::json rows = nlohmann::json::array();

    // The chip's matmul rate in this dtype, measured now.
    auto ma = torch::randn({8192, 8192}, opt), mb = torch::randn({8192, 8192}, opt);
    const double mm_ms = best_ms([&] { torch::matmul(ma, mb); }, repeats);
    const double mm_tflops = 2.0 * 8192.0 * 8192.0 * 8192.0 / (mm_ms * 1e9);
    ma = mb = torch::Tensor();
    std::printf("device %s, %s; matmul 8192^3: %.3f ms = %.1f TFLOP/s (100%% below)\n", c.device.str().c_str(),
                dt == torch::kBFloat16 ? "bf16" : "fp32", mm_ms, mm_tflops);
    std::printf("shape: H %lld, d %lld, F %lld, %s window %lld; best of %d\n\n", (long long)H, (long long)d,
                (long long)F, sw ? "sw" : "tk", (long long)w, repeats);

    std::printf("prefill (batch 1)\n%7s | %9s %8s %6s %7s | %10s %8s | %11s | %8s %8s\n", "n", "kernel ms", "TFLOP/s",
                "of mm", "GB/s", "softmax ms", "TFLOP/s", "LibTorch ms", "vs sm", "vs ops");
    for (auto& item : split_list(a.get("n", "4K,8K,16K,32K,64K"))) {
        const int64_t n = parse_count(item, "--n", true);
        auto q = torch::randn({1, H, n, d}, opt), k = torch::randn({1, H, n, d}, opt),
             v = torch::randn({1, H, n, d}, opt);
        auto fq = torch::softmax(torch::randn({1, H, n, F}, f32), -1).to(dt);
        auto fk = torch::softmax(torch::randn({1, H, n, F}, f32), -1).to(dt);
        auto g = torch::full({H}, 0.1, f32), l = torch::ones({H}, f32);
        const double k_ms =
            best_ms([&] { hybrid_attention_kernel(q, k, v, fq, fk, g, l, window, KernelBackend::Cuda); }, repeats);
        const double s_ms = best_ms([&] { softmax_attention(q, k, v, true); }, repeats);
        set_hybrid_kernels_enabled(false);  // the LibTorch chunked ops the kernel replaces
        const double o_ms = best_ms([&] { hybrid_attention_chunked(q, k, v, fq, fk, g, l, window); }, repeats);
        set_hybrid_kernels_enabled(true);
        const double chunks = double((n + w - 1) / w);
        const double flop = double(H) * double(n) * 2.0 * (4.0 * w * d + 2.0 * F * d + (sw ? 2.0 * w * F : 0.0));
        const double bytes = double(H) * (double(n) * (4.0 * d + 2.0 * F) * eb + chunks * (F * d + F) * 4.0 * 4.0);
        const double s_flop = double(H) * 2.0 * double(n) * double(n) * double(d);
        const double k_tf = flop / (k_ms * 1e9), s_tf = s_flop / (s_ms * 1e9);
        std::printf("%7lld | %9.3f %8.2f %5.1f%% %7.0f | %10.3f %8.1f | %11.3f | %7.2fx %7.2fx\n", (long long)n, k_ms,
                    k_tf, 100.0 * k_tf / mm_tflops, bytes / (k_ms * 1e6), s_ms, s_tf, o_ms, s_ms / k_ms, o_ms / k_ms);
        rows.push_back({{"kind", "prefill"},
                        {"n", n},
                        {"kernel_ms", k_ms},
                        {"kernel_tflops", k_tf},
                        {"kernel_gbps", bytes / (k_ms * 1e6)},
                        {"softmax_ms", s_ms},
                        {"softmax_tflops", s_tf},
                        {"libtorch_hybrid_ms", o_ms},
                        {"matmul_tflops", mm_tflops}});
    }

    const int64_t cap = sw ? w : 2 * w;
    std::printf("\ndecode (one step, softmax over a %lld-token KV cache)\n%6s | %9s %7s | %10s %7s | %8s\n",
                (long long)ctx, "batch", "kernel ms", "GB/s", "softmax ms", "GB/s", "vs sm");
    for (auto& item : split_list(a.get("batch", "1,4,16,64,256"))) {
        const int64_t B = parse_count(item, "--batch");
        auto q = torch::randn({B, H, 1, d}, opt), k = torch::randn({B, H, 1, d}, opt),
             v = torch::randn({B, H, 1, d}, opt);
        auto fq = torch::softmax(torch::randn({B, H, 1, F}, f32), -1).to(dt);
        auto fk = torch::softmax(torch::randn({B, H, 1, F}, f32), -1).to(dt);
        auto g = torch::full({H}, 0.1, f32), l = torch::ones({H}, f32);
        auto S = torch::rand({B, H, F, d}, f32) * 1e-2, z = torch::rand({B, H, F}, f32);
        auto rk = torch::randn({B, H, cap, d}, f32), rv = torch::randn({B, H, cap, d}, f32);
        auto rf = torch::softmax(torch::randn({B, H, cap, F}, f32), -1);
        int64_t position = ctx;  // past the ring's capacity: every step folds a token into S
        const double k_ms = best_ms(
            [&] {
                hybrid_decode_kernel(q, k, v, fq, fk, g, l, S, z, rk, rv, rf, window, cap, position++,
                                     KernelBackend::Cuda);
            },
            repeats);
        auto kc = torch::randn({B, H, ctx, d}, opt), vc = torch::randn({B, H, ctx, d}, opt);
        const double s_ms = best_ms([&] { softmax_attention(q, kc, vc, false); }, repeats);
        const double k_bytes = double(B * H) * (2.0 * F * d + double(cap) * (2.0 * d + F)) * 4.0;
        const double s_bytes = double(B * H) * 2.0 * double(ctx) * double(d) * eb;
        std::printf("%6lld | %9.4f %7.0f | %10.4f %7.0f | %7.2fx\n", (long long)B, k_ms, k_bytes / (k_ms * 1e6), s_ms,
                    s_bytes / (s_ms * 1e6), s_ms / k_ms);
        rows.push_back({{"kind", "decode"},
                        {"batch", B},
                        {"context", ctx},
                        {"kernel_ms", k_ms},
                        {"kernel_gbps", k_bytes / (k_ms * 1e6)},
                        {"softmax_ms", s_ms},
                        {"softmax_gbps", s_bytes / (s_ms * 1e6)}});
    }
    if (a.flag("json")) std::printf("%s\n", rows.dump(1).c_str());
    return 0;
}

}  // namespace lincat::cli
