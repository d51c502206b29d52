// lincat bench train: tokens/s and achieved GFLOP/s of one stage-1 and one stage-2 training
// step, each form measured in this run next to the machine's sgemm rate, and next to the
// straightforward PyTorch stage-1 step (resources/bench/plain_stage1.py, run with the same
// threads) when python3-torch is installed.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <torch/csrc/autograd/profiler.h>

#include "attention/linearize.h"
#include "attention/transfer.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "model/lora_model.h"
#include "model/model_dir.h"
#include "train/base_model.h"
#include "train/finetune.h"
#include "train/finetune_config.h"
#include "util/error.h"
#include "util/json.h"
#include "util/memory_tracker.h"
#include "util/threads.h"

namespace lincat::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct StepRow {
    std::string stage, form;
    int64_t seq_len = 0;
    double tokens_per_s = 0, step_ms = 0, gflops = 0;
    int64_t peak_bytes = 0;  // LibTorch CPU tensors at the step's peak, above what was live before
    std::string note;
};

// The work of a step in FLOPs, counted once per stage for every form (so GFLOP/s compare like
// with like): the matmuls of the straightforward algorithm, backward as twice the forward of
// what carries a gradient.
double layer_linear_flops(const ModelConfig& c, int64_t tokens) {
    const double C = double(c.hidden_size);
    const double params = C * double(c.q_dim()) * 2 + C * double(c.kv_dim()) * 2 + 3 * C * double(c.intermediate_size);
    return 2.0 * params * double(tokens);
}

// The softmax teacher's forward through every layer: projections, MLP, QK and PV (no lm_head).
double teacher_forward_flops(const ModelConfig& c, int64_t B, int64_t T) {
    const double BHTT = double(B) * double(c.num_attention_heads) * double(T) * double(T);
    return double(c.num_hidden_layers) * (layer_linear_flops(c, B * T) + 4 * BHTT * double(c.head_dim));
}

// with_teacher false: a step on cached teacher activations does only the students' work.
double stage1_step_flops(const ModelConfig& c, int64_t B, int64_t T, int64_t f, bool with_teacher = true) {
    const double H = double(c.num_attention_heads), d = double(c.head_dim), F = 2.0 * double(f);
    const double N = double(B * T), BHTT = double(B) * H * double(T) * double(T);
    const double student_fwd = 2 * 2 * N * H * d * double(f) + 2 * BHTT * F + 4 * BHTT * d;  // maps, linear, window
    const double student_bwd = 2 * (2 * 2 * N * H * d * double(f) + 2 * BHTT * F + 2 * BHTT * d);
    return (with_teacher ? teacher_forward_flops(c, B, T) : 0) +
           double(c.num_hidden_layers) * (student_fwd + student_bwd);
}

double stage2_step_flops(const ModelConfig& c, int64_t B, int64_t T, int64_t w) {
    const double H = double(c.num_attention_heads), d = double(c.head_dim);
    const double N = double(B * (T - 1));
    const double attention = 4 * N * H * double(2 * w) * d;  // window scores and values (chunked form)
    const double forward = double(c.num_hidden_layers) * (layer_linear_flops(c, B * (T - 1)) + attention) +
                           2 * N * double(c.hidden_size) * double(c.vocab_size);
    return 3 * forward;  // student forward, teacher forward, student backward (inputs only: weights frozen)
}

// --profile DIR: one more step of each form, after the timed ones, recorded as a Chrome trace.
std::string g_profile_dir;

template <typename Step>
void profile_step(Step&& step, const std::string& name) {
    if (g_profile_dir.empty()) return;
    fs::create_directories(g_profile_dir);
    std::string file = g_profile_dir + "/" + name + ".json";
    for (auto& ch : file)
        if (ch == ' ' || ch == ',') ch = '_';
    torch::autograd::profiler::RecordProfile guard(file);
    step();
}

template <typename Step>
StepRow time_steps(Step&& step, int warmup, int steps, int64_t tokens_per_step) {
    for (int i = 0; i < warmup; ++i) step();
    const int64_t before = TensorMemory::current();
    TensorMemory::reset_peak();
    auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) step();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count() / steps;
    StepRow r;
    r.step_ms = 1e3 * secs;
    r.tokens_per_s = double(tokens_per_step) / secs;
    r.peak_bytes = TensorMemory::peak() - before;
    return r;
}

