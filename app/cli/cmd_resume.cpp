// lincat resume --run N: continues an unfinished run of any kind from where it stopped, by
// dispatching on the kind the database records (the studio's Resume button runs this).
#include <cstdio>

#include "blocks/block_distill.h"
#include "blocks/state_dump.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/outcomes.h"
#include "model/model_dir.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat::cli {

int cmd_resume(const Argv& argv) {
    Args a("resume",
           with_compute_options({{"model", "model folder or cache name (the run's base model)", false, "default"},
                                 {"workspace", "workspace folder that holds the run"},
                                 {"run", "the run to continue"},
                                 {"json", "print one JSON object with the results on stdout", true}}),
           argv);
    apply_compute_options(a);
    if (!a.has("workspace") || !a.has("run")) fail("give --workspace DIR and --run N\n", a.help());
    Workspace ws = Workspace::open(a.get("workspace"));
    const int64_t id = a.get_int("run", 0);
    const RunRecord r = ws.run(id);
    const char* kind = run_kind_name(r.kind);
    if (r.status == RunStatus::Completed) fail("run ", id, " (", kind, ") is already completed");
    if (!run_kind_resumes(r.kind))
        fail("run ", id, " is an ", kind, " run: an evaluation is one pass, run it again (lincat eval)");
    const std::string model_dir = resolve_model_dir(a.get("model", "default"));
    const bool as_json = a.flag("json");
    std::fprintf(stderr, "lincat resume: run %lld (%s, %s)\n", (long long)id, kind, run_status_name(r.status));
    switch (r.kind) {
        case RunKind::Distill: {
            if (parse_json(r.config_json, "run config").contains("stitched_from"))
                fail("run ", id, " was stitched from block runs; run lincat stitch again");
            DistillOutcome o = distill(ws, model_dir, {}, id, progress_printer("distill"), cancel_flag());
            print_distill_outcome(o, as_json, true);
            return o.status == RunStatus::Completed ? 0 : 1;
        }
        case RunKind::Finetune: {
            FinetuneOutcome o = finetune(ws, model_dir, {}, id, progress_printer("finetune"), cancel_flag());
            print_finetune_outcome(o, as_json);
            return o.status == RunStatus::Completed ? 0 : 1;
        }
        case RunKind::DistillBlock: {  // the dump and the block come from the run's config
            BlockRunInfo info = block_run_info(r.config_json, "run " + std::to_string(id) + " config");
            DistillOutcome o = distill_block(ws, model_dir, info.states_dir, info.block, {}, id,
                                             progress_printer("block " + std::to_string(info.block)), cancel_flag());
            print_distill_outcome(o, as_json, false);
            return o.status == RunStatus::Completed ? 0 : 1;
        }
        case RunKind::DumpStates:
            return dump_states_and_report(ws, model_dir, dump_config_from_run(ws, r), as_json);
        case RunKind::Eval:
            break;
    }
    fail("run ", id, ": kind ", kind, " cannot be resumed");
}

}  // namespace lincat::cli
