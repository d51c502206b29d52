// lincat dump-states, stitch and slurm: the block-wise stage 1 around `distill --block`.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>

#include "blocks/slurm.h"
#include "blocks/state_dump.h"
#include "blocks/stitch.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/outcomes.h"
#include "model/model_dir.h"
#include "train/checkpoint.h"
#include "util/error.h"
#include "util/events.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat::cli {

namespace fs = std::filesystem;

static std::string mb(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
    return buf;
}

int dump_states_and_report(Workspace& ws, const std::string& model_dir, const StateDumpConfig& c, bool as_json) {
    const bool tty = isatty(2);
    StateDumpOutcome o = dump_states(
        ws, model_dir, c,
        [tty](const StateDumpProgress& p) {
            emit_event("progress", {{"label", "dump-states"},
                                    {"done", p.rows_done},
                                    {"total", p.rows_total},
                                    {"unit", "rows"},
                                    {"rate", p.rows_per_second},
                                    {"eta_seconds", p.eta_seconds}});
            std::fprintf(stderr, "%sdump-states %lld/%lld rows | %.1f rows/s | ETA %s%s", tty ? "\r" : "",
                         (long long)p.rows_done, (long long)p.rows_total, p.rows_per_second,
                         duration_text(p.eta_seconds).c_str(), tty ? "\x1b[K" : "\n");
            if (tty && p.rows_done == p.rows_total) std::fprintf(stderr, "\n");
        },
        cancel_flag());
    const StateManifest& m = o.manifest;
    const std::string status = o.already_complete ? "already complete" : run_status_name(o.status);
    json result = {{"run", o.run},
                   {"status", status},
                   {"dir", fs::absolute(o.dir).string()},
                   {"k", m.k},
                   {"blocks", m.blocks.size()},
                   {"bytes", o.bytes},
                   {"planned_bytes", o.needed_bytes},
                   {"shards_written", o.shards_written},
                   {"shards_kept", o.shards_kept},
                   {"blocks_ready", o.blocks_ready},
                   {"baseline_rss_bytes", o.baseline_rss_bytes},
                   {"peak_rss_bytes", o.peak_rss_bytes},
                   {"layer_tokens_per_second", o.tokens_per_second}};
    const bool ok = o.status == RunStatus::Completed || o.status == RunStatus::Running;  // Running: later blocks follow
    if (emit_result(result, as_json)) return ok ? 0 : 1;
    std::printf("run %lld %s: %s\n", (long long)o.run, status.c_str(), fs::absolute(o.dir).string().c_str());
    if (o.status == RunStatus::Cancelled) return 1;
    if (!o.already_complete)
        std::printf("this job: peak RSS %s (%s at start), %.0f token-layers/s\n", mb(double(o.peak_rss_bytes)).c_str(),
                    mb(double(o.baseline_rss_bytes)).c_str(), o.tokens_per_second);
    if (o.status == RunStatus::Running) {
        std::printf("blocks 0..%lld of %zu are ready to train (ready.json); dump-states --block %lld continues\n",
                    (long long)o.blocks_ready - 1, m.blocks.size(), (long long)o.blocks_ready);
        return 0;
    }
    std::printf("k = %lld: %zu blocks, %lld train + %lld eval sequences of %lld tokens, %s\n", (long long)m.k,
                m.blocks.size(), (long long)m.train_rows, (long long)m.eval_rows, (long long)m.seq_len,
                dtype_name(m.dtype));
    std::printf("states on disk: %s (planner: %s); %lld shards written, %lld kept from before\n",
                mb(double(o.bytes)).c_str(), mb(double(o.needed_bytes)).c_str(), (long long)o.shards_written,
                (long long)o.shards_kept);
    std::printf("next: lincat distill --states %s --workspace %s --parallel N   (or --block I per block)\n",
                fs::absolute(o.dir).string().c_str(), ws.dir().c_str());
    return 0;
}

