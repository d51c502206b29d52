#include "cli/outcomes.h"

#include <cstdio>

#include "util/events.h"
#include "util/json.h"

namespace lincat::cli {

bool emit_result(const json& j, bool as_json) {
    emit_event("result", j);
    if (as_json) std::printf("%s\n", j.dump().c_str());
    return as_json;
}

static void print_run_line(int64_t run, RunStatus status, int64_t steps, int64_t tokens) {
    std::printf("run %lld %s: %lld steps, %lld tokens\n", (long long)run, run_status_name(status), (long long)steps,
                (long long)tokens);
}

void print_distill_outcome(const DistillOutcome& o, bool as_json, bool with_ppl) {
    json j = {{"run", o.run},
              {"status", run_status_name(o.status)},
              {"steps", o.steps},
              {"tokens", o.tokens},
              {"layers", o.layers},
              {"softmax_kept", o.softmax_kept},
              {"layer_mse_initial", o.layer_mse_initial},
              {"layer_mse_final", o.layer_mse_final},
              {"checkpoint", o.checkpoint}};
    if (with_ppl) j["teacher_ppl"] = o.teacher_ppl, j["student_ppl"] = o.student_ppl;
    if (emit_result(j, as_json)) return;
    print_run_line(o.run, o.status, o.steps, o.tokens);
    std::printf("%6s %14s %14s %9s\n", "layer", "mse initial", "mse final", "ratio");
    for (size_t i = 0; i < o.layers.size() && i < o.layer_mse_final.size(); ++i)
        std::printf("%6lld %14.6g %14.6g %8.1fx\n", (long long)o.layers[i], o.layer_mse_initial[i],
                    o.layer_mse_final[i], o.layer_mse_initial[i] / o.layer_mse_final[i]);
    if (!o.softmax_kept.empty()) {
        std::string kept;
        for (int64_t l : o.softmax_kept) kept += (kept.empty() ? "" : ",") + std::to_string(l);
        std::printf("handed back to softmax after training: layer %s\n", kept.c_str());
    }
    if (with_ppl && o.status == RunStatus::Completed)
        std::printf("held-out perplexity: teacher %.3f, student %.3f (%+.1f%%)\n", o.teacher_ppl, o.student_ppl,
                    100.0 * (o.student_ppl / o.teacher_ppl - 1));
    if (o.status == RunStatus::Cancelled)
        std::printf("cancelled; continue with: lincat resume --run %lld\n", (long long)o.run);
    else
        std::printf("checkpoint: %s\n", o.checkpoint.c_str());
}

void print_finetune_outcome(const FinetuneOutcome& o, bool as_json) {
    json j = {{"run", o.run},
              {"status", run_status_name(o.status)},
              {"steps", o.steps},
              {"tokens", o.tokens},
              {"teacher_ppl", o.teacher_ppl},
              {"stage1_ppl", o.stage1_ppl},
              {"student_ppl", o.student_ppl},
              {"checkpoint", o.checkpoint}};
    if (emit_result(j, as_json)) return;
    print_run_line(o.run, o.status, o.steps, o.tokens);
    if (o.status == RunStatus::Cancelled) {
        std::printf("cancelled; continue with: lincat resume --run %lld\n", (long long)o.run);
        return;
    }
    std::printf("held-out perplexity: teacher %.3f, stage 1 %.3f (%+.1f%%), stage 2 %.3f (%+.1f%%)\ncheckpoint: %s\n",
                o.teacher_ppl, o.stage1_ppl, 100.0 * (o.stage1_ppl / o.teacher_ppl - 1), o.student_ppl,
                100.0 * (o.student_ppl / o.teacher_ppl - 1), o.checkpoint.c_str());
}

}  // namespace lincat::cli
