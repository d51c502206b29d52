// lincat distill: stage 1 (attention transfer), recorded in the workspace database.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "train/ablation_spec.h"
#include "cli/distill_blocks.h"
#include "cli/outcomes.h"
#include "model/model_dir.h"
#include "train/distill.h"
#include "util/error.h"
#include "util/events.h"
#include "util/json.h"

namespace lincat::cli {

// Training options shared by joint and block-wise stage 1: the config's table, and the rest.
static std::vector<OptionSpec> distill_options() {
    std::vector<OptionSpec> o = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder (created if missing)"},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "text sampled from the teacher"},
        {"tokens", "train on about this many tokens (sets --steps)"},
        {"keep-softmax",
         "layers kept softmax, e.g. 4,5: every other layer is linearized (instead of --layers); with "
         "either, no layer is handed back unless --softmax-share is given"}};
    for (auto& spec : table_options(distill_fields())) o.push_back(spec);
    o.insert(o.end(),
             {{"resume", "continue run RUN from its last checkpoint (or: lincat resume --run RUN)"},
              {"states", "block-wise: a state dump folder (lincat dump-states)"},
              {"block", "block-wise: train only this block (resumes its unfinished run)"},
              {"parallel", "block-wise without --block: blocks trained at once as local processes", false, "1"},
              {"fresh", "block-wise: start a new run even if the block has one", true},
              {"json", "print one JSON object with the results on stdout", true}});
    return o;
}

static DistillConfig distill_config_from_args(const Args& a, const std::string& model_dir) {
    DistillConfig c;
    c.data.seq_len = default_seq_len(load_model_config(model_dir + "/config.json").max_position_embeddings);
    read_table_options(a, distill_fields(), c, "distill");
    if (a.has("keep-softmax")) {
        if (a.has("layers")) fail("give --layers (linearized) or --keep-softmax (kept softmax), not both");
        c.linearize.layers = layers_keeping_softmax(
            a.get("keep-softmax"), load_model_config(model_dir + "/config.json").num_hidden_layers, "--keep-softmax");
    }
    // Layers the user chose stay as chosen unless a share is asked for as well.
    if ((a.has("keep-softmax") || a.has("layers")) && !a.has("softmax-share")) c.softmax_share = 0;
    add_data_files(c.data, a.get("data"));
    if (a.has("tokens")) {
        TrainSchedule& s = c.schedule;
        int64_t per_step = s.batch_size * s.grad_accum * c.data.seq_len;
        s.steps = std::max<int64_t>(1, (a.get_int("tokens", 0) + per_step - 1) / per_step);
    }
    return c;
}

int cmd_distill(const Argv& argv) {
    Args a("distill", with_compute_options(distill_options()), argv);
    apply_compute_options(a);
    if (!a.has("workspace")) fail("--workspace DIR is required\n", a.help());
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    Workspace ws = Workspace::open(a.get("workspace"));
    DistillConfig c = distill_config_from_args(a, model_dir);
    if (a.has("states")) return distill_blocks(a, argv, ws, model_dir, c);
    if (a.has("block") || a.has("parallel")) fail("--block and --parallel need --states DIR (a state dump)");
    std::optional<int64_t> resume;
    if (a.has("resume")) resume = a.get_int("resume", 0);

    DistillOutcome o = distill(ws, model_dir, c, resume, progress_printer("distill"), cancel_flag());
    print_distill_outcome(o, a.flag("json"), true);
    return o.status == RunStatus::Completed ? 0 : 1;
}

}  // namespace lincat::cli
