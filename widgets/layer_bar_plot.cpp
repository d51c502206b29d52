#include "layer_bar_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "plot_export.h"

namespace lincat::widgets {

LayerBarPlot::LayerBarPlot(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    plot_->xAxis->setLabel("layer");
    plot_->setObjectName("layerBars");
    setObjectName("layerBarPlot");
    // The legend in a row of its own above the axis rect.
    plot_->axisRect()->insetLayout()->take(plot_->legend);
    plot_->axisRect()->insetLayout()->simplify();
    plot_->plotLayout()->insertRow(0);
    plot_->plotLayout()->addElement(0, 0, plot_->legend);
    plot_->plotLayout()->setRowStretchFactor(0, 0.001);
    plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
    plot_->legend->setBorderPen(Qt::NoPen);
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        int i = int(std::lround(plot_->xAxis->pixelToCoord(e->pos().x())));
        QString text;
        for (int s = 0; s < series_.size(); ++s)
            if (i >= 0 && i < series_[s].size())
                text += QString("%1 %2 %3: %4\n")
                            .arg(names_.value(s), axis_name_)
                            .arg(number(i))
                            .arg(series_[s][i], 0, 'g', 4);
        if (!text.isEmpty()) QToolTip::showText(e->globalPosition().toPoint(), text.trimmed(), plot_);
    });
    connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        const int i = int(std::lround(plot_->xAxis->pixelToCoord(e->pos().x())));
        if (e->button() == Qt::LeftButton && plot_->axisRect()->rect().contains(e->pos()) && !series_.isEmpty() &&
            i >= 0 && i < series_.front().size())
            emit bar_clicked(i);
    });
    add_export_menu(plot_);
}

void LayerBarPlot::set_axis(const QString& name, const QVector<int>& numbers) {
    axis_name_ = name, numbers_ = numbers;
    plot_->xAxis->setLabel(name);
}

void LayerBarPlot::set_values(const QVector<double>& values, const QString& value_label, bool log_scale) {
    set_series({values}, {value_label}, value_label, log_scale);
}

void LayerBarPlot::set_series(const QVector<QVector<double>>& series, const QStringList& names,
                              const QString& value_label, bool log_scale) {
    series_ = series, names_ = names;
    plot_->clearPlottables();
    const QColor colors[] = {QColor(70, 130, 180), QColor(230, 140, 40), QColor(90, 170, 90)};
    const double width = 0.8 / std::max<int>(1, int(series.size()));
    int n = 0;
    for (int s = 0; s < series.size(); ++s) {
        auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
        QVector<double> keys(series[s].size());
        for (int i = 0; i < series[s].size(); ++i) keys[i] = i - 0.4 + width * (s + 0.5);
        bars->setData(keys, series[s]);
        bars->setWidth(width);
        bars->setBrush(colors[s % 3]);
        bars->setName(names.value(s));
        n = std::max<int>(n, int(series[s].size()));
    }
    plot_->legend->setVisible(series.size() > 1);
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    for (int i = 0; i < n; i += std::max(1, n / 32)) ticks->addTick(i, QString::number(number(i)));
    plot_->xAxis->setTicker(ticks);
    plot_->yAxis->setLabel(value_label);
    plot_->yAxis->setScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (log_scale)
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setRange(-0.6, std::max<double>(n, 1) - 0.4);
    // The range from the values themselves: a log axis cannot hold the bars' base (0), and zeros
    // (a layer softmax in one run) must not pull the range down.
    double lo = INFINITY, hi = 0;
    for (auto& v : series)
        for (double x : v)
            if (x > 0) lo = std::min(lo, x), hi = std::max(hi, x);
    if (!(hi > 0)) lo = 1e-6, hi = 1;
    if (log_scale)
        plot_->yAxis->setRange(lo * 0.5, hi * 2);
    else
        plot_->yAxis->setRange(0, hi * 1.1);
    plot_->replot();
}

}  // namespace lincat::widgets
