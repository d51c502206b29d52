#include "compare_view.h"

#include <QHeaderView>
#include <algorithm>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include "layer_bar_plot.h"
#include "run_figures.h"
#include "store/run_evaluation.h"
#include "store/workspace.h"
#include "util/json.h"

namespace lincat::studio {

namespace {

// The gate on the linear state a run trained with: its own stage-1 config's, or for a stage-2
// run its stage-1 run's ("none" where the config predates the field).
QString run_gate(Workspace& ws, const RunRecord& r) {
    json cfg = json::parse(r.config_json, nullptr, false);
    if (r.kind == RunKind::Finetune && cfg.is_object() && cfg.contains("stage1_run")) {
        try {
            cfg = json::parse(ws.run(cfg["stage1_run"].get<int64_t>()).config_json, nullptr, false);
        } catch (const std::exception&) {
            return QString();  // its stage-1 run is gone: say nothing rather than guess
        }
    }
    if (!cfg.is_object() || !cfg.contains("gate") || !cfg["gate"].is_string()) return "none";
    return QString::fromStdString(cfg["gate"].get<std::string>());
}

}  // namespace

CompareView::CompareView(QWidget* parent) : QWidget(parent) {
    setObjectName("compareView");
    table_ = new QTableWidget(0, ColGrowth + 1);
    table_->setObjectName("compareTable");
    table_->setHorizontalHeaderLabels({"run", "variant", "gate", "stage", "ppl vs teacher", "top-1", "KL", "mean MSE",
                                       "worst MSE", "trained", "tok/s", "state", "+/token"});
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->verticalHeader()->hide();
    bars_ = new widgets::LayerBarPlot;
    bars_->setObjectName("compareBars");
    info_ = new QLabel(
        "Every evaluated run of the workspace; `lincat ablate` rows also show what trained, how fast, "
        "and the decode state. Select rows (Ctrl+click) to put their per-layer bars side by side.");
    info_->setWordWrap(true);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(table_);
    split->addWidget(bars_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(info_);
    layout->addWidget(split, 1);
    connect(table_, &QTableWidget::itemSelectionChanged, this, &CompareView::show_bars);
}

void CompareView::set_workspace(Workspace* ws) {
    ws_ = ws;
    refresh();
}

void CompareView::refresh() {
    if (!ws_) return;
    try {
        const auto evaluations = newest_evaluations(*ws_);
        QVector<qint64> runs;
        QVector<RunFigures> figures;
        QVector<RunKind> kinds;
        QStringList gates;
        for (auto& r : ws_->runs()) {
            if (r.kind == RunKind::Eval) continue;
            RunFigures f = run_figures(evaluations, r.id);
            if (!f.ok) continue;
            runs << qint64(r.id), figures << f, kinds << r.kind, gates << run_gate(*ws_, r);
        }
        if (runs == runs_ && table_->rowCount() == runs.size()) return;  // nothing new
        runs_ = runs;
        QSignalBlocker block(table_);
        table_->setRowCount(int(runs.size()));
        for (int i = 0; i < runs.size(); ++i) {
            const RunFigures& f = figures[i];
            const int w = f.worst_index();
            auto pct = [](double v) { return v >= 0 ? QString::asprintf("%.2f%%", 100 * v) : QString(); };
            const QStringList cells = {
                QString::number(runs[i]),
                f.variant.isEmpty() ? QString() : f.variant + (f.window_covers_sequence ? " (*)" : ""),
                gates[i],
                f.stage.isEmpty() ? QString(run_kind_name(kinds[i])) : f.stage,
                QString::asprintf("%+.2f%%", 100 * f.ppl_gap()),
                pct(f.top1),
                f.kl >= 0 ? QString::asprintf("%.4f", f.kl) : QString(),
                f.layer_mse.isEmpty() ? QString() : QString::asprintf("%.3g", f.mean_layer_mse()),
                w < 0 ? QString() : QString::asprintf("%.3g (L%d)", f.layer_mse[w], f.layers.value(w, w)),
                f.trained_fraction >= 0 ? QString::asprintf("%.3f%%", 100 * f.trained_fraction) : QString(),
                f.tokens_per_s >= 0 ? QString::asprintf("%.0f", f.tokens_per_s) : QString(),
                f.state_bytes >= 0 ? QString::asprintf("%.2f MB", double(f.state_bytes) / 1e6) : QString(),
                f.state_bytes_per_token >= 0 ? QString("%1 B").arg(f.state_bytes_per_token) : QString()};
            for (int c = 0; c < cells.size(); ++c) {
                auto* item = new QTableWidgetItem(cells[c]);
                if (c >= ColPpl) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
                table_->setItem(i, c, item);
            }
            if (f.window_covers_sequence)
                table_->item(i, ColVariant)
                    ->setToolTip("the window reaches every query at this length: exact softmax, nothing measured");
        }
    } catch (const std::exception& e) {
        info_->setText("Cannot read the workspace: " + QString::fromUtf8(e.what()));
    }
    show_bars();
}

// The selected rows' per-layer MSE (all rows, up to six, when none is selected).
void CompareView::show_bars() {
    if (!ws_) return;
    QList<int> rows;
    for (auto* item : table_->selectedItems())
        if (!rows.contains(item->row())) rows << item->row();
    if (rows.isEmpty())
        for (int i = 0; i < runs_.size() && i < 6; ++i) rows << i;
    std::sort(rows.begin(), rows.end());
    const auto evaluations = newest_evaluations(*ws_);
    // Runs may linearize different layers (keep_softmax): the bars line up by layer number.
    QVector<RunFigures> shown;
    QStringList names;
    QVector<int> layers;
    for (int row : rows) {
        RunFigures f = run_figures(evaluations, runs_.value(row));
        if (!f.ok || f.layer_mse.isEmpty() || f.layers.size() != f.layer_mse.size()) continue;
        names << QString("run %1%2").arg(runs_[row]).arg(f.variant.isEmpty() ? "" : " " + f.variant);
        for (int l : f.layers)
            if (!layers.contains(l)) layers << l;
        shown << f;
    }
    std::sort(layers.begin(), layers.end());
    QVector<QVector<double>> series;
    for (const RunFigures& f : shown) {
        QVector<double> v(layers.size(), 0.0);  // 0: softmax in that run (not drawn on the log axis)
        for (int i = 0; i < f.layers.size(); ++i) v[layers.indexOf(f.layers[i])] = f.layer_mse[i];
        series << v;
    }
    bars_->set_axis("layer", layers);
    bars_->set_series(series, names, "held-out output MSE", true);
}

}  // namespace lincat::studio
