#include "run_figures.h"

#include "util/json.h"

namespace lincat::studio {

double RunFigures::mean_layer_mse() const {
    double s = 0;
    for (double v : layer_mse) s += v;
    return layer_mse.isEmpty() ? 0 : s / double(layer_mse.size());
}

int RunFigures::worst_index() const {
    int worst = -1;
    for (int i = 0; i < layer_mse.size(); ++i)
        if (worst < 0 || layer_mse[i] > layer_mse[worst]) worst = i;
    return worst;
}

QString RunFigures::text() const {
    QString t = QString("ppl %1 vs the teacher's %2 (%3%4%)")
                    .arg(student_ppl, 0, 'f', 3)
                    .arg(teacher_ppl, 0, 'f', 3)
                    .arg(ppl_gap() >= 0 ? "+" : "")
                    .arg(100 * ppl_gap(), 0, 'f', 2);
    if (top1 >= 0) t += QString(", top-1 %1%").arg(100 * top1, 0, 'f', 2);
    if (kl >= 0) t += QString(", KL %1").arg(kl, 0, 'g', 3);
    return t;
}

RunFigures run_figures(const std::map<int64_t, std::string>& evaluations, qint64 run) {
    RunFigures f;
    auto it = evaluations.find(run);
    if (it == evaluations.end()) return f;
    json j = json::parse(it->second, nullptr, false);
    if (!j.is_object() || !j.contains("teacher_ppl") || !j.contains("student_ppl")) return f;
    f.teacher_ppl = j.value("teacher_ppl", 0.0), f.student_ppl = j.value("student_ppl", 0.0);
    if (!(f.teacher_ppl > 0)) return f;
    f.top1 = j.value("top1_agreement", -1.0), f.kl = j.value("kl", -1.0);
    f.eval_run = j.value("run", int64_t(0)) != run ? j.value("run", int64_t(0)) : 0;
    if (j.contains("layers") && j["layers"].is_array())
        for (auto& l : j["layers"]) f.layers << l.get<int>();
    if (j.contains("layer_mse") && j["layer_mse"].is_array())
        for (auto& v : j["layer_mse"]) f.layer_mse << v.get<double>();
    if (j.contains("ablation") && j["ablation"].is_object()) {
        const json& a = j["ablation"];
        f.variant = QString::fromStdString(a.value("variant", std::string()));
        f.stage = QString::fromStdString(a.value("stage", std::string()));
        f.trained_fraction = a.value("trained_fraction", -1.0);
        f.tokens_per_s = a.value("tokens_per_s", -1.0);
        f.state_bytes = a.value("state_bytes", qint64(-1));
        f.state_bytes_per_token = a.value("state_bytes_per_token", qint64(-1));
        f.window_covers_sequence = a.value("window_covers_sequence", false);
    }
    f.ok = true;
    return f;
}

}  // namespace lincat::studio
