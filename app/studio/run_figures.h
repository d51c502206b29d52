// A run's held-out figures as the studio shows them: from its newest evaluation
// (store/run_evaluation.h), parsed once.
#pragma once

#include <QString>
#include <QVector>
#include <map>
#include <string>

namespace lincat::studio {

struct RunFigures {
    bool ok = false;
    qint64 eval_run = 0;  // the eval run the figures come from (0: the run's own results)
    double teacher_ppl = 0, student_ppl = 0;
    double top1 = -1, kl = -1;  // -1: not measured (a perplexity-only figure)
    QVector<int> layers;
    QVector<double> layer_mse;
    // Recorded by `lincat ablate` beside the evaluation (empty / -1 otherwise).
    QString variant, stage;
    double trained_fraction = -1, tokens_per_s = -1;
    qint64 state_bytes = -1, state_bytes_per_token = -1;
    bool window_covers_sequence = false;  // the window reaches every query: the row measures no linear part
    double ppl_gap() const { return student_ppl / teacher_ppl - 1; }  // +0.02 = 2% over the teacher
    double mean_layer_mse() const;
    int worst_index() const;  // into layers / layer_mse; -1 when none
    // "ppl 3.190 vs the teacher's 3.131 (+1.88%), top-1 96.17%, KL 0.0202" (what was measured).
    QString text() const;
};

// evaluations: newest_evaluations(ws). Figures of `run`, or ok == false when it has none.
RunFigures run_figures(const std::map<int64_t, std::string>& evaluations, qint64 run);

}  // namespace lincat::studio
