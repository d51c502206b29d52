#include "position_error_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <qcustomplot.h>

#include "plot_export.h"

namespace lincat::widgets {

PositionErrorPlot::PositionErrorPlot(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)) {
    setObjectName("positionErrorPlot");
    plot_->setObjectName("positionError");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    plot_->xAxis->setLabel("query position");
    plot_->yAxis->setLabel("attention-output MSE (student vs softmax)");
    plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
    plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    plot_->yAxis->setNumberFormat("eb");
    plot_->yAxis->setNumberPrecision(0);
    plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    plot_->axisRect()->setRangeZoom(Qt::Horizontal);
    plot_->axisRect()->setRangeDrag(Qt::Horizontal);
    plot_->legend->setVisible(true);
    plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignRight);
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        QString t = describe(plot_->xAxis->pixelToCoord(e->pos().x()));
        if (t.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(e->globalPosition().toPoint(), t, plot_);
    });
    add_export_menu(plot_);
    clear("No figures yet: select a run, then Compute.");
}

void PositionErrorPlot::clear(const QString& text) {
    mse_.clear(), compare_.clear(), linear_keys_.clear(), edge_ = -1;
    plot_->clearGraphs();
    plot_->clearItems();
    auto* t = new QCPItemText(plot_);
    t->position->setType(QCPItemPosition::ptAxisRectRatio);
    t->position->setCoords(0.5, 0.5);
    t->setText(text);
    t->setColor(QColor(90, 90, 90));
    plot_->legend->setVisible(false);
    plot_->replot();
}

void PositionErrorPlot::set_curve(const QVector<double>& mse, const QVector<int>& linear_keys, const QString& name,
                                  const QVector<double>& compare, const QString& compare_name) {
    mse_ = mse, linear_keys_ = linear_keys, compare_ = compare, name_ = name, compare_name_ = compare_name;
    edge_ = -1;
    for (int t = 0; t < linear_keys.size(); ++t)
        if (linear_keys[t] > 0) {
            edge_ = t;
            break;
        }
    plot_->clearGraphs();
    plot_->clearItems();
    // Zeros (inside the window the two can agree to the last bit) sit at the floor of the axis.
    double lo = INFINITY, hi = 0;
    for (const auto* c : {&mse, &compare})
        for (double v : *c)
            if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(hi > 0)) lo = 1e-12, hi = 1;
    const double floor = lo / 4;
    auto add = [&](const QVector<double>& v, const QString& n, const QColor& c) {
        QVector<double> x(v.size()), y(v.size());
        for (int t = 0; t < v.size(); ++t) x[t] = t, y[t] = v[t] > 0 ? v[t] : floor;
        auto* g = plot_->addGraph();
        g->setData(x, y, true);
        g->setName(n);
        g->setPen(QPen(c, 1.6));
    };
    add(mse, name, QColor(178, 24, 43));
    if (!compare.isEmpty()) add(compare, compare_name, QColor(33, 102, 172));
    const double last = std::max<double>(1, mse.size() - 1);
    // The window's reach: shaded up to the edge, a line where the linear part starts.
    const double end = edge_ < 0 ? last : edge_ - 0.5;
    auto* band = new QCPItemRect(plot_);
    band->topLeft->setType(QCPItemPosition::ptPlotCoords);
    band->bottomRight->setType(QCPItemPosition::ptPlotCoords);
    band->topLeft->setTypeY(QCPItemPosition::ptAxisRectRatio);
    band->bottomRight->setTypeY(QCPItemPosition::ptAxisRectRatio);
    band->topLeft->setCoords(-0.5, 0);
    band->bottomRight->setCoords(end, 1);
    band->setPen(Qt::NoPen);
    band->setBrush(QColor(90, 170, 90, 40));
    band->setLayer("background");
    auto* label = new QCPItemText(plot_);
    label->position->setTypeX(QCPItemPosition::ptPlotCoords);
    label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    label->setColor(QColor(40, 110, 40));
    if (edge_ >= 0) {
        auto* line = new QCPItemStraightLine(plot_);
        line->point1->setTypeY(QCPItemPosition::ptAxisRectRatio);
        line->point2->setTypeY(QCPItemPosition::ptAxisRectRatio);
        line->point1->setCoords(edge_ - 0.5, 0);
        line->point2->setCoords(edge_ - 0.5, 1);
        line->setPen(QPen(QColor(40, 110, 40), 1.5, Qt::DashLine));
        label->position->setCoords(edge_, 0.02);
        label->setText(QString("linear part from position %1").arg(edge_));
    } else {
        label->position->setCoords(0, 0.02);
        label->setText("the window covers every position: the hybrid is exact softmax here");
    }
    plot_->legend->setVisible(true);
    plot_->xAxis->setRange(-0.5, last + 0.5);
    plot_->yAxis->setRange(floor / 2, hi * 2);
    plot_->replot();
}

double PositionErrorPlot::mean_inside() const {
    double s = 0;
    int n = 0;
    for (int t = 0; t < mse_.size() && t < linear_keys_.size(); ++t)
        if (linear_keys_[t] == 0) s += mse_[t], ++n;
    return n ? s / n : 0;
}

double PositionErrorPlot::mean_beyond() const {
    double s = 0;
    int n = 0;
    for (int t = 0; t < mse_.size() && t < linear_keys_.size(); ++t)
        if (linear_keys_[t] > 0) s += mse_[t], ++n;
    return n ? s / n : 0;
}

QString PositionErrorPlot::describe(double position) const {
    const int t = int(std::lround(position));
    if (t < 0 || t >= mse_.size()) return {};
    QString text = QString("position %1: %2 %3").arg(t).arg(mse_[t], 0, 'g', 4).arg(name_);
    if (t < compare_.size()) text += QString("\n%1 %2").arg(compare_[t], 0, 'g', 4).arg(compare_name_);
    text += linear_keys_.value(t) > 0 ? QString("\n%1 keys in the linear part").arg(linear_keys_[t])
                                      : QString("\ninside the window (softmax only)");
    return text;
}

}  // namespace lincat::widgets
