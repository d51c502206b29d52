#include "layer_bar_plot.h"

#include <QVBoxLayout>
#include <qcustomplot.h>

namespace lincat::widgets {

LayerBarPlot::LayerBarPlot(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    plot_->xAxis->setLabel("layer");
    setObjectName("layerBarPlot");
}

void LayerBarPlot::set_values(const QVector<double>& values, const QString& value_label, bool log_scale) {
    plot_->clearPlottables();
    auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
    QVector<double> keys(values.size());
    for (int i = 0; i < values.size(); ++i) keys[i] = i;
    bars->setData(keys, values);
    bars->setWidth(0.7);
    bars->setBrush(QColor(70, 130, 180));
    plot_->yAxis->setLabel(value_label);
    plot_->yAxis->setScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    plot_->xAxis->setRange(-0.6, std::max<double>(values.size(), 1) - 0.4);
    plot_->yAxis->rescale();
    plot_->yAxis->setRangeLower(log_scale ? plot_->yAxis->range().lower * 0.5 : 0);
    plot_->yAxis->setRangeUpper(plot_->yAxis->range().upper * 1.1);
    plot_->replot();
}

}  // namespace lincat::widgets
