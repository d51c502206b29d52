// lincat finetune (stage 2, LoRA) and lincat linearize (stage 1 + stage 2 + eval in one go).
#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/outcomes.h"
#include "eval/evaluate.h"
#include "model/model_dir.h"
#include "train/ablation_spec.h"
#include "train/distill.h"
#include "train/finetune.h"
#include "train/stage2_policy.h"
#include "util/error.h"
#include "util/events.h"
#include "util/json.h"

namespace lincat::cli {

// Stage 2's own options (LoRA, losses) as linearize also offers them.
static const std::vector<std::string> kStage2Options = {
    "lora_rank", "lora_alpha", "lora_dropout", "lora_targets", "train_feature_maps", "xent_factor", "kd_factor"};

int cmd_finetune(const Argv& argv) {
    std::vector<OptionSpec> specs = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder"},
        {"run", "the stage-1 (distill) run to continue"},
        {"checkpoint", "or: a stage-1 checkpoint folder (data from --data or teacher samples)"},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "the stage-1 run's data"},
        {"resume", "continue finetune run RUN from its last checkpoint (or: lincat resume --run RUN)"},
        {"json", "print one JSON object with the results on stdout", true}};
    for (auto& spec : table_options(finetune_fields())) specs.push_back(spec);
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
            c.data.seq_len = default_seq_len(load_model_config(model_dir + "/config.json").max_position_embeddings);
        }
        if (a.has("data")) {
            c.data.text_files.clear(), c.data.jsonl_files.clear();
            add_data_files(c.data, a.get("data"));
        }
        read_table_options(a, finetune_fields(), c, "finetune");
        c.validate("finetune", /*cli_names=*/true);
    }
    FinetuneOutcome o = finetune(ws, model_dir, c, resume, progress_printer("finetune"), cancel_flag());
    print_finetune_outcome(o, a.flag("json"));
    return o.status == RunStatus::Completed ? 0 : 1;
}

