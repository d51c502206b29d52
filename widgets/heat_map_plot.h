// Layers x steps heat map with a log colour scale (per-layer MSE as training goes); hovering a
// cell shows its layer, step and value; clicking one says which layer and step.
#pragma once

#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;

namespace lincat::widgets {

class HeatMapPlot : public QWidget {
    Q_OBJECT
  public:
    explicit HeatMapPlot(QWidget* parent = nullptr);
    // values[i][l]: the value of layer layers[l] at steps[i] (columns in step order).
    void set_data(const QVector<int>& layers, const QVector<double>& steps, const QVector<QVector<double>>& values,
                  const QString& value_label);
    int columns() const { return steps_.size(); }
    int rows() const { return layers_.size(); }
    // Text the hover shows at a data point (tests read it); empty outside the map.
    QString describe(double step, double layer_row) const;
    QCustomPlot* plot() const { return plot_; }

  signals:
    void cell_clicked(int layer, double step);  // the layer's number (not its row) and the nearest step

  private:
    int row_at(double layer_row) const;  // -1 outside the map
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    QVector<int> layers_;
    QVector<double> steps_;
    QVector<QVector<double>> values_;
    QString label_;
};

}  // namespace lincat::widgets
