#include "heat_map_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <qcustomplot.h>

#include "plot_export.h"

namespace lincat::widgets {

HeatMapPlot::HeatMapPlot(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setObjectName("heatMap");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
    scale_ = new QCPColorScale(plot_);
    plot_->plotLayout()->addElement(0, 1, scale_);
    map_->setColorScale(scale_);
    map_->setGradient(QCPColorGradient::gpThermal);
    map_->setInterpolate(false);
    scale_->setDataScaleType(QCPAxis::stLogarithmic);
    scale_->axis()->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    scale_->axis()->setNumberFormat("eb");
    scale_->axis()->setNumberPrecision(0);
    auto* margins = new QCPMarginGroup(plot_);
    plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    scale_->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
    plot_->xAxis->setLabel("step");
    plot_->yAxis->setLabel("layer");
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        QString text = describe(plot_->xAxis->pixelToCoord(e->pos().x()), plot_->yAxis->pixelToCoord(e->pos().y()));
        if (text.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(e->globalPosition().toPoint(), text, plot_);
    });
    connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton || !plot_->axisRect()->rect().contains(e->pos())) return;
        const double x = plot_->xAxis->pixelToCoord(e->pos().x());
        const int row = row_at(plot_->yAxis->pixelToCoord(e->pos().y()));
        if (row < 0 || steps_.isEmpty()) return;
        double step = steps_.front();
        for (double s : steps_)
            if (std::fabs(s - x) < std::fabs(step - x)) step = s;
        emit cell_clicked(layers_[row], step);
    });
    add_export_menu(plot_);
}

int HeatMapPlot::row_at(double layer_row) const {
    const int l = int(std::lround(layer_row));
    return l >= 0 && l < layers_.size() ? l : -1;
}

void HeatMapPlot::set_data(const QVector<int>& layers, const QVector<double>& steps,
                           const QVector<QVector<double>>& values, const QString& value_label) {
    layers_ = layers, steps_ = steps, values_ = values, label_ = value_label;
    const int nx = std::max<int>(1, int(steps.size())), ny = std::max<int>(1, int(layers.size()));
    map_->data()->setSize(nx, ny);
    const double x0 = steps.isEmpty() ? 0 : steps.front(), x1 = steps.isEmpty() ? 1 : steps.back();
    map_->data()->setRange(QCPRange(x0, x1 > x0 ? x1 : x0 + 1), QCPRange(0, ny - 1 > 0 ? ny - 1 : 1));
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < steps.size(); ++i)
        for (int l = 0; l < layers.size() && l < values[i].size(); ++l) {
            double v = values[i][l];
            map_->data()->setCell(i, l, v > 0 ? v : NAN);
            if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
        }
    if (hi > 0) map_->setDataRange(QCPRange(lo, hi > lo ? hi : lo * 10));
    scale_->axis()->setLabel(value_label);
    // Layer numbers as tick labels.
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int l = 0; l < layers.size(); ++l) ticker->addTick(l, QString::number(layers[l]));
    plot_->yAxis->setTicker(ticker);
    plot_->xAxis->setRange(x0, x1 > x0 ? x1 : x0 + 1);
    plot_->yAxis->setRange(-0.5, ny - 0.5);
    plot_->replot();
}

QString HeatMapPlot::describe(double step, double layer_row) const {
    if (steps_.isEmpty() || layers_.isEmpty()) return {};
    const int l = row_at(layer_row);
    if (l < 0) return {};
    int best = -1;
    for (int i = 0; i < steps_.size(); ++i)
        if (best < 0 || std::fabs(steps_[i] - step) < std::fabs(steps_[best] - step)) best = i;
    if (best < 0 || l >= values_[best].size()) return {};
    return QString("layer %1, step %2: %3 %4")
        .arg(layers_[l])
        .arg(steps_[best])
        .arg(values_[best][l], 0, 'g', 4)
        .arg(label_);
}

}  // namespace lincat::widgets
