#include "cli/common.h"

#include <csignal>
#include <cstdlib>

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "eval/evaluate.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/events.h"
#include "util/progress.h"

namespace lincat::cli {

std::vector<OptionSpec> with_compute_options(std::vector<OptionSpec> specs) {
    specs.push_back({"device", "cpu, cuda or cuda:N (needs a LibTorch with CUDA)", false, "cpu"});
    specs.push_back({"dtype", "auto, fp32 or bf16 (auto: bf16 on CUDA, fp32 on CPU)", false, "auto"});
    return specs;
}

void apply_compute_options(const Args& a) {
    set_compute(parse_compute(a.get("device", "cpu"), a.get("dtype", "auto")));
}

// One line, as a bar on a terminal (redrawn in place) or a plain line every `every`th update.
static void print_progress_line(const std::string& line, double fraction, bool final, bool print_plain) {
    if (isatty(2)) {
        int width = 24, filled = int(double(width) * std::clamp(fraction, 0.0, 1.0));
        std::fprintf(stderr, "\r[%s%s] %s\x1b[K", std::string(size_t(filled), '#').c_str(),
                     std::string(size_t(width - filled), '.').c_str(), line.c_str());
        if (final) std::fprintf(stderr, "\n");
    } else if (print_plain || final) {
        std::fprintf(stderr, "%s\n", line.c_str());
    }
}

std::function<void(const TrainProgress&)> progress_printer(const std::string& label) {
    // Off a terminal a line every 10 steps; LINCAT_PROGRESS_EVERY=N changes it. (Events: every step.)
    const char* every_env = std::getenv("LINCAT_PROGRESS_EVERY");
    const int64_t every = every_env && std::atoll(every_env) > 0 ? std::atoll(every_env) : 10;
    return [label, every](const TrainProgress& p) {
        emit_event("progress", {{"label", label},
                                {"done", p.step},
                                {"total", p.steps},
                                {"unit", "steps"},
                                {"rate", p.tokens_per_second},
                                {"eta_seconds", p.eta_seconds},
                                {"tokens", p.tokens},
                                {"loss", p.loss},
                                {"lr", p.lr},
                                {"tokens_per_second", p.tokens_per_second}});
        char line[240];
        std::snprintf(line, sizeof line, "%s step %lld/%lld | %.0f tok/s | loss %.4f | lr %.1e | ETA %s", label.c_str(),
                      (long long)p.step, (long long)p.steps, p.tokens_per_second, p.loss, p.lr,
                      duration_text(p.eta_seconds).c_str());
        print_progress_line(line, double(p.step) / double(p.steps), p.step == p.steps, p.step % every == 0);
    };
}

void print_core_progress(const Progress& p) {
    // Off a terminal one line per tenth of the work.
    static std::string last_label;
    static int64_t last_tenth = -1;
    const int64_t tenth = p.total > 0 ? 10 * p.done / p.total : 10;
    const bool plain = p.label != last_label || tenth != last_tenth;
    last_label = p.label, last_tenth = tenth;
    char line[240];
    std::snprintf(line, sizeof line, "%s %lld/%lld %s | %.0f %s/s | ETA %s", p.label.c_str(), (long long)p.done,
                  (long long)p.total, p.unit.c_str(), p.rate, p.unit.c_str(), duration_text(p.eta_seconds).c_str());
    print_progress_line(line, p.total > 0 ? double(p.done) / double(p.total) : 1.0, p.done >= p.total, plain);
}

static std::atomic<bool> g_cancel{false};

const std::atomic<bool>* cancel_flag() {
    return &g_cancel;
}

static void on_cancel_signal(int sig) {
    g_cancel = true;
    std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

void install_cancel_handler() {
    std::signal(SIGINT, on_cancel_signal);
    std::signal(SIGTERM, on_cancel_signal);
}

void add_data_files(DataSpec& spec, const std::string& list) {
    for (auto& f : split_list(list)) {
        bool jsonl = f.size() > 6 && f.compare(f.size() - 6, 6, ".jsonl") == 0;
        (jsonl ? spec.jsonl_files : spec.text_files).push_back(f);
    }
}

std::string checkpoint_from_args(const Args& a) {
    if (a.has("checkpoint") && a.has("run")) fail("give --checkpoint DIR or --run N, not both");
    if (a.has("checkpoint")) return a.get("checkpoint");
    if (!a.has("run")) return "";
    if (!a.has("workspace")) fail("--run N needs --workspace DIR (the workspace that holds the run)");
    Workspace ws = Workspace::open(a.get("workspace"));
    return run_checkpoint(ws, a.get_int("run", 0));
}

std::string human_bytes(double b) {
    char buf[32];
    if (b >= 1e9)
        std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
    else if (b >= 1e6)
        std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
    return buf;
}

}  // namespace lincat::cli
