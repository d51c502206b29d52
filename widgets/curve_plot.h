// Loss (log scale, left axis) and learning rate (right axis) against the step, for one run and
// optionally a second to compare; hovering shows the nearest point.
#pragma once

#include <QString>
#include <QVector>
#include <QWidget>

class QCustomPlot;

namespace lincat::widgets {

struct Curve {
    QString name;
    QVector<double> steps, loss, lr;
};

class CurvePlot : public QWidget {
    Q_OBJECT
  public:
    explicit CurvePlot(QWidget* parent = nullptr);
    void set_curves(const QVector<Curve>& curves);  // one or two runs
    QCustomPlot* plot() const { return plot_; }
    int curve_count() const { return curves_.size(); }

  private:
    QCustomPlot* plot_;
    QVector<Curve> curves_;
};

}  // namespace lincat::widgets
