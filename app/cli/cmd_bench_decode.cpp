// lincat bench decode: whole-model decoding, softmax teacher (KV cache) vs linearized model
// (window ring buffer + linear state), after contexts of 256 .. 64K tokens, in one run:
// tokens/s and the size of the per-sequence state, with ratios. Positions past the model's
// trained length are fine here: speed and memory do not depend on what the tokens mean.
#include <chrono>
#include <cstdio>

#include "attention/linearize.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/model_dir.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat::cli {

namespace {

struct DecodeMeasure {
    double prefill_seconds = 0, tokens_per_second = 0, ms_per_step = 0;
    int64_t state_bytes = 0;
};

// Prefills n random tokens per row (in chunks for the KV cache; in one chunked-form call for
// the hybrid state, which absorbs a whole prefill), then times `steps` decode steps.
DecodeMeasure measure_decode(LlamaModel& model, int64_t n, int64_t batch, int64_t steps, int64_t prefill_chunk) {
    using Clock = std::chrono::steady_clock;
    torch::NoGradGuard ng;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    auto tokens = torch::randint(3, model->config().vocab_size, {batch, n + steps + 1}, gen, torch::kLong);
    ModelState state = model->new_state();
    DecodeMeasure m;
    auto t0 = Clock::now();
    for (int64_t s = 0; s < n; s += prefill_chunk)
        model->hidden(tokens.narrow(1, s, std::min(prefill_chunk, n - s)), &state);  // no LM head for the prompt
    m.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    model->forward(tokens.narrow(1, n, 1), &state);  // warm-up step
    auto t1 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) model->forward(tokens.narrow(1, n + 1 + i, 1), &state);
    double secs = std::chrono::duration<double>(Clock::now() - t1).count();
    m.tokens_per_second = double(batch * steps) / secs;
    m.ms_per_step = 1e3 * secs / double(steps);
    m.state_bytes = state.bytes();
    return m;
}

std::string mb(int64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MB", double(bytes) / 1e6);
    return buf;
}

}  // namespace

int bench_decode(const Argv& argv) {
    Args a("bench decode",
           with_compute_options(
               {{"model", "model folder or cache name", false, "default"},
                {"checkpoint", "linearized checkpoint (else fresh untrained feature maps: same speed and memory)"},
                {"run", "or: the best checkpoint of this run (needs --workspace)"},
                {"workspace", "workspace holding --run"},
                {"context", "context lengths", false, "256,1K,4K,16K"},
                {"batch", "sequences decoded together", false, "1"},
                {"steps", "decode steps timed per context", false, "32"},
                {"teacher-up-to", "longest context the softmax teacher is run at (its prefill is quadratic)", false,
                 "16K"},
                {"json", "print the rows as a JSON array", true}}),
           argv);
    apply_compute_options(a);
    std::string dir = resolve_model_dir(a.get("model", "default"));
    std::vector<int64_t> contexts;
    for (auto& item : split_list(a.get("context", "256,1K,4K,16K"))) {
        int64_t v = parse_count(item, "--context", /*binary=*/true);
        if (v <= 0) fail("--context: values must be positive");
        contexts.push_back(v);
    }
    if (contexts.empty()) fail("--context: give at least one length");
    const int64_t batch = a.get_int("batch", 1), steps = a.get_int("steps", 32);
    const int64_t teacher_up_to = parse_count(a.get("teacher-up-to", "16K"), "--teacher-up-to", /*binary=*/true);
    if (batch <= 0 || steps <= 0) fail("--batch and --steps must be positive");

    LlamaModel teacher = load_llama(dir);
    std::string checkpoint = checkpoint_from_args(a);
    LlamaModel linear{nullptr};
    if (checkpoint.empty()) {
        linear = load_llama(dir);
        linearize(linear, LinearizeOptions{});
    } else {
        linear = load_linearized(dir, checkpoint);
    }
    const bool as_json = a.flag("json");
    if (!as_json)
        std::fprintf(stderr, "bench decode: %s, batch %lld, %lld steps per context, threads %d%s\n", dir.c_str(),
                     (long long)batch, (long long)steps, at::get_num_threads(),
                     checkpoint.empty() ? ", linearized with untrained feature maps" : "");
    json rows = json::array();
    for (int64_t n : contexts) {
        const bool with_teacher = n <= teacher_up_to;
        DecodeMeasure t = with_teacher ? measure_decode(teacher, n, batch, steps, 1024) : DecodeMeasure{};
        DecodeMeasure l = measure_decode(linear, n, batch, steps, n);
        json row = {{"context", n},
                    {"batch", batch},
                    {"linear_tokens_per_second", l.tokens_per_second},
                    {"linear_state_bytes", l.state_bytes},
                    {"linear_prefill_seconds", l.prefill_seconds}};
        if (with_teacher) {
            row["teacher_tokens_per_second"] = t.tokens_per_second;
            row["speedup"] = l.tokens_per_second / t.tokens_per_second;
            row["teacher_state_bytes"] = t.state_bytes;
            row["memory_ratio"] = double(t.state_bytes) / double(l.state_bytes);
            row["teacher_prefill_seconds"] = t.prefill_seconds;
        }
        rows.push_back(row);
        if (!as_json)
            std::fprintf(stderr, "  context %lld: teacher %s tok/s, linearized %.1f tok/s\n", (long long)n,
                         with_teacher ? std::to_string(int64_t(t.tokens_per_second)).c_str() : "(not run)",
                         l.tokens_per_second);
    }
    if (as_json) {
        std::printf("%s\n", rows.dump(1).c_str());
        return 0;
    }
    std::printf("\n%8s %13s %13s %8s %13s %13s %8s %11s %11s\n", "context", "teacher tok/s", "linear tok/s", "speedup",
                "teacher state", "linear state", "ratio", "prefill T", "prefill L");
    for (auto& r : rows) {
        if (!r.contains("teacher_tokens_per_second")) {  // past --teacher-up-to: the linearized model only
            std::printf("%8lld %13s %13.1f %8s %13s %13s %8s %11s %10.2fs\n", (long long)r["context"].get<int64_t>(),
                        "-", r["linear_tokens_per_second"].get<double>(), "-", "-",
                        mb(r["linear_state_bytes"].get<int64_t>()).c_str(), "-", "-",
                        r["linear_prefill_seconds"].get<double>());
            continue;
        }
        std::printf("%8lld %13.1f %13.1f %7.2fx %13s %13s %7.1fx %10.2fs %10.2fs\n",
                    (long long)r["context"].get<int64_t>(), r["teacher_tokens_per_second"].get<double>(),
                    r["linear_tokens_per_second"].get<double>(), r["speedup"].get<double>(),
                    mb(r["teacher_state_bytes"].get<int64_t>()).c_str(),
                    mb(r["linear_state_bytes"].get<int64_t>()).c_str(), r["memory_ratio"].get<double>(),
                    r["teacher_prefill_seconds"].get<double>(), r["linear_prefill_seconds"].get<double>());
    }
    std::printf("state = KV cache (teacher) vs window ring buffer + linear state (linearized), all layers, all rows\n");
    return 0;
}

}  // namespace lincat::cli
