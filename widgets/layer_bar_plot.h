// A bar chart of one value per layer (parameter counts now; per-layer MSE later).
#pragma once

#include <QString>
#include <QVector>
#include <QWidget>

class QCustomPlot;

namespace lincat::widgets {

class LayerBarPlot : public QWidget {
    Q_OBJECT
  public:
    explicit LayerBarPlot(QWidget* parent = nullptr);
    void set_values(const QVector<double>& values, const QString& value_label, bool log_scale = false);
    QCustomPlot* plot() const { return plot_; }

  private:
    QCustomPlot* plot_;
};

}  // namespace lincat::widgets