// cached: the step of an epoch after the first, the teacher's activations replayed from
// train/teacher_cache.h (DistillConfig::teacher_cache_mb) instead of its forward.
StepRow bench_stage1(BaseModel& base, const LinearizeOptions& lin, int64_t B, int64_t T, bool shared, bool cached,
                     int warmup, int steps) {
    LlamaModel model = base.model;
    SavedCores softmax_cores(model);
    torch::manual_seed(0);
    linearize(model, lin);
    TransferLayers transfer = wrap_for_transfer(model, false);
    for (auto& c : transfer.cores) c->shared_scores = shared;
    auto params = transfer.parameters();
    for (auto& p : params) p.set_requires_grad(true);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-2).weight_decay(0));
    auto x = torch::randint(model->config().vocab_size, {B, T}, torch::kLong);
    std::vector<TeacherActivations> kept;
    if (cached) {
        torch::NoGradGuard ng;
        for (auto& c : transfer.cores) c->keep_teacher = true;
        model->hidden(x);
        for (auto& c : transfer.cores) kept.push_back(c->last_teacher), c->keep_teacher = false;
    }
    auto step = [&] {
        opt.zero_grad();
        if (cached) {
            for (size_t i = 0; i < transfer.cores.size(); ++i) transfer.cores[i]->student_loss(kept[i]);
        } else {
            torch::NoGradGuard ng;
            model->run_through_attention(x, transfer.layers.back());
        }
        std::vector<double> layer;
        transfer.loss(1.0, 0.0, layer).backward();
        torch::nn::utils::clip_grad_norm_(params, 1.0);
        opt.step();
    };
    StepRow r = time_steps(step, warmup, steps, B * T);
    const std::string name = cached ? "cached" : shared ? "shared" : "reference";
    profile_step(step, "stage1-" + name + "-T" + std::to_string(T));
    r.stage = "stage 1";
    r.seq_len = T;
    r.form = cached ? "lincat, teacher cached" : shared ? "lincat, shared scores" : "lincat, reference";
    r.note = cached   ? "epochs after the first: teacher activations replayed (default when they fit)"
             : shared ? "teacher q.k reused, quadratic linear part"
                      : "softmax teacher + chunked student (first epoch)";
    r.gflops = stage1_step_flops(model->config(), B, T, lin.feature_dim, !cached) / (r.step_ms * 1e-3) / 1e9;
    return r;
}

// The floor under a stage-1 step: the softmax teacher's forward alone (no student, no graph).
StepRow bench_teacher_forward(BaseModel& base, int64_t B, int64_t T, int warmup, int steps) {
    auto x = torch::randint(base.model->config().vocab_size, {B, T}, torch::kLong);
    auto step = [&] {
        torch::NoGradGuard ng;  // what a step's teacher pass runs when every layer has a student
        base.model->run_through_attention(x, base.model->num_layers() - 1);
    };
    StepRow r = time_steps(step, warmup, steps, B * T);
    r.stage = "stage 1";
    r.seq_len = T;
    r.form = "teacher forward only";
    r.note = "the floor: a step's teacher pass, no student (GFLOP/s count its whole forward)";
    r.gflops = teacher_forward_flops(base.model->config(), B, T) / (r.step_ms * 1e-3) / 1e9;
    return r;
}

StepRow bench_stage2(BaseModel& base, const LinearizeOptions& lin, int64_t B, int64_t T, bool fused, int warmup,
                     int steps) {
    LlamaModel student = copy_model(base.model);
    torch::manual_seed(0);
    linearize(student, lin);
    FinetuneConfig defaults;
    attach_lora(student, defaults.lora);
    auto params = lora_parameters(student);
    for (auto& p : params) p.set_requires_grad(true);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(defaults.schedule.lr).weight_decay(0));
    set_lora_training(student, true);
    auto x = torch::randint(student->config().vocab_size, {B, T}, torch::kLong);
    auto step = [&] {
        opt.zero_grad();
        stage2_loss(student, base.model, x, defaults.kd_factor, defaults.xent_factor, fused).backward();
        torch::nn::utils::clip_grad_norm_(params, 1.0);
        opt.step();
    };
    StepRow r = time_steps(step, warmup, steps, B * (T - 1));
    profile_step(step, std::string("stage2-") + (fused ? "fused" : "reference"));
    r.stage = "stage 2";
    r.seq_len = T;
    r.form = fused ? "lincat, fused loss" : "lincat, reference";
    r.note = fused ? "KD from hidden states in row chunks" : "KD from whole logits";
    r.gflops = stage2_step_flops(student->config(), B, T, lin.window.size) / (r.step_ms * 1e-3) / 1e9;
    return r;
}

