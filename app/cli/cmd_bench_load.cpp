// lincat bench load: loads a model folder and measures the process's resident memory (VmRSS,
// VmHWM from /proc/self/status) against the weights' bytes on disk and in the target dtype,
// with the time it took. The lean-loading goal: peak <= 1.15 x the weights in that dtype.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/llama.h"
#include "model/model_dir.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/json.h"
#include "util/process_memory.h"

namespace lincat::cli {

int bench_load(const Argv& argv) {
    Args a("bench load",
           with_compute_options(
               {{"model", "model folder or cache name", false, "default"}, {"json", "print one JSON object", true}}),
           argv);
    apply_compute_options(a);
    std::string dir = resolve_model_dir(a.get("model", "default"));
    int64_t file_bytes = 0;
    for (auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".safetensors") file_bytes += int64_t(e.file_size());
    // The peak is a high-water mark for the whole process: measure it from a settled start.
    const int64_t rss_before = resident_bytes();
    const int64_t hwm_before = peak_resident_bytes();
    auto t0 = std::chrono::steady_clock::now();
    LlamaModel model = load_llama(dir);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t rss_after = resident_bytes();
    const int64_t hwm_after = peak_resident_bytes();
    int64_t weight_bytes = 0;
    for (auto& p : model->parameters()) weight_bytes += p.numel() * int64_t(p.element_size());
    const int64_t peak = std::max(hwm_after, hwm_before) - rss_before;
    const double ratio = double(peak) / double(weight_bytes);
    const std::string dtype = c10::toString(compute().dtype);
    if (a.flag("json")) {
        std::printf("%s\n", json({{"model", dir},
                                  {"dtype", dtype},
                                  {"file_bytes", file_bytes},
                                  {"weight_bytes", weight_bytes},
                                  {"rss_before", rss_before},
                                  {"rss_after", rss_after},
                                  {"peak_rss_increase", peak},
                                  {"peak_over_weights", ratio},
                                  {"seconds", seconds}})
                                .dump()
                                .c_str());
        return 0;
    }
    auto gb = [](int64_t b) { return double(b) / 1e9; };
    std::printf("model %s (%s)\n", dir.c_str(), dtype.c_str());
    std::printf("%-26s %10s\n", "", "GB");
    std::printf("%-26s %10.3f\n", "safetensors files", gb(file_bytes));
    std::printf("%-26s %10.3f\n", "weights in target dtype", gb(weight_bytes));
    std::printf("%-26s %10.3f\n", "RSS before load", gb(rss_before));
    std::printf("%-26s %10.3f\n", "RSS increase after load", gb(rss_after - rss_before));
    std::printf("%-26s %10.3f\n", "peak RSS increase", gb(peak));
    std::printf("peak / weights = %.3f (goal <= 1.15), load %.2f s, %.2f GB/s\n", ratio, seconds,
                gb(weight_bytes) / seconds);
    return 0;
}

}  // namespace lincat::cli
