// lincat finetune (stage 2, LoRA) and lincat linearize (stage 1 + stage 2 + eval in one go).
#include <cmath>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/evaluate.h"
#include "model/model_dir.h"
#include "train/distill.h"
#include "train/finetune.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat::cli {

static const std::vector<OptionSpec> kLoraOptions = {
    {"lora-rank", "LoRA rank r", false, "8"},
    {"lora-alpha", "LoRA alpha", false, "16"},
    {"lora-dropout", "LoRA dropout", false, "0"},
    {"lora-targets", "projections to adapt", false, "q_proj,k_proj,v_proj,o_proj"},
    {"train-feature-maps", "also keep training feature maps and gammas", true},
    {"xent-factor", "weight of next-token cross-entropy on the data (LoLCATs' loss)", false, "0"},
    {"kd-factor", "weight of KL(teacher || student) on the next-token distributions", false, "1"},
};

static void read_lora_options(const Args& a, FinetuneConfig& c) {
    c.lora.rank = a.get_int("lora-rank", 8);
    c.lora.alpha = a.get_double("lora-alpha", 16);
    c.lora.dropout = a.get_double("lora-dropout", 0);
    if (a.has("lora-targets")) c.lora.targets = split_list(a.get("lora-targets"));
    c.train_feature_maps = a.flag("train-feature-maps");
    c.xent_factor = a.get_double("xent-factor", c.xent_factor);
    c.kd_factor = a.get_double("kd-factor", c.kd_factor);
}

int cmd_finetune(const Argv& argv) {
    std::vector<OptionSpec> specs = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder"},
        {"run", "the stage-1 (distill) run to continue"},
        {"checkpoint", "or: a stage-1 checkpoint folder (data from --data or teacher samples)"},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "the stage-1 run's data"},
        {"steps", "optimizer steps", false, "100"},
        {"batch-size", "sequences per micro-batch", false, "4"},
        {"grad-accum", "micro-batches per step", false, "1"},
        {"lr", "AdamW learning rate", false, "3e-4"},
        {"eval-every", "steps between evaluations", false, "25"},
        {"checkpoint-every", "steps between checkpoints", false, "25"},
        {"seed", "seed for adapters and data order", false, "0"},
        {"resume", "continue finetune run RUN from its last checkpoint"},
        {"json", "print one JSON object with the results on stdout", true}};
    specs.insert(specs.end(), kLoraOptions.begin(), kLoraOptions.end());
    Args a("finetune", with_compute_options(specs), argv);
    apply_compute_options(a);
    if (!a.has("workspace")) fail("--workspace DIR is required\n", a.help());
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    Workspace ws = Workspace::open(a.get("workspace"));
    FinetuneConfig c;
    std::optional<int64_t> resume;
    if (a.has("resume")) {
        resume = a.get_int("resume", 0);
    } else {
        if (a.has("run") == a.has("checkpoint")) fail("give the stage-1 --run N or a --checkpoint DIR\n", a.help());
        if (a.has("run")) {
            fill_from_stage1_run(ws, a.get_int("run", 0), c);
        } else {
            c.stage1_checkpoint = a.get("checkpoint");
            ModelConfig mc = load_model_config(model_dir + "/config.json");
            c.data.seq_len = std::min<int64_t>(256, mc.max_position_embeddings);
        }
        if (a.has("data")) {
            c.data.text_files.clear(), c.data.jsonl_files.clear();
            add_data_files(c.data, a.get("data"));
        }
        read_lora_options(a, c);
        TrainSchedule& s = c.schedule;
        s.steps = a.get_int("steps", s.steps);
        s.batch_size = a.get_int("batch-size", s.batch_size);
        s.grad_accum = a.get_int("grad-accum", s.grad_accum);
        s.lr = a.get_double("lr", s.lr);
        s.eval_every = a.get_int("eval-every", s.eval_every);
        s.checkpoint_every = a.get_int("checkpoint-every", s.checkpoint_every);
        s.seed = uint64_t(a.get_int("seed", 0));
    }
    FinetuneOutcome o = finetune(ws, model_dir, c, resume, progress_printer("finetune"), cancel_flag());
    if (a.flag("json")) {
        json j = {{"run", o.run},
                  {"status", o.status},
                  {"steps", o.steps},
                  {"tokens", o.tokens},
                  {"teacher_ppl", o.teacher_ppl},
                  {"stage1_ppl", o.stage1_ppl},
                  {"student_ppl", o.student_ppl},
                  {"checkpoint", o.checkpoint}};
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("run %lld %s: %lld steps, %lld tokens\n", (long long)o.run, o.status.c_str(), (long long)o.steps,
                (long long)o.tokens);
    std::printf("held-out perplexity: teacher %.3f, stage 1 %.3f (%+.1f%%), stage 2 %.3f (%+.1f%%)\ncheckpoint: %s\n",
                o.teacher_ppl, o.stage1_ppl, 100.0 * (o.stage1_ppl / o.teacher_ppl - 1), o.student_ppl,
                100.0 * (o.student_ppl / o.teacher_ppl - 1), o.checkpoint.c_str());
    return 0;
}

