// lincat bench decode: whole-model decoding, softmax teacher (KV cache) vs linearized model
// (window ring buffer + linear state), after contexts of 256 .. 64K tokens, in one run:
// tokens/s (the median of alternating rounds) and the size of the per-sequence state, with ratios. Positions past the
// model's trained length are fine here: speed and memory do not depend on what the tokens mean.
#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>

#include "attention/linearize.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/model_dir.h"
#include "train/distill_config.h"
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

// One model's decode after a prefill of n random tokens per row (in chunks for the KV cache; in
// one chunked-form call for the hybrid state, which absorbs a whole prefill).
struct DecodeRun {
    LlamaModel model{nullptr};
    ModelState state;
    torch::Tensor tokens;
    int64_t next = 0;  // position of the next token to decode
    std::vector<double> round_ms;
    double prefill_seconds = 0;

    DecodeRun(LlamaModel m, int64_t n, int64_t batch, int64_t steps, int64_t prefill_chunk) : model(std::move(m)) {
        using Clock = std::chrono::steady_clock;
        torch::NoGradGuard ng;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
        tokens = torch::randint(3, model->config().vocab_size, {batch, n + steps + 1}, gen, torch::kLong);
        state = model->new_state();
        auto t0 = Clock::now();
        for (int64_t s = 0; s < n; s += prefill_chunk)
            model->hidden(tokens.narrow(1, s, std::min(prefill_chunk, n - s)), &state);  // no LM head for the prompt
        prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        next = n;
        step(1);  // warm-up
        round_ms.clear();
    }
    // Times k decode steps as one round.
    void step(int64_t k) {
        torch::NoGradGuard ng;
        auto t0 = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < k; ++i) model->forward(tokens.narrow(1, next++, 1), &state);
        round_ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                           double(k));
    }
    DecodeMeasure measure(int64_t batch) const {
        std::vector<double> ms = round_ms;
        std::sort(ms.begin(), ms.end());
        DecodeMeasure m;
        m.ms_per_step = ms[ms.size() / 2];  // the median round: robust to this machine's drifts
        m.tokens_per_second = 1e3 * double(batch) / m.ms_per_step;
        m.prefill_seconds = prefill_seconds;
        m.state_bytes = state.bytes();
        return m;
    }
};

// The teacher and the linearized model decode in alternating rounds of 8 steps, so a drift of
// the machine's speed (seen here: +-20% within a minute) falls on both alike.
std::pair<DecodeMeasure, DecodeMeasure> measure_pair(LlamaModel teacher, LlamaModel linear, int64_t n, int64_t batch,
                                                     int64_t steps, bool with_teacher) {
    std::optional<DecodeRun> t;
    if (with_teacher) t.emplace(teacher, n, batch, steps, 1024);
    DecodeRun l(linear, n, batch, steps, n);
    const int64_t round = std::min<int64_t>(8, steps);
    for (int64_t done = 0; done < steps; done += round) {
        const int64_t k = std::min(round, steps - done);
        if (t) t->step(k);
        l.step(k);
    }
    return {t ? t->measure(batch) : DecodeMeasure{}, l.measure(batch)};
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
                {"steps", "decode steps timed per context (rounds of 8)", false, "64"},
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
    const int64_t batch = a.get_int("batch", 1), steps = a.get_int("steps", 64);
    const int64_t teacher_up_to = parse_count(a.get("teacher-up-to", "16K"), "--teacher-up-to", /*binary=*/true);
    if (batch <= 0 || steps <= 0) fail("--batch and --steps must be positive");

    LlamaModel teacher = load_llama(dir);
    std::string checkpoint = checkpoint_from_args(a);
    LlamaModel linear{nullptr};
    if (checkpoint.empty()) {
        linear = load_llama(dir);
        linearize(linear, DistillConfig{}.linearize);
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
        auto [t, l] = measure_pair(teacher, linear, n, batch, steps, with_teacher);
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