int cmd_linearize(const Argv& argv) {
    // Stage 1's fields linearize offers (steps as --stage1-steps), then stage 2's.
    const std::vector<std::pair<std::string, std::string>> stage1 = {{"steps", "stage1-steps"},
                                                                     {"variant", ""},
                                                                     {"window", ""},
                                                                     {"feature_dim", ""},
                                                                     {"gate", ""},
                                                                     {"softmax_share", ""},
                                                                     {"seq_len", ""},
                                                                     {"teacher_sequences", ""},
                                                                     {"sample_dtype", ""},
                                                                     {"seed", ""}};
    std::vector<OptionSpec> specs = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder", false, "lincat-workspace"},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "text sampled from the teacher"},
        {"tasks", "multiple-choice JSONL files for the final eval"},
        {"keep-softmax",
         "layers kept softmax (LoLCATs' softmax_attentions), e.g. 4,5: every other layer is linearized and none is "
         "handed back (--softmax-share 0 unless given)"},
        {"stage2",
         "auto: run stage 2 only when stage 1's held-out perplexity is " +
             std::to_string(int(100 * kStage2MinGap + 0.5)) + "% or more above the teacher's; on; off",
         false, "auto"},
        {"json", "print the final evaluation as JSON", true}};
    for (auto& [key, cli] : stage1) specs.push_back(option_of(field_of(distill_fields(), key), cli));
    specs.push_back(option_of(field_of(finetune_fields(), "steps"), "stage2-steps"));
    for (auto& key : kStage2Options) specs.push_back(option_of(field_of(finetune_fields(), key)));
    Args a("linearize", with_compute_options(specs), argv);
    apply_compute_options(a);
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    std::string ws_dir = a.get("workspace", "lincat-workspace");
    Workspace ws = Workspace::open(ws_dir);
    ModelConfig mc = load_model_config(model_dir + "/config.json");

    DistillConfig d;
    d.data.seq_len = default_seq_len(mc.max_position_embeddings);
    for (auto& [key, cli] : stage1) read_option(a, field_of(distill_fields(), key), d, cli);
    if (a.has("keep-softmax")) {
        d.linearize.layers = layers_keeping_softmax(a.get("keep-softmax"), mc.num_hidden_layers, "--keep-softmax");
        if (!a.has("softmax-share")) d.softmax_share = 0;  // the user chose the softmax layers
    }
    table_validate(distill_fields(), d, "linearize", /*cli_names=*/true);
    add_data_files(d.data, a.get("data"));
    const Stage2Mode stage2 = parse_stage2_mode(a.get("stage2", "auto"), "linearize --stage2");
    std::fprintf(stderr, "lincat linearize: %s -> workspace %s\n[1/3] stage 1: attention transfer\n", model_dir.c_str(),
                 ws_dir.c_str());
    // The base model is loaded once: both stages train on it and the figures are taken on it.
    BaseModel base = load_base_model(model_dir);
    DistillOutcome s1 = distill(ws, base, d, std::nullopt, progress_printer("stage 1"), cancel_flag());
    if (s1.status != RunStatus::Completed) {
        print_distill_outcome(s1, a.flag("json"), false);
        return 1;
    }
    // Every stage is judged the same way: an Eval run on the held-out rows (the run tree, the
    // model card and `ablate` read them), and stage 1's decides whether stage 2 runs.
    auto evaluate = [&](const std::string& checkpoint, int64_t run) {
        EvalConfig e;
        e.checkpoint = checkpoint;
        e.source_run = run;
        e.data = run_data_spec(ws, s1.run);
        e.tasks = split_list(a.get("tasks"));
        return json::parse(evaluate_checkpoint(ws, base, e));
    };
    std::fprintf(stderr, "[2/3] evaluation of stage 1 (run %lld)\n", (long long)s1.run);
    const json eval1 = evaluate(s1.checkpoint, s1.run);
    const double t = eval1["teacher_ppl"].get<double>(), ppl1 = eval1["student_ppl"].get<double>();
    const std::string skip = stage2_skip_reason(stage2, t, ppl1);

    json doc = eval1;
    std::optional<FinetuneOutcome> s2;
    if (!skip.empty()) {
        std::fprintf(stderr, "[3/3] stage 2 (LoRA) %s\n", skip.c_str());
        doc["stage2_skipped"] = skip;
    } else {
        std::fprintf(stderr, "[3/3] stage 2: LoRA finetune (from run %lld), then its evaluation\n", (long long)s1.run);
        FinetuneConfig f;
        fill_from_stage1_run(ws, s1.run, f);
        read_option(a, field_of(finetune_fields(), "steps"), f, "stage2-steps");
        for (auto& key : kStage2Options) read_option(a, field_of(finetune_fields(), key), f);
        f.schedule.seed = d.schedule.seed;
        f.validate("linearize", /*cli_names=*/true);
        s2 = finetune(ws, base, f, std::nullopt, progress_printer("stage 2"), cancel_flag());
        if (s2->status != RunStatus::Completed) {
            print_finetune_outcome(*s2, a.flag("json"));
            return 1;
        }
        doc = evaluate(s2->checkpoint, s2->run);
        doc["stage2_run"] = s2->run;
    }
    doc["stage1_run"] = s1.run, doc["stage1_ppl"] = ppl1, doc["stage1_eval_run"] = eval1["run"];
    emit_event("result", doc);
    if (a.flag("json")) {
        std::printf("%s\n", doc.dump().c_str());
        return 0;
    }
    std::printf("\n%-22s %10s %9s\n", "held-out perplexity", "ppl", "vs teacher");
    std::printf("%-22s %10.3f %9s\n", "teacher (softmax)", t, "");
    std::printf("%-22s %10.3f %+8.2f%%   run %lld\n", "stage 1 (transfer)", ppl1, 100 * (ppl1 / t - 1),
                (long long)s1.run);
    if (s2) {
        const double ppl2 = doc["student_ppl"].get<double>();
        std::printf("%-22s %10.3f %+8.2f%%   run %lld\n", "stage 2 (LoRA)", ppl2, 100 * (ppl2 / t - 1),
                    (long long)s2->run);
    } else {
        std::printf("%-22s %10s   %s\n", "stage 2 (LoRA)", "-", skip.c_str());
    }
    std::printf("top-1 agreement %.1f%%, KL(teacher || student) %.4f nats/token over %lld tokens\n",
                100 * doc["top1_agreement"].get<double>(), doc["kl"].get<double>(),
                (long long)doc["tokens"].get<int64_t>());
    const int64_t final_run = s2 ? s2->run : s1.run;
    std::printf("checkpoint: %s\n", (s2 ? s2->checkpoint : s1.checkpoint).c_str());
    std::printf("next: lincat generate --run %lld --workspace %s --prompt \"Once upon a time\"\n", (long long)final_run,
                ws_dir.c_str());
    return 0;
}

}  // namespace lincat::cli
