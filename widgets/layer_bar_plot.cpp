#include "layer_bar_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
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
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        int layer = int(std::lround(plot_->xAxis->pixelToCoord(e->pos().x())));
        QString text;
        for (int s = 0; s < series_.size(); ++s)
            if (layer >= 0 && layer < series_[s].size())
                text += QString("%1 layer %2: %3\n").arg(names_.value(s)).arg(layer).arg(series_[s][layer], 0, 'g', 4);
        if (!text.isEmpty()) QToolTip::showText(e->globalPosition().toPoint(), text.trimmed(), plot_);
    });
    add_export_menu(plot_);
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
    plot_->yAxis->setLabel(value_label);
    plot_->yAxis->setScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (log_scale)
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
        plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setRange(-0.6, std::max<double>(n, 1) - 0.4);
    plot_->yAxis->rescale();
    plot_->yAxis->setRangeLower(log_scale ? plot_->yAxis->range().lower * 0.5 : 0);
    plot_->yAxis->setRangeUpper(plot_->yAxis->range().upper * (log_scale ? 2 : 1.1));
    plot_->replot();
}

}  // namespace lincat::widgets
