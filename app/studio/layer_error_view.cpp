#include "layer_error_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QVBoxLayout>

#include "curve_plot.h"
#include "heat_map_plot.h"
#include "layer_bar_plot.h"
#include "run_figures.h"
#include "store/run_evaluation.h"
#include "store/workspace.h"
#include "util/json.h"

namespace lincat::studio {

LayerErrorView::LayerErrorView(QWidget* parent) : QWidget(parent) {
    setObjectName("layerErrorView");
    run_ = new QComboBox;
    run_->setObjectName("layerErrorRun");
    compare_ = new QComboBox;
    compare_->setObjectName("layerErrorCompare");
    summary_ = new QLabel;
    summary_->setObjectName("layerErrorSummary");
    summary_->setWordWrap(true);
    no_map_ = new QLabel;
    no_map_->setObjectName("layerErrorNoMap");
    no_map_->setWordWrap(true);
    no_map_->setAlignment(Qt::AlignCenter);
    no_map_->hide();
    heat_ = new widgets::HeatMapPlot;
    bars_ = new widgets::LayerBarPlot;
    curves_ = new widgets::CurvePlot;
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel("Run"));
    top->addWidget(run_, 1);
    top->addWidget(new QLabel("compare with"));
    top->addWidget(compare_, 1);
    auto* lower = new QSplitter(Qt::Horizontal);
    lower->addWidget(bars_);
    lower->addWidget(curves_);
    auto* upper = new QWidget;
    auto* ul = new QVBoxLayout(upper);
    ul->setContentsMargins(0, 0, 0, 0);
    ul->addWidget(heat_, 1);
    ul->addWidget(no_map_, 1);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(upper);
    split->addWidget(lower);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(summary_);
    layout->addWidget(split, 1);
    connect(run_, &QComboBox::currentIndexChanged, this, &LayerErrorView::refresh);
    connect(compare_, &QComboBox::currentIndexChanged, this, &LayerErrorView::refresh);
    connect(heat_, &widgets::HeatMapPlot::cell_clicked, this, [this](int layer, double) { emit layer_clicked(layer); });
}

QString LayerErrorView::summary() const {
    return summary_->text();
}

bool LayerErrorView::map_shown() const {
    return !heat_->isHidden();
}

void LayerErrorView::compare_runs(qint64 run, qint64 other) {
    fill_run_lists();
    QSignalBlocker b1(run_), b2(compare_);
    if (int i = run_->findData(run); i >= 0) run_->setCurrentIndex(i);
    const int j = compare_->findData(other);
    compare_->setCurrentIndex(j >= 0 ? j : 0);
    refresh();
}

void LayerErrorView::set_workspace(Workspace* ws) {
    ws_ = ws;
    fill_run_lists();
    refresh();
}

void LayerErrorView::fill_run_lists() {
    if (!ws_) return;
    const qint64 keep = run_->currentData().toLongLong(), keep_cmp = compare_->currentData().toLongLong();
    QStringList texts;
    QList<qint64> ids;
    for (auto& r : ws_->runs()) {
        if (r.kind != RunKind::Distill && r.kind != RunKind::DistillBlock && r.kind != RunKind::Finetune) continue;
        texts << QString("run %1: %2 (%3)").arg(r.id).arg(run_kind_name(r.kind), run_status_name(r.status));
        ids << qint64(r.id);
    }
    QSignalBlocker b1(run_), b2(compare_);
    if (run_->count() == texts.size()) {  // same runs: only statuses may have changed
        for (int i = 0; i < texts.size(); ++i) run_->setItemText(i, texts[i]), compare_->setItemText(i + 1, texts[i]);
        return;
    }
    run_->clear();
    compare_->clear();
    compare_->addItem("(none)", qint64(0));
    for (int i = 0; i < texts.size(); ++i) {
        run_->addItem(texts[i], ids[i]);
        compare_->addItem(texts[i], ids[i]);
    }
    int i = run_->findData(keep);
    run_->setCurrentIndex(i >= 0 ? i : run_->count() - 1);
    int j = compare_->findData(keep_cmp);
    compare_->setCurrentIndex(j >= 0 ? j : 0);
}

void LayerErrorView::show_run(qint64 run) {
    fill_run_lists();
    int i = run_->findData(run);
    if (i >= 0) run_->setCurrentIndex(i);
    refresh();
}

