#include "run_figures.h"

#include "util/json.h"

namespace lincat::studio {

double RunFigures::mean_layer_mse() const {
    double s = 0;
    for (double v : layer_mse) s += v;
    return layer_mse.isEmpty() ? 0 : s / double(layer_mse.size());
}

RunFigures run_figures(const std::map<int64_t, std::string>& evaluations, qint64 run) {
    RunFigures f;
    auto it = evaluations.find(run);
    if (it == evaluations.end()) return f;
    json j = json::parse(it->second, nullptr, false);
    if (!j.is_object() || !j.contains("teacher_ppl") || !j.contains("student_ppl")) return f;
    f.teacher_ppl = j.value("teacher_ppl", 0.0), f.student_ppl = j.value("student_ppl", 0.0);
    if (!(f.teacher_ppl > 0)) return f;
    f.top1 = j.value("top1_agreement", 0.0), f.kl = j.value("kl", 0.0);
    f.eval_run = j.value("run", int64_t(0)) != run ? j.value("run", int64_t(0)) : 0;
    if (j.contains("layers") && j["layers"].is_array())
        for (auto& l : j["layers"]) f.layers << l.get<int>();
    if (j.contains("layer_mse") && j["layer_mse"].is_array())
        for (auto& v : j["layer_mse"]) f.layer_mse << v.get<double>();
    f.ok = true;
    return f;
}

}  // namespace lincat::studio