int cmd_dump_states(const Argv& argv) {
    const std::vector<std::string> data_keys = {"seq_len", "teacher_sequences", "seed"};  // the data's table
    std::vector<OptionSpec> specs = {
        {"model", "model folder or cache name", false, "default"},
        {"workspace", "workspace folder (created if missing)"},
        {"k", "layers per block"},
        {"out", "dump folder", false, "<workspace>/states/k<k>"},
        {"dtype", "f32, bf16 or f16", false, "f32"},
        {"data", "comma-separated text / .jsonl (Alpaca) files", false, "text sampled from the teacher"},
        {"shard-rows", "sequences per shard file", false, std::to_string(StateDumpConfig{}.shard_rows)},
        {"micro-batch", "sequences per teacher forward", false, std::to_string(StateDumpConfig{}.batch)},
        {"block", "only the states entering this block (needs block-1's; one Slurm job per block)", false, "all"},
        {"json", "print one JSON object with the results on stdout", true}};
    for (auto& key : data_keys) specs.push_back(option_of(field_of(data_fields(), key)));
    Args a("dump-states", specs, argv);
    if (!a.has("workspace")) fail("--workspace DIR is required\n", a.help());
    if (!a.has("k")) fail("--k K (layers per block) is required; lincat plan suggests one\n", a.help());
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    Workspace ws = Workspace::open(a.get("workspace"));
    ModelConfig mc = load_model_config(model_dir + "/config.json");
    StateDumpConfig c;
    c.k = a.get_int("k", 0);
    std::string dtype = a.get("dtype", "f32");
    if (dtype == "f32")
        c.dtype = DType::F32;
    else if (dtype == "bf16")
        c.dtype = DType::BF16;
    else if (dtype == "f16")
        c.dtype = DType::F16;
    else
        fail("--dtype must be f32, bf16 or f16, not '", dtype, "'");
    add_data_files(c.data, a.get("data"));
    c.data.seq_len = default_seq_len(mc.max_position_embeddings);
    for (auto& key : data_keys) read_option(a, field_of(data_fields(), key), c.data);  // seed: use distill's --seed
    table_validate(data_fields(), c.data, "dump-states", /*cli_names=*/true);
    c.shard_rows = a.get_int("shard-rows", c.shard_rows);
    c.batch = a.get_int("micro-batch", c.batch);
    if (a.has("block")) c.block = a.get_int("block", 0);
    c.out_dir = a.get("out");
    return dump_states_and_report(ws, model_dir, c, a.flag("json"));
}

int cmd_stitch(const Argv& argv) {
    Args a("stitch",
           {{"model", "model folder or cache name", false, "default"},
            {"workspace", "workspace folder"},
            {"states", "the state dump the blocks were trained from"},
            {"runs", "comma-separated distill-block runs, one per block", false, "latest completed per block"},
            {"json", "print one JSON object with the results on stdout", true}},
           argv);
    if (!a.has("workspace") || !a.has("states")) fail("--workspace DIR and --states DIR are required\n", a.help());
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    Workspace ws = Workspace::open(a.get("workspace"));
    std::vector<int64_t> runs;
    for (auto& r : split_list(a.get("runs"))) runs.push_back(parse_count(r, "--runs"));
    StitchOutcome o = stitch_blocks(ws, model_dir, a.get("states"), runs);
    const ModelComparison& c = o.comparison;
    if (a.flag("json")) {
        std::printf("%s\n", json({{"run", o.run},
                                  {"checkpoint", o.checkpoint},
                                  {"block_runs", o.block_runs},
                                  {"teacher_ppl", c.teacher_ppl},
                                  {"student_ppl", c.student_ppl},
                                  {"top1_agreement", c.top1_agreement},
                                  {"kl", c.kl},
                                  {"layers", c.layers},
                                  {"layer_mse", c.layer_mse}})
                                .dump()
                                .c_str());
        return 0;
    }
    std::printf("stitched %zu blocks (runs", o.block_runs.size());
    for (auto r : o.block_runs) std::printf(" %lld", (long long)r);
    std::printf(") into run %lld: %s\n", (long long)o.run, o.checkpoint.c_str());
    std::printf("held-out: teacher ppl %.3f, stitched %.3f (%+.1f%%), top-1 %.1f%%, KL %.4f\n", c.teacher_ppl,
                c.student_ppl, 100 * (c.student_ppl / c.teacher_ppl - 1), 100 * c.top1_agreement, c.kl);
    std::printf("%6s %14s\n", "layer", "output mse");
    for (size_t i = 0; i < c.layers.size(); ++i) std::printf("%6lld %14.6g\n", (long long)c.layers[i], c.layer_mse[i]);
    std::printf("next: lincat finetune --run %lld --workspace %s\n", (long long)o.run, ws.dir().c_str());
    return 0;
}