void LayerErrorView::refresh() {
    if (!ws_) return;
    fill_run_lists();
    const qint64 run = run_->currentData().toLongLong();
    if (!run) return;
    try {
        RunRecord r = ws_->run(run);
        auto train = ws_->steps(run, "train");
        auto evals = ws_->steps(run, "eval");
        // Layer numbers: the run's linearized layers (all when the config lists none).
        QVector<int> layers;
        json cfg = json::parse(r.config_json, nullptr, false);
        if (cfg.is_object() && cfg.contains("layers") && cfg["layers"].is_array())
            for (auto& l : cfg["layers"]) layers << l.get<int>();
        if (cfg.is_object() && cfg.contains("block_layers") && cfg["block_layers"].is_array()) {
            layers.clear();
            for (int l = cfg["block_layers"][0].get<int>(); l < cfg["block_layers"][1].get<int>(); ++l) layers << l;
        }
        const size_t width = !train.empty()  ? train.back().layer_mse.size()
                             : evals.empty() ? 0
                                             : evals.back().layer_mse.size();
        if (size_t(layers.size()) != width) {
            layers.clear();
            for (size_t l = 0; l < width; ++l) layers << int(l);
        }
        QVector<double> steps;
        QVector<QVector<double>> values;
        for (auto& s : train) {
            steps << double(s.step + 1);
            values << QVector<double>(s.layer_mse.begin(), s.layer_mse.end());
        }
        const bool is_mse = r.kind != RunKind::Finetune;
        heat_->set_data(layers, steps, values, is_mse ? "output MSE" : "per-layer figure");
        const auto evaluations = newest_evaluations(*ws_);
        const RunFigures figures = run_figures(evaluations, run);
        const qint64 other = compare_->currentData().toLongLong();
        const RunFigures other_figures = other && other != run ? run_figures(evaluations, other) : RunFigures{};
        // No per-layer figures while training (stage 2 trains against logits): say so, and show
        // the evaluation's per-layer figures below instead of an empty map.
        const bool has_map = !values.isEmpty() && width > 0;
        heat_->setVisible(has_map);
        no_map_->setVisible(!has_map);
        if (!has_map)
            no_map_->setText(
                figures.ok ? QString("Run %1 (%2) records no per-layer figures while it trains. The bars below are its "
                                     "held-out evaluation%3: %4.")
                                 .arg(run)
                                 .arg(run_kind_name(r.kind))
                                 .arg(figures.eval_run ? QString(" (eval run %1)").arg(figures.eval_run) : QString())
                                 .arg(figures.text())
                           : QString("Run %1 (%2) records no per-layer figures while it trains, and has no evaluation "
                                     "yet: select it in the Session tab and run Eval.")
                                 .arg(run)
                                 .arg(run_kind_name(r.kind)));

        QString text;
        const bool comparing = other && other != run;
        if (comparing && (other_figures.ok || figures.ok)) {
            // Two runs: their evaluations' per-layer MSE side by side, and the ppl difference.
            QVector<QVector<double>> series = {figures.layer_mse, other_figures.layer_mse};
            bars_->set_axis("layer", figures.layers.isEmpty() ? other_figures.layers : figures.layers);
            bars_->set_series(series, {QString("run %1").arg(run), QString("run %1").arg(other)}, "held-out output MSE",
                              true);
            auto gap = [](const RunFigures& f) {
                return f.ok ? QString("%1%2%").arg(f.ppl_gap() >= 0 ? "+" : "").arg(100 * f.ppl_gap(), 0, 'f', 2)
                            : QString("no evaluation");
            };
            text = QString("Run %1: ppl %2 over the teacher; run %3: %4")
                       .arg(run)
                       .arg(gap(figures))
                       .arg(other)
                       .arg(gap(other_figures));
            if (figures.ok && other_figures.ok)
                text += QString("; difference %1 points (run %2 minus run %3).")
                            .arg(100 * (figures.ppl_gap() - other_figures.ppl_gap()), 0, 'f', 2)
                            .arg(run)
                            .arg(other);
        } else if (!evals.empty() && has_map) {
            // Bars: the latest evaluation and the best (lowest loss) one.
            const StepRecord* best = &evals.front();
            for (auto& e : evals)
                if (e.loss < best->loss) best = &e;
            QVector<double> latest(evals.back().layer_mse.begin(), evals.back().layer_mse.end());
            QVector<double> best_v(best->layer_mse.begin(), best->layer_mse.end());
            bars_->set_axis("layer", layers);
            bars_->set_series(
                {latest, best_v},
                {QString("latest (step %1)").arg(evals.back().step), QString("best (step %1)").arg(best->step)},
                is_mse ? "held-out output MSE" : "held-out figure", true);
            text = QString(
                       "Run %1 (%2, %3): %4 train steps recorded; best held-out loss %5 at step %6; "
                       "latest %7 at step %8.")
                       .arg(run)
                       .arg(run_kind_name(r.kind), run_status_name(r.status))
                       .arg(train.size())
                       .arg(best->loss, 0, 'g', 4)
                       .arg(best->step)
                       .arg(evals.back().loss, 0, 'g', 4)
                       .arg(evals.back().step);
        } else if (figures.ok) {
            bars_->set_axis("layer", figures.layers);
            bars_->set_values(figures.layer_mse, "held-out output MSE", true);
            text = QString("Run %1 (%2, %3): evaluated%4.")
                       .arg(run)
                       .arg(run_kind_name(r.kind), run_status_name(r.status))
                       .arg(figures.eval_run ? QString(" by eval run %1").arg(figures.eval_run) : QString());
        } else {
            text = QString("Run %1 (%2): no evaluation yet.").arg(run).arg(run_status_name(r.status));
        }
        if (figures.ok && !text.contains("over the teacher")) text += " Held-out " + figures.text() + ".";
        summary_->setText(text);

        auto curve_of = [&](qint64 id) {
            widgets::Curve c;
            c.name = QString("run %1").arg(id);
            for (auto& s : ws_->steps(id, "train")) c.steps << double(s.step + 1), c.loss << s.loss, c.lr << s.lr;
            return c;
        };
        QVector<widgets::Curve> curves = {curve_of(run)};
        if (other && other != run) curves << curve_of(other);
        curves_->set_curves(curves);
    } catch (const std::exception& e) {
        summary_->setText("Cannot read run: " + QString::fromUtf8(e.what()));
    }
}

}  // namespace lincat::studio
