// lincat eval: a linearized checkpoint against its base model.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/evaluate.h"
#include "model/model_dir.h"
#include "train/checkpoint.h"
#include "util/error.h"
#include "util/events.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat::cli {

int cmd_eval(const Argv& argv) {
    Args a("eval",
           with_compute_options(
               {{"model", "model folder or cache name", false, "default"},
                {"workspace", "workspace folder (the eval is recorded there)"},
                {"run", "evaluate this run's best checkpoint (its data gives the held-out split)"},
                {"checkpoint", "or: a linearized checkpoint folder"},
                {"data", "held-out text files, cut into rows of --seq-len", false, "the run's eval split"},
                {"seq-len", "tokens per row", false, "the run's, else min(256, model max)"},
                {"max-rows", "evaluate at most this many rows", false, "all"},
                {"tasks", "comma-separated multiple-choice JSONL files"},
                {"output", "also write the JSON document to this file"},
                {"json", "print the JSON document on stdout", true}}),
           argv);
    apply_compute_options(a);
    if (!a.has("workspace")) fail("--workspace DIR is required\n", a.help());
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    EvalConfig c;
    c.checkpoint = checkpoint_from_args(a);
    if (c.checkpoint.empty()) fail("give --run N or --checkpoint DIR\n", a.help());
    Workspace ws = Workspace::open(a.get("workspace"));
    ModelConfig mc = load_model_config(model_dir + "/config.json");
    c.data.seq_len = default_seq_len(mc.max_position_embeddings);
    if (a.has("run")) {
        c.source_run = a.get_int("run", 0);
        c.data = run_data_spec(ws, c.source_run);
    }
    c.data.seq_len = a.get_int("seq-len", c.data.seq_len);
    c.text_files = split_list(a.get("data"));
    c.tasks = split_list(a.get("tasks"));
    c.max_rows = a.get_int("max-rows", 0);
    json doc = json::parse(evaluate_checkpoint(ws, model_dir, c));
    if (a.has("output")) write_file_atomic(a.get("output"), doc.dump(2) + "\n");
    emit_event("result", doc);
    if (a.flag("json")) {
        std::printf("%s\n", doc.dump().c_str());
        return 0;
    }
    const double t = doc["teacher_ppl"].get<double>(), s = doc["student_ppl"].get<double>();
    std::printf("eval run %lld of %s\n", (long long)doc["run"].get<int64_t>(), c.checkpoint.c_str());
    std::printf("perplexity: teacher %.3f, student %.3f (%+.1f%%) over %lld tokens\n", t, s, 100 * (s / t - 1),
                (long long)doc["tokens"].get<int64_t>());
    std::printf("top-1 agreement %.2f%%, KL(teacher || student) %.4f nats/token\n",
                100 * doc["top1_agreement"].get<double>(), doc["kl"].get<double>());
    std::printf("%6s %14s\n", "layer", "output mse");
    for (size_t i = 0; i < doc["layers"].size(); ++i)
        std::printf("%6lld %14.6g\n", (long long)doc["layers"][i].get<int64_t>(), doc["layer_mse"][i].get<double>());
    if (doc.contains("results"))
        for (auto& [task, r] : doc["results"].items()) {
            auto& tr = doc["teacher_results"][task];
            std::printf("%-20s acc %.3f +- %.3f  acc_norm %.3f +- %.3f   (teacher acc %.3f, acc_norm %.3f)\n",
                        task.c_str(), r["acc,none"].get<double>(), r["acc_stderr,none"].get<double>(),
                        r["acc_norm,none"].get<double>(), r["acc_norm_stderr,none"].get<double>(),
                        tr["acc,none"].get<double>(), tr["acc_norm,none"].get<double>());
        }
    return 0;
}

}  // namespace lincat::cli