std::string find_plain_script(const std::string& given) {
    if (!given.empty()) return given;
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    std::vector<std::string> candidates;
    if (n > 0) {
        fs::path exe = fs::path(std::string(self, size_t(n))).parent_path();
        candidates.push_back((exe / "../share/lincat/bench/plain_stage1.py").string());
    }
    candidates.push_back(std::string(LINCAT_SOURCE_DIR) + "/resources/bench/plain_stage1.py");
    for (auto& c : candidates)
        if (fs::exists(c)) return fs::weakly_canonical(c).string();
    return "";
}

// Runs the straightforward PyTorch step; nullopt (with the reason in `why`) when it cannot.
std::optional<StepRow> bench_plain(const std::string& python, const std::string& script, const std::string& model_dir,
                                   const LinearizeOptions& lin, int64_t B, int64_t T, int steps, std::string& why) {
    if (script.empty()) {
        why = "resources/bench/plain_stage1.py not found (give --plain-script)";
        return std::nullopt;
    }
    // With lincat's allocator settings (util/threads.cpp), so the two differ in their code only.
    std::string cmd = "MALLOC_TRIM_THRESHOLD_=" + std::to_string(kHeapTrimThreshold) + " MALLOC_MMAP_MAX_=0 " + python +
                      " '" + script + "' '" + model_dir + "' --batch " + std::to_string(B) + " --seq " +
                      std::to_string(T) + " --window " + std::to_string(lin.window.size) + " --feature-dim " +
                      std::to_string(lin.feature_dim) + " --steps " + std::to_string(steps) + " --threads " +
                      std::to_string(at::get_num_threads()) + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) {
        why = "could not run " + python;
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    while (size_t k = std::fread(buf, 1, sizeof buf, p)) out.append(buf, k);
    const int rc = ::pclose(p);
    const size_t brace = out.rfind("{\"tokens_per_s\"");
    if (rc != 0 || brace == std::string::npos) {
        why = python + " " + script + " failed (is python3-torch installed?): " + out.substr(0, 300);
        return std::nullopt;
    }
    json j = json::parse(out.substr(brace));
    StepRow r;
    r.stage = "stage 1";
    r.form = "plain PyTorch " + j.value("torch", std::string("?"));
    r.seq_len = T;
    r.tokens_per_s = j.at("tokens_per_s").get<double>();
    r.step_ms = 1e3 * j.at("step_s").get<double>();
    r.note = "resources/bench/plain_stage1.py, same threads and malloc settings";
    return r;
}

}  // namespace

