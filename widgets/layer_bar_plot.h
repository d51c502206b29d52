// Bars of one value per layer (or head), one or more series side by side (latest vs best
// evaluation, two runs, ...); hovering shows the value, clicking a bar says which; the legend
// sits above the bars, never on them; right-click exports.
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
    // The axis name and the number shown under each bar (default: "layer" and 0, 1, ...).
    void set_axis(const QString& name, const QVector<int>& numbers = {});
    QCustomPlot* plot() const { return plot_; }
    const QVector<QVector<double>>& series() const { return series_; }
    int number(int index) const { return numbers_.value(index, index); }

  signals:
    void bar_clicked(int index);  // index into the series (numbers() gives its layer or head)

  private:
    QCustomPlot* plot_;
    QVector<QVector<double>> series_;
    QStringList names_;
    QString axis_name_ = "layer";
    QVector<int> numbers_;
};

}  // namespace lincat::widgets
