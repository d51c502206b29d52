// lincat bench attention: LibTorch softmax attention vs chunked hybrid attention (prefill),
// and softmax-with-KV-cache vs recurrent hybrid (decode), one attention layer, batch 1,
// fp32, measured in one run; ratios are softmax / hybrid.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "attention/hybrid.h"
#include "attention/softmax.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "util/error.h"
#include "util/json.h"
#include "util/memory_tracker.h"

namespace lincat::cli {

namespace {

struct HeadShape {
    std::string name;
    int64_t heads, head_dim;
};

struct Row {
    std::string kind, shape;
    int64_t n, heads, head_dim;
    double softmax_ms, hybrid_ms;
    int64_t softmax_peak_bytes, hybrid_peak_bytes;
    int64_t softmax_heads_measured;  // < heads: time and memory scaled up from this many heads
    std::string softmax_mode;
    double softmax_gflops, hybrid_gflops;
};

using Clock = std::chrono::steady_clock;

struct Measured {
    double seconds;      // best of the calls
    int64_t peak_bytes;  // extra tensor bytes at the peak of the first call
};

// Times f: the first call also measures memory; short calls are repeated `reps` times more.
template <typename F>
Measured measure(F&& f, int reps) {
    int64_t base = TensorMemory::current();
    TensorMemory::reset_peak();
    auto t0 = Clock::now();
    f();
    Measured m{std::chrono::duration<double>(Clock::now() - t0).count(), TensorMemory::peak() - base};
    if (m.seconds > 2.0) return m;
    for (int i = 0; i < reps; ++i) {
        auto t = Clock::now();
        f();
        m.seconds = std::min(m.seconds, std::chrono::duration<double>(Clock::now() - t).count());
    }
    return m;
}

// LibTorch softmax attention; when the (H, n, n) weights would not fit comfortably the
// queries go in blocks of 1024 (keys sliced to the causal range), same arithmetic.
torch::Tensor softmax_prefill(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool blocked) {
    if (!blocked) return softmax_attention(q, k, v, 0);
    const int64_t T = q.size(2), block = 1024;
    std::vector<torch::Tensor> outs;
    for (int64_t s = 0; s < T; s += block) {
        int64_t len = std::min(block, T - s);
        outs.push_back(softmax_attention(q.narrow(2, s, len), k.narrow(2, 0, s + len), v.narrow(2, 0, s + len), s));
    }
    return torch::cat(outs, 2);
}

Row bench_prefill(const HeadShape& shape, int64_t n, double budget_s, double softmax_gflops_guess) {
    const int64_t H = shape.heads, d = shape.head_dim, w = 64, f = 64;
    Row r{"prefill", shape.name, n, H, d, 0, 0, 0, 0, H, "", 0, 0};
    torch::NoGradGuard ng;
    // Softmax: full weights if H x n x n x 4 B x ~3 temporaries stays under 6 GB.
    const bool blocked = double(H) * n * n * 4 * 3 > 6e9;
    const double flops_per_head = blocked ? 2.0 * n * double(n) * d : 4.0 * n * double(n) * d;
    int64_t h_meas = H;
    double est = flops_per_head * H / (softmax_gflops_guess * 1e9);
    if (est > budget_s) h_meas = std::max<int64_t>(1, int64_t(double(H) * budget_s / est));
    r.softmax_heads_measured = h_meas;
    r.softmax_mode = blocked ? "query blocks of 1024" : "full n x n";
    {
        auto q = torch::randn({1, h_meas, n, d}), k = torch::randn({1, h_meas, n, d}),
             v = torch::randn({1, h_meas, n, d});
        Measured m = measure([&] { softmax_prefill(q, k, v, blocked); }, 2);
        const double scale = double(H) / double(h_meas);
        r.softmax_ms = 1e3 * m.seconds * scale;
        r.softmax_peak_bytes = int64_t(double(m.peak_bytes) * scale);
        r.softmax_gflops = flops_per_head * double(h_meas) / m.seconds / 1e9;
    }
    {
        HybridAttentionImpl attn(
            HybridOptions(H, d).window({WindowKind::Terraced, w, BlockAlign::Start}).feature_dim(f));
        auto q = torch::randn({1, H, n, d}), k = torch::randn({1, H, n, d}), v = torch::randn({1, H, n, d});
        Measured m = measure([&] { attn.forward(q, k, v, nullptr); }, 2);
        const double s = m.seconds;
        r.hybrid_peak_bytes = m.peak_bytes;
        r.hybrid_ms = 1e3 * s;
        // Feature maps (2 x 2ndf), window scores and values (2 x 2 n 2w d), state and readout (2 x 2 n 2f d).
        const double flops = H * (2 * 2.0 * n * d * f + 2 * 2.0 * n * 2 * w * d + 2 * 2.0 * n * 2 * f * d);
        r.hybrid_gflops = flops / s / 1e9;
    }
    return r;
}

Row bench_decode(const HeadShape& shape, int64_t n, int steps) {
    const int64_t H = shape.heads, d = shape.head_dim;
    Row r{"decode", shape.name, n, H, d, 0, 0, 0, 0, H, "KV cache", 0, 0};
    torch::NoGradGuard ng;
    auto step_inputs = [&] {
        return std::vector<torch::Tensor>{torch::randn({1, H, 1, d}), torch::randn({1, H, 1, d}),
                                          torch::randn({1, H, 1, d})};
    };
    {
        SoftmaxAttentionImpl attn;
        auto state = attn.new_state();
        static_cast<KVCache*>(state.get())->append(torch::randn({1, H, n, d}), torch::randn({1, H, n, d}));
        auto x = step_inputs();
        attn.forward(x[0], x[1], x[2], state.get());  // warm-up
        auto t0 = Clock::now();
        for (int i = 0; i < steps; ++i) attn.forward(x[0], x[1], x[2], state.get());
        r.softmax_ms = 1e3 * std::chrono::duration<double>(Clock::now() - t0).count() / steps;
        r.softmax_peak_bytes = state->bytes();
        r.softmax_gflops = 4.0 * H * d * double(n) / (r.softmax_ms * 1e-3) / 1e9;
    }
    {
        HybridAttentionImpl attn(HybridOptions(H, d));
        auto state = attn.new_state();
        {
            auto k = torch::randn({1, H, n, d}), v = torch::randn({1, H, n, d});
            static_cast<HybridState*>(state.get())->absorb_prefill(k, v, attn.feature_map_k(k));
        }
        auto x = step_inputs();
        attn.forward(x[0], x[1], x[2], state.get());
        auto t0 = Clock::now();
        for (int i = 0; i < steps; ++i) attn.forward(x[0], x[1], x[2], state.get());
        r.hybrid_ms = 1e3 * std::chrono::duration<double>(Clock::now() - t0).count() / steps;
        r.hybrid_peak_bytes = state->bytes();
        const double flops = H * (2 * 2.0 * d * 64 + 2 * 2.0 * 128 * d + 2 * 2.0 * 128 * d + 4 * 2.0 * 128 * 128);
        r.hybrid_gflops = flops / (r.hybrid_ms * 1e-3) / 1e9;
    }
    return r;
}

std::vector<int64_t> parse_lengths(const std::string& s, const std::string& what) {
    std::vector<int64_t> out;
    for (auto& item : split_list(s)) {
        int64_t v = parse_count(item, what, /*binary=*/true);
        if (v <= 0) fail(what, ": values must be positive");
        out.push_back(v);
    }
    if (out.empty()) fail(what, ": give at least one length");
    return out;
}

int bench_attention(const Argv& argv) {
    Args a("bench attention",
           {{"n", "prefill lengths", false, "1K,4K,16K,64K"},
            {"context", "decode context lengths", false, "1K,4K,16K,64K"},
            {"shapes", "head shapes: stories15m (6x48), llama3-8b (32x128)", false, "stories15m,llama3-8b"},
            {"budget", "seconds allowed per softmax prefill measurement before heads are sampled", false, "20"},
            {"steps", "decode steps timed per context", false, "32"},
            {"json", "print the rows as a JSON array", true}},
           argv);
    TensorMemory::install();
    std::vector<HeadShape> shapes;
    std::string list = a.get("shapes", "stories15m,llama3-8b");
    if (list.find("stories15m") != std::string::npos) shapes.push_back({"stories15m", 6, 48});
    if (list.find("llama3-8b") != std::string::npos) shapes.push_back({"llama3-8b", 32, 128});
    if (shapes.empty()) fail("bench attention: --shapes names none of stories15m, llama3-8b");
    auto ns = parse_lengths(a.get("n", "1K,4K,16K,64K"), "--n");
    auto contexts = parse_lengths(a.get("context", "1K,4K,16K,64K"), "--context");
    const double budget = a.get_double("budget", 20);
    const int steps = int(a.get_int("steps", 32));
    const bool as_json = a.flag("json");

    const double mm = sgemm_gflops();
    if (!as_json) std::printf("threads %d; plain fp32 matmul 2048^3: %.1f GFLOP/s\n", at::get_num_threads(), mm);
    std::vector<Row> rows;
    for (auto& s : shapes) {
        double softmax_rate = mm * 0.2;  // first guess; then the rate measured at the previous n
        for (int64_t n : ns) {
            rows.push_back(bench_prefill(s, n, budget, softmax_rate));
            softmax_rate = rows.back().softmax_gflops;
            if (!as_json)
                std::fprintf(stderr, "  prefill %s n=%lld: softmax %.0f ms, hybrid %.0f ms\n", s.name.c_str(),
                             (long long)n, rows.back().softmax_ms, rows.back().hybrid_ms);
        }
        for (int64_t n : contexts) rows.push_back(bench_decode(s, n, steps));
    }
    if (as_json) {
        json arr = json::array();
        for (auto& r : rows)
            arr.push_back({{"kind", r.kind},
                           {"shape", r.shape},
                           {"n", r.n},
                           {"heads", r.heads},
                           {"head_dim", r.head_dim},
                           {"softmax_ms", r.softmax_ms},
                           {"hybrid_ms", r.hybrid_ms},
                           {"softmax_peak_bytes", r.softmax_peak_bytes},
                           {"hybrid_peak_bytes", r.hybrid_peak_bytes},
                           {"softmax_heads_measured", r.softmax_heads_measured},
                           {"softmax_mode", r.softmax_mode},
                           {"speedup", r.softmax_ms / r.hybrid_ms},
                           {"softmax_gflops", r.softmax_gflops},
                           {"hybrid_gflops", r.hybrid_gflops},
                           {"matmul_gflops", mm}});
        std::printf("%s\n", arr.dump(1).c_str());
        return 0;
    }
    std::printf("\n%-8s %-11s %7s %11s %11s %8s %11s %11s %9s %9s  %s\n", "kind", "shape", "n", "softmax", "hybrid",
                "ratio", "sm mem", "hyb mem", "sm GF/s", "hyb GF/s", "note");
    for (auto& r : rows) {
        std::string note = r.kind == "decode" ? "ms/token; mem = KV cache vs state" : r.softmax_mode;
        if (r.softmax_heads_measured < r.heads)
            note += ", softmax measured on " + std::to_string(r.softmax_heads_measured) + " heads, scaled";
        std::printf("%-8s %-11s %7lld %9.2fms %9.2fms %7.1fx %11s %11s %9.1f %9.1f  %s\n", r.kind.c_str(),
                    r.shape.c_str(), (long long)r.n, r.softmax_ms, r.hybrid_ms, r.softmax_ms / r.hybrid_ms,
                    human_bytes(double(r.softmax_peak_bytes)).c_str(), human_bytes(double(r.hybrid_peak_bytes)).c_str(),
                    r.softmax_gflops, r.hybrid_gflops, note.c_str());
    }
    return 0;
}

}  // namespace

double sgemm_gflops() {
    auto a = torch::randn({2048, 2048}), b = torch::randn({2048, 2048});
    double s = measure([&] { torch::mm(a, b); }, 3).seconds;
    return 2.0 * 2048 * 2048 * 2048 / s / 1e9;
}

int cmd_bench(const Argv& argv) {
    const char* known = "attention, batched, decode, kernels, linear, load, sample, train";
    if (argv.empty()) fail("bench: name a benchmark: ", known);
    Argv rest(argv.begin() + 1, argv.end());
    if (argv[0] == "attention") return bench_attention(rest);
    if (argv[0] == "decode") return bench_decode(rest);
    if (argv[0] == "kernels") return bench_kernels(rest);
    if (argv[0] == "load") return bench_load(rest);
    if (argv[0] == "train") return bench_train(rest);
    if (argv[0] == "sample") return bench_sample(rest);
    if (argv[0] == "linear") return bench_linear(rest);
    if (argv[0] == "batched") return bench_batched(rest);
    fail("bench: unknown benchmark '", argv[0], "' (known: ", known, ")");
}

}  // namespace lincat::cli