int bench_train(const Argv& argv) {
    Args a("bench train",
           {{"model", "model folder or cache name", false, "default"},
            {"batch", "rows per step", false, "4"},
            {"seq", "sequence lengths (comma-separated; more than one compares the stage-1 forms)", false, "256"},
            {"steps", "timed steps per form", false, "4"},
            {"warmup", "untimed steps first", false, "1"},
            {"stage", "1, 2 or both", false, "both"},
            {"python", "interpreter for the plain PyTorch step ('' to skip it)", false, "/usr/bin/python3"},
            {"plain-script", "the plain PyTorch step", false, "resources/bench/plain_stage1.py"},
            {"profile", "also write a Chrome trace of one step of each form into this folder"},
            {"json", "print the rows as JSON", true}},
           argv);
    TensorMemory::install();
    g_profile_dir = a.get("profile", "");
    const std::string model_dir = resolve_model_dir(a.get("model", "default"));
    const int64_t B = a.get_int("batch", 4);
    const int steps = int(a.get_int("steps", 4)), warmup = int(a.get_int("warmup", 1));
    std::vector<int64_t> lengths;
    for (auto& s : split_list(a.get("seq", "256"))) lengths.push_back(parse_count(s, "--seq", true));
    const std::string stage = a.get("stage", "both");
    if (stage != "1" && stage != "2" && stage != "both")
        fail("bench train: --stage is 1, 2 or both, got '", stage, "'");
    if (B <= 0 || steps <= 0 || warmup < 0 || lengths.empty()) fail("bench train: --batch, --steps, --seq must be > 0");
    const bool as_json = a.flag("json");

    BaseModel base = load_base_model(model_dir);
    LinearizeOptions lin;  // LoLCATs: tk 64, Hedgehog f 64, as the plain PyTorch step (issue 18)
    const double sgemm = sgemm_gflops();
    std::vector<StepRow> rows;
    std::string plain_why;
    auto say = [&](const StepRow& r) {
        if (!as_json)
            std::fprintf(stderr, "  %s %-28s T=%lld: %.0f tok/s\n", r.stage.c_str(), r.form.c_str(),
                         (long long)r.seq_len, r.tokens_per_s);
    };
    if (stage != "2") {
        const std::string python = a.get("python", "/usr/bin/python3");
        for (int64_t T : lengths) {
            if (!python.empty() && T == lengths.front()) {
                auto plain = bench_plain(python, find_plain_script(a.get("plain-script", "")), model_dir, lin, B, T,
                                         steps, plain_why);
                if (plain) {
                    plain->gflops =
                        stage1_step_flops(base.model->config(), B, T, lin.feature_dim) / (plain->step_ms * 1e-3) / 1e9;
                    rows.push_back(*plain);
                    say(rows.back());
                }
            }
            rows.push_back(bench_teacher_forward(base, B, T, warmup, steps));
            say(rows.back());
            rows.push_back(bench_stage1(base, lin, B, T, false, false, warmup, steps));
            say(rows.back());
            rows.push_back(bench_stage1(base, lin, B, T, false, true, warmup, steps));
            say(rows.back());
            rows.push_back(bench_stage1(base, lin, B, T, true, false, warmup, steps));
            say(rows.back());
        }
    }
    if (stage != "1") {
        const int64_t T = lengths.front();
        rows.push_back(bench_stage2(base, lin, B, T, false, warmup, steps));
        say(rows.back());
        rows.push_back(bench_stage2(base, lin, B, T, true, warmup, steps));
        say(rows.back());
    }

    // Ratios within the run: each form against the first row of its stage and length.
    auto baseline = [&](const StepRow& r) -> const StepRow& {
        for (auto& o : rows)
            if (o.stage == r.stage && o.seq_len == r.seq_len) return o;
        return r;
    };
    if (as_json) {
        json arr = json::array();
        for (auto& r : rows)
            arr.push_back({{"stage", r.stage},
                           {"form", r.form},
                           {"seq_len", r.seq_len},
                           {"batch", B},
                           {"tokens_per_s", r.tokens_per_s},
                           {"step_ms", r.step_ms},
                           {"gflops", r.gflops},
                           {"sgemm_gflops", sgemm},
                           {"fraction_of_sgemm", r.gflops / sgemm},
                           {"vs_first_form", r.tokens_per_s / baseline(r).tokens_per_s},
                           {"peak_tensor_bytes", r.peak_bytes},
                           {"note", r.note}});
        json doc = {{"threads", at::get_num_threads()}, {"sgemm_gflops", sgemm}, {"rows", arr}};
        if (!plain_why.empty()) doc["plain_pytorch"] = plain_why;
        std::printf("%s\n", doc.dump(1).c_str());
        return 0;
    }
    std::printf("model %s, batch %lld, threads %d; sgemm 2048^3 fp32: %.1f GFLOP/s\n", model_dir.c_str(), (long long)B,
                at::get_num_threads(), sgemm);
    if (!plain_why.empty()) std::printf("plain PyTorch step not measured: %s\n", plain_why.c_str());
    std::printf("\n%-8s %-28s %6s %10s %9s %8s %7s %8s %10s  %s\n", "stage", "form", "T", "tokens/s", "step ms",
                "GFLOP/s", "sgemm", "ratio", "peak mem", "note");
    for (auto& r : rows) {
        std::string mem = r.peak_bytes > 0 ? std::to_string(r.peak_bytes / 1000000) + " MB" : "-";
        std::printf("%-8s %-28s %6lld %10.0f %9.1f %8.1f %6.0f%% %7.2fx %10s  %s\n", r.stage.c_str(), r.form.c_str(),
                    (long long)r.seq_len, r.tokens_per_s, r.step_ms, r.gflops, 100 * r.gflops / sgemm,
                    r.tokens_per_s / baseline(r).tokens_per_s, mem.c_str(), r.note.c_str());
    }
    std::printf(
        "\nratio: tokens/s over the first form of the same stage and length; GFLOP/s count the same work for\n"
        "every form (the straightforward algorithm's matmuls), so they compare like with like.\n");
    return 0;
}

}  // namespace lincat::cli
