#include "curve_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <qcustomplot.h>

#include "plot_export.h"

namespace lincat::widgets {

CurvePlot::CurvePlot(QWidget* parent) : QWidget(parent) {
    plot_ = new QCustomPlot(this);
    plot_->setObjectName("lossCurves");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    plot_->xAxis->setLabel("step");
    plot_->yAxis->setLabel("loss");
    plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
    plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    plot_->yAxis2->setVisible(true);
    plot_->yAxis2->setLabel("learning rate");
    plot_->yAxis2->setScaleType(QCPAxis::stLogarithmic);
    plot_->yAxis2->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    plot_->legend->setVisible(true);
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        double x = plot_->xAxis->pixelToCoord(e->pos().x());
        QString text;
        for (auto& c : curves_) {
            int best = -1;
            for (int i = 0; i < c.steps.size(); ++i)
                if (best < 0 || std::fabs(c.steps[i] - x) < std::fabs(c.steps[best] - x)) best = i;
            if (best >= 0)
                text += QString("%1 step %2: loss %3, lr %4\n")
                            .arg(c.name)
                            .arg(c.steps[best])
                            .arg(c.loss[best], 0, 'g', 5)
                            .arg(c.lr[best], 0, 'g', 3);
        }
        if (!text.isEmpty()) QToolTip::showText(e->globalPosition().toPoint(), text.trimmed(), plot_);
    });
    add_export_menu(plot_);
}

void CurvePlot::set_curves(const QVector<Curve>& curves) {
    curves_ = curves;
    plot_->clearGraphs();
    const QColor colors[] = {QColor(31, 119, 180), QColor(214, 39, 40)};
    for (int i = 0; i < curves.size(); ++i) {
        QColor color = colors[i % 2];
        QCPGraph* loss = plot_->addGraph(plot_->xAxis, plot_->yAxis);
        loss->setName(curves[i].name + " loss");
        loss->setPen(QPen(color, 2));
        loss->setData(curves[i].steps, curves[i].loss, true);
        QCPGraph* lr = plot_->addGraph(plot_->xAxis, plot_->yAxis2);
        lr->setName(curves[i].name + " lr");
        lr->setPen(QPen(color, 1, Qt::DashLine));
        lr->setData(curves[i].steps, curves[i].lr, true);
    }
    plot_->rescaleAxes();
    plot_->replot();
}

}  // namespace lincat::widgets
