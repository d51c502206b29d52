#include "plan/plan_measured.h"

#include <algorithm>
#include <filesystem>

#include "store/workspace.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat {

static double mean_flops(const std::vector<MeasuredJob>& jobs, const std::string& kind) {
    double sum = 0;
    int n = 0;
    for (auto& j : jobs)
        if (j.kind == kind && j.achieved_flops > 0 && !j.outlier) sum += j.achieved_flops, ++n;
    return n ? sum / n : 0.0;
}

static int64_t max_peak(const std::vector<MeasuredJob>& jobs, const std::string& kind, int64_t k) {
    int64_t peak = 0;
    for (auto& j : jobs)
        if (j.kind == kind && j.k == k) peak = std::max(peak, j.peak_above_start());
    return peak;
}

// Marks the jobs whose rate is more than 3x off the median of their kind.
static void mark_outliers(std::vector<MeasuredJob>& jobs, const std::string& kind) {
    std::vector<double> rates;
    for (auto& j : jobs)
        if (j.kind == kind && j.achieved_flops > 0) rates.push_back(j.achieved_flops);
    if (rates.size() < 3) return;  // two figures cannot say which one is off
    std::sort(rates.begin(), rates.end());
    const size_t n = rates.size();
    const double median = n % 2 ? rates[n / 2] : 0.5 * (rates[n / 2 - 1] + rates[n / 2]);
    for (auto& j : jobs)
        if (j.kind == kind && j.achieved_flops > 0)
            j.outlier = j.achieved_flops < median / 3 || j.achieved_flops > median * 3;
}

double PlanMeasurements::dump_flops() const {
    return mean_flops(jobs, "dump");
}
double PlanMeasurements::block_flops() const {
    return mean_flops(jobs, "block");
}
int64_t PlanMeasurements::block_peak(int64_t k) const {
    return max_peak(jobs, "block", k);
}
int64_t PlanMeasurements::dump_peak(int64_t k) const {
    return max_peak(jobs, "dump", k);
}

double predicted_job_bytes(const MeasuredJob& j, const PlanModel& model) {
    if (j.k < 1 || j.k > model.layers || j.micro_batch < 1 || j.seq_len < 1) return 0;
    PlanInput in;
    in.model = model;
    in.weight_bytes_per_value = 4;  // the CPU computes in fp32 whatever the file's dtype
    in.seq_len = j.seq_len;
    if (j.kind == "dump") {
        in.dump_micro_batch = j.micro_batch;
        return plan_row(in, j.k).dump_gpu_bytes;
    }
    if (j.window < 1 || j.feature_dim < 1) return 0;
    in.micro_batch = j.micro_batch, in.window = j.window, in.feature_dim = j.feature_dim;
    return plan_row(in, j.k).gpu_bytes_per_block;
}

static MeasuredJob job_from(const json& j, const std::string& kind, int64_t run, int64_t k, const std::string& label) {
    MeasuredJob m;
    m.kind = kind, m.run = run, m.k = k;
    m.micro_batch = json_get_or<int64_t>(j, "micro_batch", 0, label);
    m.seq_len = json_get_or<int64_t>(j, "seq_len", 0, label);
    m.peak_rss_bytes = json_get_or<int64_t>(j, "peak_rss_bytes", 0, label);
    m.baseline_rss_bytes = json_get_or<int64_t>(j, "baseline_rss_bytes", 0, label);
    m.peak_tensor_bytes = json_get_or<int64_t>(j, "peak_tensor_bytes", 0, label);
    m.window = json_get_or<int64_t>(j, "window", 0, label);
    m.feature_dim = json_get_or<int64_t>(j, "feature_dim", 0, label);
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
    mark_outliers(out.jobs, "dump");
    mark_outliers(out.jobs, "block");
    return out;
}

PlanInput calibrated(const PlanInput& input, const PlanMeasurements& measured) {
    PlanInput in = input;
    if (measured.dump_flops() > 0) in.dump_flops_measured = measured.dump_flops();
    if (measured.block_flops() > 0) in.block_flops_measured = measured.block_flops();
    return in;
}

}  // namespace lincat
