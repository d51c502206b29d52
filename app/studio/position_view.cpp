#include "position_view.h"

#include <QComboBox>
#include <algorithm>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScopeGuard>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include "job_runner.h"
#include "layer_bar_plot.h"
#include "position_error_plot.h"
#include "eval/position_error_format.h"

namespace lincat::studio {

PositionView::PositionView(QWidget* parent) : QWidget(parent) {
    setObjectName("positionView");
    layer_ = new QComboBox;
    layer_->setObjectName("positionLayer");
    rows_ = new QSpinBox;
    rows_->setRange(1, 4096);
    rows_->setValue(16);
    rows_->setToolTip("held-out rows to score");
    compute_ = new QPushButton("Compute");
    info_ = new QLabel(
        "Select a stage-1 or stage-2 run in the Session tab: this view shows where its hybrid "
        "attention parts from softmax.");
    info_->setObjectName("positionInfo");
    info_->setWordWrap(true);
    curve_ = new widgets::PositionErrorPlot;
    heads_ = new widgets::LayerBarPlot;
    heads_->setObjectName("headBars");
    heads_->set_axis("head");
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel("layer"));
    top->addWidget(layer_);
    top->addWidget(new QLabel("held-out rows"));
    top->addWidget(rows_);
    top->addWidget(compute_);
    top->addStretch(1);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(curve_);
    split->addWidget(heads_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(info_);
    layout->addWidget(split, 1);
    connect(compute_, &QPushButton::clicked, this, &PositionView::compute);
    connect(layer_, &QComboBox::currentIndexChanged, this, &PositionView::redraw);
    connect(heads_, &widgets::LayerBarPlot::bar_clicked, this, [this](int head) {
        if (head_layer_ >= 0) emit head_clicked(head_layer_, heads_->number(head));
    });
    process_.setProcessChannelMode(QProcess::SeparateChannels);
    connect(&process_, &QProcess::finished, this, &PositionView::finished);
}

void PositionView::set_source(const QString& model, const QString& workspace, qint64 run) {
    model_ = model, workspace_ = workspace, run_ = run;
    if (isVisible() && run_ != shown_run_) compute();
}

void PositionView::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    if (run_ && run_ != shown_run_ && !busy()) compute();
}

QString PositionView::info() const {
    return info_->text();
}

void PositionView::compute() {
    if (busy()) return;
    if (!run_ || workspace_.isEmpty()) {
        info_->setText("Select a stage-1 or stage-2 run (or its evaluation) in the Session tab first.");
        emit loaded(false);
        return;
    }
    shown_run_ = computing_run_ = run_;
    QStringList args = {"position-error", "--json",   "--run",  QString::number(run_),
                        "--workspace",    workspace_, "--rows", QString::number(rows_->value())};
    if (!model_.isEmpty()) args << "--model" << model_;
    info_->setText(QString("Computing the error by position for run %1…").arg(run_));
    compute_->setEnabled(false);
    process_.start(JobRunner::lincat_binary(), args);
}

int PositionView::worst_head() const {
    const int row = layers_.indexOf(head_layer_);
    if (row < 0 || row >= head_mse_.size() || head_mse_[row].isEmpty()) return 0;
    return int(std::max_element(head_mse_[row].begin(), head_mse_[row].end()) - head_mse_[row].begin());
}

void PositionView::show_layer(int layer) {
    const int i = layer_->findData(layer);
    if (i >= 0) layer_->setCurrentIndex(i);
}

