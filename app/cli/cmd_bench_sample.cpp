// lincat bench sample: teacher sampling as stage 1 runs it (n sequences x len tokens from BOS,
// batched, KV cache, inverse-CDF draws), in each precision asked for, in one run: wall time,
// tokens/s, the split between the model's steps and the draws, and the peak resident memory.
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "data/dataset.h"
#include "model/model_dir.h"
#include "train/base_model.h"
#include "util/error.h"
#include "util/json.h"
#include "util/process_memory.h"

namespace lincat::cli {

int bench_sample(const Argv& argv) {
    const DataSpec defaults;
    Args a("bench sample",
           with_compute_options({{"model", "model folder or cache name", false, "default"},
                                 {"sequences", "rows sampled", false, std::to_string(defaults.teacher_sequences)},
                                 {"len", "tokens per row, BOS included", false, std::to_string(defaults.seq_len)},
                                 {"dtypes", "sampling precisions, as --sample-dtype takes them (auto, model, bf16)",
                                  false, "model,bf16"},
                                 {"seed", "sampling seed", false, std::to_string(defaults.seed)},
                                 {"json", "print the rows as a JSON array", true}}),
           argv);
    apply_compute_options(a);
    const std::string dir = resolve_model_dir(a.get("model", "default"));
    const int64_t n = a.get_int("sequences", defaults.teacher_sequences), len = a.get_int("len", defaults.seq_len);
    if (n < 1 || len < 2) fail("bench sample: --sequences must be >= 1 and --len >= 2");
    const auto seed = uint64_t(a.get_int("seed", int64_t(defaults.seed)));
    std::vector<std::string> dtypes = split_list(a.get("dtypes", "model,bf16"));
    if (dtypes.empty()) fail("bench sample: --dtypes names none");
    const bool as_json = a.flag("json");

    BaseModel base = load_base_model(dir);
    if (base.tokenizer.bos_id() < 0) fail(dir, ": the model names no BOS (bos_token_id) to sample from");
    json rows = json::array();
    for (const std::string& name : dtypes) {
        DataSpec spec;
        spec.sample_dtype = name;
        const torch::Dtype dtype = teacher_sampling_dtype(spec);  // fails on an unknown name
        if (!as_json) std::fprintf(stderr, "bench sample: %s (%s)\n", name.c_str(), c10::toString(dtype));
        reset_peak_resident();  // the high-water mark of this row alone
        SamplingTimes times;
        auto t0 = std::chrono::steady_clock::now();
        sample_teacher_sequences(base.model, n, len, seed, base.tokenizer.bos_id(), 0, dtype, &times);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rows.push_back({{"dtype", name},
                        {"computes_in", c10::toString(dtype)},
                        {"sequences", n},
                        {"len", len},
                        {"batch_rows", times.batch_rows},
                        {"seconds", seconds},
                        {"tokens_per_s", double(n * (len - 1)) / seconds},
                        {"forward_seconds", times.forward_seconds},
                        {"pick_seconds", times.pick_seconds},
                        {"peak_rss", peak_resident_bytes()}});
    }
    if (as_json) {
        std::printf("%s\n", rows.dump(1).c_str());
        return 0;
    }
    std::printf("\nteacher sampling, %s: %lld x %lld tokens, threads %d\n", dir.c_str(), (long long)n, (long long)len,
                at::get_num_threads());
    std::printf("%-8s %-10s %6s %9s %10s %10s %9s %8s %12s\n", "dtype", "computes", "batch", "seconds", "tokens/s",
                "forward s", "pick s", "vs first", "peak RSS");
    const double first = rows[0]["seconds"].get<double>();
    for (auto& r : rows)
        std::printf("%-8s %-10s %6lld %8.2fs %10.0f %9.2fs %8.2fs %7.2fx %12s\n", r["dtype"].get<std::string>().c_str(),
                    r["computes_in"].get<std::string>().c_str(), (long long)r["batch_rows"].get<int64_t>(),
                    r["seconds"].get<double>(), r["tokens_per_s"].get<double>(), r["forward_seconds"].get<double>(),
                    r["pick_seconds"].get<double>(), first / r["seconds"].get<double>(),
                    human_bytes(double(r["peak_rss"].get<int64_t>())).c_str());
    std::printf(
        "vs first = the first row's time over this row's (> 1: faster); peak RSS = the process's high-water\n"
        "mark during the row, model and heap kept from earlier rows included\n");
    return 0;
}

}  // namespace lincat::cli