int cmd_slurm(const Argv& argv) {
    Args a("slurm",
           {{"plan", "a plan file from lincat plan --json"},
            {"emit", "folder for the scripts"},
            {"model", "model folder as the nodes see it", false, "default"},
            {"workspace", "shared workspace folder"},
            {"states", "state dump folder", false, "<workspace>/states/k<k>"},
            {"k", "layers per block", false, "the plan's recommended k"},
            {"lincat", "lincat binary on the nodes", false, "this binary"},
            {"gpus", "GPUs per task (0 on CPU-only clusters)", false, "1"},
            {"cpus", "CPUs per task", false, "8"},
            {"mem", "memory per task, e.g. 64G", false, "from the plan"},
            {"partition", "Slurm partition"},
            {"account", "Slurm account"},
            {"dump-args", "extra flags for dump-states (quoted)"},
            {"distill-args", "extra flags for distill --block (quoted)"}},
           argv);
    if (!a.has("plan") || !a.has("emit") || !a.has("workspace"))
        fail("--plan FILE, --emit DIR and --workspace DIR are required\n", a.help());
    Plan plan = plan_from_json(read_file(a.get("plan"), 16u << 20), a.get("plan"));
    SlurmOptions o;
    o.model_dir = fs::absolute(resolve_model_dir(a.get("model", "default"))).string();
    ModelConfig mc = load_model_config(o.model_dir + "/config.json");
    if (mc.num_hidden_layers != plan.input.model.layers || mc.hidden_size != plan.input.model.hidden)
        fail(a.get("plan"), ": planned for ", plan.input.model.name, " (", plan.input.model.layers, " layers, hidden ",
             plan.input.model.hidden, "), but ", o.model_dir, " has ", mc.num_hidden_layers, " layers, hidden ",
             mc.hidden_size, "; plan with lincat plan --config ", o.model_dir, "/config.json");
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    o.lincat = a.has("lincat") ? a.get("lincat") : std::string(self, n > 0 ? size_t(n) : 0);
    o.workspace = fs::absolute(a.get("workspace")).string();
    if (a.has("states")) o.states_dir = fs::absolute(a.get("states")).string();
    o.k = a.get_int("k", 0);
    o.gpus_per_task = a.get_int("gpus", 1);
    o.cpus_per_task = a.get_int("cpus", 8);
    o.mem = a.get("mem");
    o.partition = a.get("partition");
    o.account = a.get("account");
    o.dump_args = a.get("dump-args");
    o.distill_args = a.get("distill-args");
    SlurmScripts s = emit_slurm(plan, o, a.get("emit"));
    for (auto& w : s.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("k = %lld: %lld blocks -> %s/{dump.sbatch, blocks.sbatch (array 0-%lld), stitch.sbatch, submit.sh}\n",
                (long long)s.k, (long long)s.blocks, a.get("emit").c_str(), (long long)(s.blocks - 1));
    std::printf("submit with: %s/submit.sh\n", a.get("emit").c_str());
    return 0;
}

}  // namespace lincat::cli
