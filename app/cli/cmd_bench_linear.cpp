// lincat bench linear: the model's linear layers at a few rows (decode, one token per sequence),
// LibTorch's torch::linear next to the one-pass form (model/few_rows_linear.h), in one run: the
// time per call, the weight bytes read per second, and the ratio. Rows above kFewRowsMax run the
// one-pass form in slices of its limit, to show where the blocked GEMMs start to win.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/config.h"
#include "model/few_rows_linear.h"
#include "model/model_dir.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat::cli {

namespace {

// Mean seconds per call of f: best of three rounds, each at least ~50 ms of calls.
template <typename F>
double seconds_per_call(F&& f) {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < 3; ++i) f();
    auto t0 = Clock::now();
    f();
    const double once = std::max(1e-6, std::chrono::duration<double>(Clock::now() - t0).count());
    const int64_t calls = std::max<int64_t>(1, int64_t(0.05 / once));
    double best = 1e30;
    for (int round = 0; round < 3; ++round) {
        auto t = Clock::now();
        for (int64_t i = 0; i < calls; ++i) f();
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t).count() / double(calls));
    }
    return best;
}

torch::Tensor one_pass_in_slices(const torch::Tensor& x, const torch::Tensor& w) {
    const int64_t most = few_rows_max(w.scalar_type());
    if (x.size(0) <= most) return few_rows_linear(x, w, {});
    std::vector<torch::Tensor> parts;
    for (int64_t r = 0; r < x.size(0); r += most)
        parts.push_back(few_rows_linear(x.narrow(0, r, std::min(most, x.size(0) - r)), w, {}));
    return torch::cat(parts);
}

}  // namespace

int bench_linear(const Argv& argv) {
    Args a("bench linear",
           with_compute_options({{"model", "model folder or cache name (its layer shapes)", false, "default"},
                                 {"rows", "rows per call (tokens decoded together)", false, "1,2,4,8,16"},
                                 {"dtypes", "weight precisions: fp32, bf16", false, "fp32,bf16"},
                                 {"json", "print the rows as a JSON array", true}}),
           argv);
    apply_compute_options(a);
    torch::NoGradGuard no_grad;
    const std::string dir = resolve_model_dir(a.get("model", "default"));
    const ModelConfig c = load_model_config(dir + "/config.json");
    std::vector<int64_t> rows;
    for (const auto& r : split_list(a.get("rows", "1,2,4,8,16"))) rows.push_back(parse_count(r, "--rows"));
    std::vector<torch::Dtype> dtypes;
    for (const auto& d : split_list(a.get("dtypes", "fp32,bf16"))) {
        if (d == "fp32")
            dtypes.push_back(torch::kFloat32);
        else if (d == "bf16")
            dtypes.push_back(torch::kBFloat16);
        else
            fail("bench linear: --dtypes: unknown precision '", d, "' (known: fp32, bf16)");
    }
    if (rows.empty() || dtypes.empty()) fail("bench linear: --rows and --dtypes must name at least one each");
    // The distinct (out, in) shapes of one decoder layer, then the head.
    std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> shapes;
    std::set<std::pair<int64_t, int64_t>> seen;
    for (auto [name, shape] : std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>>{
             {"q_proj", {c.q_dim(), c.hidden_size}},
             {"k_proj", {c.kv_dim(), c.hidden_size}},
             {"o_proj", {c.hidden_size, c.q_dim()}},
             {"up_proj", {c.intermediate_size, c.hidden_size}},
             {"down_proj", {c.hidden_size, c.intermediate_size}},
             {"lm_head", {c.vocab_size, c.hidden_size}}})
        if (seen.insert(shape).second) shapes.push_back({name, shape});

    const bool as_json = a.flag("json");
    json out = json::array();
    for (auto dtype : dtypes)
        for (auto& [name, shape] : shapes) {
            auto w = torch::randn({shape.first, shape.second}).to(dtype);
            const double bytes = double(w.numel() * w.element_size());
            for (int64_t m : rows) {
                auto x = torch::randn({m, shape.second}).to(dtype);
                const double t_torch = seconds_per_call([&] { torch::linear(x, w); });
                const double t_one = seconds_per_call([&] { one_pass_in_slices(x, w); });
                out.push_back({{"layer", name},
                               {"out", shape.first},
                               {"in", shape.second},
                               {"dtype", c10::toString(dtype)},
                               {"rows", m},
                               {"torch_us", t_torch * 1e6},
                               {"one_pass_us", t_one * 1e6},
                               {"one_pass_gb_s", bytes / t_one / 1e9},
                               {"speedup", t_torch / t_one},
                               {"one_pass_used", m <= few_rows_max(dtype)}});
            }
        }
    if (as_json) {
        std::printf("%s\n", out.dump(1).c_str());
        return 0;
    }
    std::printf("\nlinear layers of %s at a few rows, threads %d\n", dir.c_str(), at::get_num_threads());
    std::printf("%-10s %13s %-9s %5s %11s %12s %10s %9s %s\n", "layer", "out x in", "dtype", "rows", "torch us",
                "one-pass us", "GB/s", "speedup", "");
    for (auto& r : out) {
        char shape[32];
        std::snprintf(shape, sizeof shape, "%lldx%lld", (long long)r["out"].get<int64_t>(),
                      (long long)r["in"].get<int64_t>());
        std::printf("%-10s %13s %-9s %5lld %11.1f %12.1f %10.1f %8.2fx %s\n", r["layer"].get<std::string>().c_str(),
                    shape, r["dtype"].get<std::string>().c_str(), (long long)r["rows"].get<int64_t>(),
                    r["torch_us"].get<double>(), r["one_pass_us"].get<double>(), r["one_pass_gb_s"].get<double>(),
                    r["speedup"].get<double>(), r["one_pass_used"].get<bool>() ? "" : "(not used: sliced)");
    }
    std::printf(
        "one-pass = model/few_rows_linear (each weight row read once for every row of x), used up to %lld fp32\n"
        "rows, %lld bf16 rows (beyond: in slices, to show the crossover); GB/s = weight bytes over its time;\n"
        "speedup = torch's time over the one-pass time (> 1: one-pass faster)\n",
        (long long)kFewRowsMax, (long long)kFewRowsMaxBF16);
    return 0;
}

}  // namespace lincat::cli