int cmd_linearize(const Argv& argv) {
    std::vector<OptionSpec> specs = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder", false, "lincat-workspace"},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "text sampled from the teacher"},
        {"stage1-steps", "attention-transfer steps", false, "200"},
        {"stage2-steps", "LoRA finetune steps", false, "100"},
        {"variant", "tk or sw", false, "tk"},
        {"window", "window size w", false, "64"},
        {"feature-dim", "feature dim f", false, "64"},
        {"seq-len", "tokens per sequence", false, "min(256, model max)"},
        {"teacher-sequences", "teacher samples when no --data", false, "256"},
        {"tasks", "multiple-choice JSONL files for the final eval"},
        {"seed", "seed", false, "0"},
        {"json", "print the final evaluation as JSON", true}};
    specs.insert(specs.end(), kLoraOptions.begin(), kLoraOptions.end());
    Args a("linearize", with_compute_options(specs), argv);
    apply_compute_options(a);
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    std::string ws_dir = a.get("workspace", "lincat-workspace");
    Workspace ws = Workspace::open(ws_dir);
    ModelConfig mc = load_model_config(model_dir + "/config.json");

    DistillConfig d;
    d.linearize.window.kind = parse_window_kind(a.get("variant", "tk"));
    d.linearize.window.size = a.get_int("window", 64);
    d.linearize.feature_dim = a.get_int("feature-dim", 64);
    add_data_files(d.data, a.get("data"));
    d.data.seq_len = a.get_int("seq-len", std::min<int64_t>(256, mc.max_position_embeddings));
    d.data.teacher_sequences = a.get_int("teacher-sequences", 256);
    d.steps = a.get_int("stage1-steps", 200);
    d.seed = uint64_t(a.get_int("seed", 0));
    std::fprintf(stderr, "lincat linearize: %s -> workspace %s\n[1/3] stage 1: attention transfer\n", model_dir.c_str(),
                 ws_dir.c_str());
    DistillOutcome s1 = distill(ws, model_dir, d, std::nullopt, progress_printer("stage 1"), cancel_flag());

    std::fprintf(stderr, "[2/3] stage 2: LoRA finetune (from run %lld)\n", (long long)s1.run);
    FinetuneConfig f;
    fill_from_stage1_run(ws, s1.run, f);
    read_lora_options(a, f);
    f.schedule.steps = a.get_int("stage2-steps", 100);
    f.schedule.seed = d.seed;
    FinetuneOutcome s2 = finetune(ws, model_dir, f, std::nullopt, progress_printer("stage 2"), cancel_flag());

    std::fprintf(stderr, "[3/3] evaluation\n");
    EvalConfig e;
    e.checkpoint = s2.checkpoint;
    e.source_run = s2.run;
    e.data = f.data;
    e.tasks = split_list(a.get("tasks"));
    json doc = json::parse(evaluate_checkpoint(ws, model_dir, e));
    if (a.flag("json")) {
        doc["stage1_run"] = s1.run, doc["stage2_run"] = s2.run, doc["stage1_ppl"] = s2.stage1_ppl;
        std::printf("%s\n", doc.dump().c_str());
        return 0;
    }
    const double t = s2.teacher_ppl;
    std::printf("\n%-22s %10s %9s\n", "held-out perplexity", "ppl", "vs teacher");
    std::printf("%-22s %10.3f %9s\n", "teacher (softmax)", t, "");
    std::printf("%-22s %10.3f %+8.1f%%   run %lld\n", "stage 1 (transfer)", s2.stage1_ppl,
                100 * (s2.stage1_ppl / t - 1), (long long)s1.run);
    std::printf("%-22s %10.3f %+8.1f%%   run %lld\n", "stage 2 (LoRA)", s2.student_ppl, 100 * (s2.student_ppl / t - 1),
                (long long)s2.run);
    std::printf("top-1 agreement %.1f%%, KL(teacher || student) %.4f nats/token over %lld tokens\n",
                100 * doc["top1_agreement"].get<double>(), doc["kl"].get<double>(),
                (long long)doc["tokens"].get<int64_t>());
    std::printf("checkpoint: %s\n", s2.checkpoint.c_str());
    std::printf("next: lincat generate --run %lld --workspace %s --prompt \"Once upon a time\"\n", (long long)s2.run,
                ws_dir.c_str());
    return 0;
}

}  // namespace lincat::cli