void PositionView::finished() {
    compute_->setEnabled(true);
    const qint64 run = computing_run_;
    // The selection moved on while this ran: compute the new run next.
    auto next = qScopeGuard([this] {
        if (isVisible() && run_ && run_ != computing_run_) compute();
    });
    const QByteArray out = process_.readAllStandardOutput();
    if (process_.exitCode() != 0 || process_.exitStatus() != QProcess::NormalExit) {
        const QString err = QString::fromUtf8(process_.readAllStandardError()).trimmed();
        info_->setText(QString("position-error for run %1 failed: %2").arg(run).arg(err.section('\n', -2)));
        curve_->clear("No figures for this run: " + err.section('\n', -1));
        layers_.clear(), linear_keys_.clear(), mse_.clear(), head_mse_.clear();
        head_layer_ = -1;
        heads_->set_values({}, "held-out output MSE", true);
        emit loaded(false);
        return;
    }
    PositionError e;
    try {
        e = position_error_from_json(out.toStdString(), "position-error --json");
    } catch (const std::exception& x) {
        info_->setText(QString::fromUtf8(x.what()));
        emit loaded(false);
        return;
    }
    layers_.clear(), linear_keys_.clear(), mse_.clear(), head_mse_.clear();
    for (int64_t l : e.layers) layers_ << int(l);
    for (int64_t k : e.linear_keys) linear_keys_ << int(k);
    for (auto& m : e.mse) mse_ << QVector<double>(m.begin(), m.end());
    for (auto& m : e.head_mse) head_mse_ << QVector<double>(m.begin(), m.end());
    variant_ = QString::fromStdString(e.variant);
    window_ = int(e.window);
    const int keep = layer_->currentData().isValid() ? layer_->currentData().toInt() : -1;
    {
        QSignalBlocker b(layer_);
        layer_->clear();
        layer_->addItem("all layers (mean)", -1);
        for (int l : layers_) layer_->addItem(QString("layer %1").arg(l), l);
        const int i = layer_->findData(keep);
        layer_->setCurrentIndex(i >= 0 ? i : 0);
    }
    redraw();
    const double inside = e.inside_mse, beyond = e.beyond_mse;
    const int edge = int(e.window_edge);
    info_->setText(edge < 0
                       ? QString("Run %1: the %2 window of %3 covers all %4 positions, so the hybrid is softmax here; "
                                 "nothing to lose.")
                             .arg(run_)
                             .arg(variant_)
                             .arg(window_)
                             .arg(linear_keys_.size())
                       : QString("Run %1, %2 held-out rows: %3 window %4; the linear part takes over at position %5. "
                                 "Mean MSE inside the window %6, beyond it %7 (%8x). Click a head for its maps.")
                             .arg(run_)
                             .arg(e.rows)
                             .arg(variant_)
                             .arg(window_)
                             .arg(edge)
                             .arg(inside, 0, 'g', 3)
                             .arg(beyond, 0, 'g', 3)
                             .arg(inside > 0 ? beyond / inside : 0.0, 0, 'g', 3));
    emit loaded(true);
}

void PositionView::redraw() {
    if (mse_.isEmpty()) return;
    const int layer = layer_->currentData().toInt();
    const int row = layers_.indexOf(layer);
    QVector<double> curve(mse_.front().size(), 0.0);
    if (row >= 0) {
        curve = mse_[row];
    } else {
        for (auto& m : mse_)
            for (int t = 0; t < curve.size() && t < m.size(); ++t) curve[t] += m[t] / double(mse_.size());
    }
    curve_->set_curve(curve, linear_keys_, row >= 0 ? QString("layer %1").arg(layer) : "mean of all layers");
    // Heads: the chosen layer's, or the worst layer's for "all".
    int head_row = row;
    if (head_row < 0) {
        double worst = -1;
        for (int r = 0; r < head_mse_.size(); ++r) {
            double s = 0;
            for (double v : head_mse_[r]) s += v;
            if (s > worst) worst = s, head_row = r;
        }
    }
    if (head_row >= 0 && head_row < head_mse_.size()) {
        QVector<int> numbers;
        for (int h = 0; h < head_mse_[head_row].size(); ++h) numbers << h;
        head_layer_ = layers_[head_row];
        heads_->set_axis(QString("head of layer %1 (click for its maps)").arg(head_layer_), numbers);
        heads_->set_values(head_mse_[head_row], "held-out output MSE", true);
    }
}

}  // namespace lincat::studio
