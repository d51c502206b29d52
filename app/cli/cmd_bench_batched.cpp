// lincat bench batched: the batched matrix products of a stage-1 step on the model's shapes
// (the chunked hybrid form's (B, H, C) tiles, the teacher's per-head scores), LibTorch's
// torch::matmul next to util/batched_matmul, in one run, rounds alternating between the two so
// that the machine's drift falls on both: the time per call, GFLOP/s and the ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include "attention/linearize.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/config.h"
#include "model/model_dir.h"
#include "train/distill_config.h"
#include "util/batched_matmul.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Product {
    std::string name;
    std::vector<int64_t> batch;  // leading dims
    int64_t m, k, n;
    bool transpose_b;  // b given as a transposed view, as K^T is
};

double seconds_once(const std::function<void()>& f) {
    auto t = Clock::now();
    f();
    return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int bench_batched(const Argv& argv) {
    Args a("bench batched",
           with_compute_options({{"model", "model folder or cache name (its head shapes)", false, "default"},
                                 {"batch", "rows per step", false, "4"},
                                 {"seq", "sequence length", false, "256"},
                                 {"rounds", "alternating rounds (the best of each is kept)", false, "7"},
                                 {"json", "print the rows as a JSON array", true}}),
           argv);
    apply_compute_options(a);
    const std::string dir = resolve_model_dir(a.get("model", "default"));
    const ModelConfig c = load_model_config(dir + "/config.json");
    const int64_t B = parse_count(a.get("batch", "4"), "--batch"), T = parse_count(a.get("seq", "256"), "--seq");
    const int rounds = int(parse_count(a.get("rounds", "7"), "--rounds"));
    const LinearizeOptions lin = default_stage1_linearization();
    const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, G = H / Hkv, d = c.head_dim;
    const int64_t w = lin.window.size, F = 2 * lin.feature_dim, C = (T + w - 1) / w + 1;
    const std::vector<Product> products = {
        {"teacher scores q k^T", {B, Hkv}, G * T, d, T, true}, {"teacher values w v", {B, Hkv}, G * T, T, d, false},
        {"window scores q k^T", {B, H, C}, w, d, 2 * w, true}, {"window values a v", {B, H, C}, w, 2 * w, d + 1, false},
        {"linear local fq fk^T", {B, H, C}, w, F, w, true},    {"chunk states fk^T v", {B, H, C}, F, w, d + 1, false},
        {"state reads fq S", {B, H, C}, w, F, d + 1, false},
    };
    torch::NoGradGuard no_grad;
    json out = json::array();
    for (const auto& p : products) {
        auto sa = p.batch, sb = p.batch;
        sa.insert(sa.end(), {p.m, p.k});
        if (p.transpose_b)
            sb.insert(sb.end(), {p.n, p.k});
        else
            sb.insert(sb.end(), {p.k, p.n});
        auto x = torch::randn(sa), y = torch::randn(sb);
        if (p.transpose_b) y = y.transpose(-1, -2);
        int64_t batches = 1;
        for (auto s : p.batch) batches *= s;
        const double flops = 2.0 * double(batches) * double(p.m * p.k * p.n);
        auto torch_call = [&] { (void)torch::matmul(x, y); };
        auto ours_call = [&] { (void)batched_matmul(x, y); };
        for (int i = 0; i < 3; ++i) torch_call(), ours_call();
        // Enough calls per round for ~30 ms of work at the torch rate.
        const int64_t calls = std::max<int64_t>(1, int64_t(0.03 / std::max(1e-6, seconds_once(torch_call))));
        double best_torch = 1e30, best_ours = 1e30;
        for (int r = 0; r < rounds; ++r) {
            best_torch = std::min(best_torch, seconds_once([&] {
                                                  for (int64_t i = 0; i < calls; ++i) torch_call();
                                              }) / double(calls));
            best_ours = std::min(best_ours, seconds_once([&] {
                                                for (int64_t i = 0; i < calls; ++i) ours_call();
                                            }) / double(calls));
        }
        out.push_back({{"product", p.name},
                       {"batches", batches},
                       {"m", p.m},
                       {"k", p.k},
                       {"n", p.n},
                       {"torch_us", best_torch * 1e6},
                       {"batched_us", best_ours * 1e6},
                       {"torch_gflops", flops / best_torch / 1e9},
                       {"batched_gflops", flops / best_ours / 1e9},
                       {"speedup", best_torch / best_ours},
                       {"batched_used", batched_matmul_applies(x, y)}});
    }
    if (a.flag("json")) {
        std::printf("%s\n", out.dump(1).c_str());
        return 0;
    }
    std::printf("\nbatched products of a stage-1 step, %s, batch %lld x %lld tokens, threads %d\n", dir.c_str(),
                (long long)B, (long long)T, at::get_num_threads());
    std::printf("%-22s %8s %16s %10s %11s %9s %10s %8s\n", "product", "batches", "m x k x n", "torch us", "batched us",
                "torch GF", "batched GF", "speedup");
    for (auto& r : out) {
        char shape[48];
        std::snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)r["m"].get<int64_t>(),
                      (long long)r["k"].get<int64_t>(), (long long)r["n"].get<int64_t>());
        std::printf("%-22s %8lld %16s %10.1f %11.1f %9.1f %10.1f %7.2fx%s\n", r["product"].get<std::string>().c_str(),
                    (long long)r["batches"].get<int64_t>(), shape, r["torch_us"].get<double>(),
                    r["batched_us"].get<double>(), r["torch_gflops"].get<double>(), r["batched_gflops"].get<double>(),
                    r["speedup"].get<double>(), r["batched_used"].get<bool>() ? "" : "  (not used)");
    }
    std::printf(
        "torch = torch::matmul (one sgemm per batch, in turn); batched = util/batched_matmul (batches spread\n"
        "over threads, one single-threaded sgemm each); best of %d alternating rounds; speedup > 1: batched faster\n",
        rounds);
    return 0;
}

}  // namespace lincat::cli
