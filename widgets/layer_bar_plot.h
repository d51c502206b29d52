// Bars of one value per layer, one or more series side by side (latest vs best evaluation,
// parameter counts, ...); hovering shows the value; right-click exports.
#pragma once

#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

class QCustomPlot;

namespace lincat::widgets {

class LayerBarPlot : public QWidget {
    Q_OBJECT
  public:
    explicit LayerBarPlot(QWidget* parent = nullptr);
    void set_values(const QVector<double>& values, const QString& value_label, bool log_scale = false);
    void set_series(const QVector<QVector<double>>& series, const QStringList& names, const QString& value_label,
                    bool log_scale = false);
    QCustomPlot* plot() const { return plot_; }
    const QVector<QVector<double>>& series() const { return series_; }

  private:
    QCustomPlot* plot_;
    QVector<QVector<double>> series_;
    QStringList names_;
};

}  // namespace lincat::widgets
