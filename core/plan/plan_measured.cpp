#include "plan/plan_measured.h"

#include <filesystem>

#include "store/workspace.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat {

static double mean_flops(const std::vector<MeasuredJob>& jobs, const std::string& kind) {
    double sum = 0;
    int n = 0;
    for (auto& j : jobs)
        if (j.kind == kind && j.achieved_flops > 0) sum += j.achieved_flops, ++n;
    return n ? sum / n : 0.0;
}

static int64_t max_peak(const std::vector<MeasuredJob>& jobs, const std::string& kind, int64_t k) {
    int64_t peak = 0;
    for (auto& j : jobs)
        if (j.kind == kind && j.k == k) peak = std::max(peak, j.peak_rss_bytes);
    return peak;
}

double PlanMeasurements::dump_flops() const {
    return mean_flops(jobs, "dump");
}
double PlanMeasurements::block_flops() const {
    return mean_flops(jobs, "block");
}
int64_t PlanMeasurements::block_peak_rss(int64_t k) const {
    return max_peak(jobs, "block", k);
}
int64_t PlanMeasurements::dump_peak_rss(int64_t k) const {
    return max_peak(jobs, "dump", k);
}

static MeasuredJob job_from(const json& j, const std::string& kind, int64_t run, int64_t k, const std::string& label) {
    MeasuredJob m;
    m.kind = kind, m.run = run, m.k = k;
    m.micro_batch = json_get_or<int64_t>(j, "micro_batch", 0, label);
    m.seq_len = json_get_or<int64_t>(j, "seq_len", 0, label);
    m.peak_rss_bytes = json_get_or<int64_t>(j, "peak_rss_bytes", 0, label);
    m.baseline_rss_bytes = json_get_or<int64_t>(j, "baseline_rss_bytes", 0, label);
    m.tokens_per_second =
        json_get_or<double>(j, kind == "dump" ? "layer_tokens_per_second" : "tokens_per_second", 0, label);
    m.achieved_flops = json_get_or<double>(j, "achieved_flops", 0, label);
    m.device = json_get_or<std::string>(j, "device", "", label);
    return m;
}

PlanMeasurements plan_measurements(const std::string& workspace_dir, const PlanModel& model) {
    if (!std::filesystem::is_directory(workspace_dir))
        fail("plan --workspace: ", workspace_dir, " is not a workspace folder");
    Workspace ws = Workspace::open(workspace_dir);
    const std::string shape = plan_shape_key(model);
    PlanMeasurements out;
    for (const RunRecord& r : ws.runs()) {
        if (r.kind != RunKind::DumpStates && r.kind != RunKind::DistillBlock) continue;
        auto text = ws.run_results(r.id);
        if (!text) continue;
        const std::string label = ws.db_path() + ": run " + std::to_string(r.id) + " results";
        json res = parse_json(*text, label);
        if (!res.is_object()) continue;
        if (r.kind == RunKind::DistillBlock) {
            if (!res.contains("measured")) continue;  // recorded before jobs measured themselves
            const json& m = res["measured"];
            if (json_get_or<std::string>(m, "model_shape", "", label) != shape) continue;
            out.jobs.push_back(job_from(m, "block", r.id, json_get_or<int64_t>(m, "k", 0, label), label));
        } else if (res.contains("jobs") && res["jobs"].is_array()) {
            const int64_t k = json_get_or<int64_t>(res, "k", 0, label);
            for (const json& j : res["jobs"]) {
                if (json_get_or<std::string>(j, "model_shape", "", label) != shape) continue;
                MeasuredJob mj = job_from(j, "dump", r.id, k, label);
                mj.seq_len = json_get_or<int64_t>(res, "seq_len", 0, label);
                out.jobs.push_back(mj);
            }
        }
    }
    return out;
}

PlanInput calibrated(const PlanInput& input, const PlanMeasurements& measured) {
    PlanInput in = input;
    if (measured.dump_flops() > 0) in.dump_flops_measured = measured.dump_flops();
    if (measured.block_flops() > 0) in.block_flops_measured = measured.block_flops();
    return in;
}

}  // namespace lincat
