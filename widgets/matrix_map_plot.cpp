#include "matrix_map_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "plot_export.h"

namespace lincat::widgets {

MatrixMapPlot::MatrixMapPlot(const QString& title, bool diverging, QWidget* parent)
    : QWidget(parent), diverging_(diverging) {
    plot_ = new QCustomPlot(this);
    plot_->setObjectName(title.toLower().replace(' ', '_'));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    plot_->plotLayout()->insertRow(0);
    plot_->plotLayout()->addElement(0, 0, new QCPTextElement(plot_, title, QFont("sans", 10, QFont::Bold)));
    map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
    scale_ = new QCPColorScale(plot_);
    plot_->plotLayout()->addElement(1, 1, scale_);
    map_->setColorScale(scale_);
    map_->setInterpolate(false);
    if (diverging) {
        QCPColorGradient g;
        g.setColorStopAt(0, QColor(33, 102, 172));
        g.setColorStopAt(0.5, QColor(247, 247, 247));
        g.setColorStopAt(1, QColor(178, 24, 43));
        map_->setGradient(g);
    } else {
        map_->setGradient(QCPColorGradient::gpThermal);
    }
    outline_ = new QCPCurve(plot_->xAxis, plot_->yAxis);
    outline_->setPen(QPen(QColor(255, 80, 80), 1.5, Qt::DashLine));
    plot_->xAxis->setLabel("key");
    plot_->yAxis->setLabel("query");
    plot_->yAxis->setRangeReversed(true);  // the first token at the top
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] { update_labels(); });
    empty_text_ = new QCPItemText(plot_);
    empty_text_->position->setType(QCPItemPosition::ptAxisRectRatio);
    empty_text_->position->setCoords(0.5, 0.5);
    empty_text_->setColor(QColor(90, 90, 90));
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        QString t = describe(plot_->xAxis->pixelToCoord(e->pos().x()), plot_->yAxis->pixelToCoord(e->pos().y()));
        if (t.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(e->globalPosition().toPoint(), t, plot_);
    });
    add_export_menu(plot_);
    set_empty("No map yet: pick a layer and head, then Show (or Sample from data).");
}

void MatrixMapPlot::set_empty(const QString& text) {
    values_.clear(), tokens_.clear();
    map_->data()->clear();
    map_->setVisible(false);
    scale_->setVisible(false);
    outline_->data()->clear();
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setTickLabels(false), plot_->yAxis->setTickLabels(false);
    empty_text_->setText(text);
    empty_text_->setVisible(true);
    plot_->replot();
}

// Token labels for the keys and queries in view, thinned to about 24 per axis.
void MatrixMapPlot::update_labels() {
    const int n = int(values_.size());
    if (n == 0) return;
    const QCPRange r = plot_->xAxis->range();
    const int lo = std::clamp(int(std::ceil(r.lower)), 0, n - 1), hi = std::clamp(int(std::floor(r.upper)), 0, n - 1);
    const int every = std::max(1, (hi - lo + 1) / 24);
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int i = 0; i < n; i += every) ticks->addTick(i, tokens_.value(i).replace(QChar(0x2581), ' ').trimmed());
    plot_->xAxis->setTicker(ticks);
    plot_->yAxis->setTicker(ticks);
}

int MatrixMapPlot::visible_labels() const {
    const QCPRange r = plot_->xAxis->range();
    auto ticks = plot_->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
    int n = 0;
    if (ticks)
        for (double k : ticks->ticks().keys()) n += r.contains(k);
    return n;
}

void MatrixMapPlot::set_matrix(const QVector<QVector<double>>& values, const QStringList& tokens,
                               const QVector<QVector<double>>& region) {
    values_ = values, tokens_ = tokens;
    const int n = int(values.size());
    if (n == 0) return set_empty("The prompt has no tokens.");
    empty_text_->setVisible(false);
    map_->setVisible(true);
    scale_->setVisible(true);
    plot_->xAxis->setTickLabels(true), plot_->yAxis->setTickLabels(true);
    map_->data()->setSize(std::max(n, 1), std::max(n, 1));
    map_->data()->setRange(QCPRange(0, std::max(n - 1, 1)), QCPRange(0, std::max(n - 1, 1)));
    double lo = 0, hi = 0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n && j < values[i].size(); ++j) {
            map_->data()->setCell(j, i, values[i][j]);
            lo = std::min(lo, values[i][j]), hi = std::max(hi, values[i][j]);
        }
    if (diverging_) {
        double m = std::max(std::fabs(lo), std::fabs(hi));
        map_->setDataRange(QCPRange(-std::max(m, 1e-12), std::max(m, 1e-12)));
    } else {
        map_->setDataRange(QCPRange(0, std::max(hi, 1e-12)));
    }
    plot_->xAxis->setTickLabelRotation(60);
    // Outline: the left edge of the region in each row, then back along the diagonal.
    QVector<double> xs, ys;
    for (int i = 0; i < n && i < region.size(); ++i) {
        int j0 = -1;
        for (int j = 0; j < region[i].size(); ++j)
            if (region[i][j] != 0) {
                j0 = j;
                break;
            }
        if (j0 < 0) continue;
        xs << j0 - 0.5 << j0 - 0.5, ys << i - 0.5 << i + 0.5;
    }
    outline_->setData(xs, ys);
    plot_->xAxis->setRange(-0.5, n - 0.5);
    plot_->yAxis->setRange(-0.5, n - 0.5);
    update_labels();
    plot_->replot();
}

QString MatrixMapPlot::describe(double col, double row) const {
    int i = int(std::lround(row)), j = int(std::lround(col));
    if (i < 0 || j < 0 || i >= values_.size() || j >= values_[i].size()) return {};
    return QString("query %1 '%2', key %3 '%4': %5")
        .arg(i)
        .arg(tokens_.value(i))
        .arg(j)
        .arg(tokens_.value(j))
        .arg(values_[i][j], 0, 'g', 4);
}

}  // namespace lincat::widgets
