#include "store/run_evaluation.h"

#include "util/json.h"

namespace lincat {

std::map<int64_t, std::string> newest_evaluations(const Workspace& ws) {
    std::map<std::string, int64_t> run_of_checkpoint;
    const auto runs = ws.runs();  // oldest first: a later evaluation replaces an earlier one
    for (auto& r : runs)
        for (auto& c : ws.checkpoints(r.id)) run_of_checkpoint[c.path] = r.id;
    std::map<int64_t, std::string> found;
    for (auto& r : runs) {
        if (r.status != RunStatus::Completed) continue;
        auto res = ws.run_results(r.id);
        if (!res) continue;
        if (r.kind != RunKind::Eval) {
            // Own figures (a stitch evaluates itself), unless an evaluation comes later; block and
            // dump runs' results are measurements, not evaluations.
            json own = json::parse(*res, nullptr, false);
            if (own.is_object() && own.contains("teacher_ppl")) found.emplace(r.id, *res);
            continue;
        }
        found[r.id] = *res;
        json c = json::parse(r.config_json, nullptr, false);
        if (!c.is_object()) continue;
        if (const int64_t source = c.value("source_run", int64_t(0)); source > 0) found[source] = *res;
        auto by_path = run_of_checkpoint.find(c.value("checkpoint", std::string()));
        if (by_path != run_of_checkpoint.end()) found[by_path->second] = *res;
    }
    return found;
}

std::optional<std::string> newest_evaluation(const Workspace& ws, int64_t run) {
    auto all = newest_evaluations(ws);
    auto it = all.find(run);
    if (it == all.end()) return std::nullopt;
    return it->second;
}

}  // namespace lincat
