#include "eval/evaluate.h"

#include <unistd.h>

#include <cmath>

#include "data/text_rows.h"
#include "eval/compare.h"
#include "eval/multiple_choice.h"
#include "train/base_model.h"
#include "train/distill_config.h"
#include "train/finetune_config.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/events.h"
#include "util/json.h"

namespace lincat {

DataSpec run_data_spec(const Workspace& ws, int64_t run) {
    RunRecord r = ws.run(run);
    std::string label = "run " + std::to_string(run) + " config";
    if (r.kind == RunKind::Distill) return DistillConfig::from_json(r.config_json, label).data;
    if (r.kind == RunKind::Finetune) return FinetuneConfig::from_json(r.config_json, label).data;
    fail("run ", run, " is a '", run_kind_name(r.kind), "' run; it has no training data");
}

std::string run_checkpoint(const Workspace& ws, int64_t run) {
    RunRecord r = ws.run(run);
    auto best = ws.best_checkpoint(run);
    auto ck = best ? best : ws.last_checkpoint(run);
    if (!ck) fail("run ", run, " (", run_kind_name(r.kind), ", ", run_status_name(r.status), ") has no checkpoint yet");
    return ck->path;
}

static json config_json(const EvalConfig& c) {
    return {{"checkpoint", c.checkpoint},
            {"source_run", c.source_run},
            {"text_files", c.text_files},
            {"tasks", c.tasks},
            {"max_rows", c.max_rows},
            {"seq_len", c.data.seq_len},
            {"teacher_sequences", c.data.teacher_sequences}};
}

static json task_json(const McScore& s, const std::string& name) {
    return {{"alias", name},
            {"acc,none", s.acc},
            {"acc_stderr,none", s.acc_stderr},
            {"acc_norm,none", s.acc_norm},
            {"acc_norm_stderr,none", s.acc_norm_stderr}};
}

std::string evaluate_checkpoint(Workspace& ws, const std::string& model_dir, const EvalConfig& c) {
    BaseModel base = load_base_model(model_dir);
    return evaluate_checkpoint(ws, base, c);
}

std::string evaluate_checkpoint(Workspace& ws, BaseModel& base, const EvalConfig& c) {
    const std::string& hash = base.hash;
    // Everything that can be refused is checked before the run is recorded. The student is a
    // copy of the base weights with the checkpoint applied (adapters merged).
    LlamaModel student = copy_model(base.model);
    apply_checkpoint(student, hash, base.dir, c.checkpoint, /*merge_adapters=*/true);
    std::vector<McTask> tasks;
    for (auto& t : c.tasks) tasks.push_back(load_mc_task(t));
    if (c.data.seq_len < 2) fail("eval: seq_len must be at least 2");

    const int64_t run = ws.create_run("default", RunKind::Eval, config_json(c).dump(), hash);
    ws.set_run_pid(run, getpid());
    ws.set_run_status(run, RunStatus::Running);
    emit_event("run", {{"run", run}, {"kind", run_kind_name(RunKind::Eval)}});
    try {
        LlamaModel teacher = base.model;
        const Tokenizer& tok = base.tokenizer;
        torch::Tensor rows;
        if (!c.text_files.empty()) {
            rows = rows_from_text_files(tok, c.text_files, c.data.seq_len, "eval");
        } else {
            rows = load_token_data(c.data, teacher, tok, ws.dir() + "/data", hash).eval;
        }
        if (c.max_rows > 0 && rows.size(0) > c.max_rows) rows = rows.narrow(0, 0, c.max_rows);

        ModelComparison m = compare_models(teacher, student, rows, c.batch);
        json doc = {{"run", run},
                    {"checkpoint", c.checkpoint},
                    {"teacher_ppl", m.teacher_ppl},
                    {"student_ppl", m.student_ppl},
                    {"top1_agreement", m.top1_agreement},
                    {"kl", m.kl},
                    {"layers", m.layers},
                    {"layer_mse", m.layer_mse},
                    {"tokens", m.tokens},
                    {"rows", rows.size(0)},
                    {"config", config_json(c)}};
        if (!tasks.empty()) {
            json results = json::object(), teacher_results = json::object(), samples = json::object();
            for (auto& t : tasks) {
                results[t.name] = task_json(score_mc(student, tok, t), t.name);
                teacher_results[t.name] = task_json(score_mc(teacher, tok, t), t.name);
                samples[t.name] = {{"original", t.items.size()}, {"effective", t.items.size()}};
            }
            doc["results"] = results;
            doc["teacher_results"] = teacher_results;
            doc["n-samples"] = samples;
        }
        ws.record_step(run, "eval", {0, m.tokens, std::log(m.student_ppl), 0, m.layer_mse});
        ws.set_run_results(run, doc.dump());
        ws.set_run_status(run, RunStatus::Completed);
        return doc.dump();
    } catch (const std::exception& e) {
        ws.set_run_status(run, RunStatus::Failed, e.what());
        throw;
    }
}

}  // namespace lincat
