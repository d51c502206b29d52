// Where it loses: for the selected run, the attention-output MSE by query position (one layer
// or all) with the window's reach marked, and per-head MSE bars of a layer; clicking a head
// asks for its attention maps. The figures come from `lincat position-error` (a child process;
// the CLI caches them per run in the workspace).
#pragma once

#include <QJsonDocument>
#include <QProcess>
#include <QVector>
#include <QWidget>

class QComboBox;
class QLabel;
class QPushButton;
class QSpinBox;

namespace lincat::widgets {
class LayerBarPlot;
class PositionErrorPlot;
}  // namespace lincat::widgets

namespace lincat::studio {

class PositionView : public QWidget {
    Q_OBJECT
  public:
    explicit PositionView(QWidget* parent = nullptr);
    void set_source(const QString& model, const QString& workspace, qint64 run);
    void compute();              // runs position-error for the current run (cached: at once)
    void show_layer(int layer);  // -1: the mean of all layers
    bool busy() const { return process_.state() != QProcess::NotRunning; }
    qint64 run() const { return run_; }
    QString info() const;
    widgets::PositionErrorPlot* curve() const { return curve_; }
    widgets::LayerBarPlot* heads() const { return heads_; }
    QComboBox* layer_choice() const { return layer_; }
    int head_layer() const { return head_layer_; }
    int worst_head() const;  // of head_layer(); 0 when none

  signals:
    void loaded(bool ok);
    void head_clicked(int layer, int head);

  protected:
    void showEvent(QShowEvent* e) override;

  private:
    void finished();
    void redraw();
    QComboBox* layer_;
    QSpinBox* rows_;
    QPushButton* compute_;
    QLabel* info_;
    widgets::PositionErrorPlot* curve_;
    widgets::LayerBarPlot* heads_;
    QProcess process_;
    QString model_, workspace_;
    qint64 run_ = 0, shown_run_ = -1, computing_run_ = 0;
    // The last result: layers, mse[layer][position], head_mse[layer][head], linear_keys.
    QVector<int> layers_, linear_keys_;
    QVector<QVector<double>> mse_, head_mse_;
    QString variant_;
    int window_ = 0;
    int head_layer_ = -1;  // the layer whose heads the bars show
};

}  // namespace lincat::studio
