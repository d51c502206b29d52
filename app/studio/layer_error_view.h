// Per-layer error of a run, live: the layers x steps heat map of attention-output MSE (train
// records, log colours), per-layer bars for the latest and the best evaluation, loss and
// learning-rate curves, and a second run to compare against (its evaluation's per-layer bars
// next to this run's, and the difference of their perplexities). A run that records no
// per-layer figures while training (stage 2) shows its evaluation instead of an empty map.
// Clicking a cell of the map asks for that layer's attention maps.
#pragma once

#include <QWidget>

class QComboBox;
class QLabel;

namespace lincat {
class Workspace;
}
namespace lincat::widgets {
class HeatMapPlot;
class LayerBarPlot;
class CurvePlot;
}  // namespace lincat::widgets

namespace lincat::studio {

class LayerErrorView : public QWidget {
    Q_OBJECT
  public:
    explicit LayerErrorView(QWidget* parent = nullptr);
    void set_workspace(Workspace* ws);  // not owned
    void show_run(qint64 run);
    void compare_runs(qint64 run, qint64 other);  // other = 0: no comparison
    void refresh();                               // re-reads the shown run(s) from the database
    widgets::HeatMapPlot* heat_map() const { return heat_; }
    widgets::LayerBarPlot* bars() const { return bars_; }
    widgets::CurvePlot* curves() const { return curves_; }
    QString summary() const;
    bool map_shown() const;  // false when the run has no per-layer training figures

  signals:
    void layer_clicked(int layer);

  private:
    void fill_run_lists();
    Workspace* ws_ = nullptr;
    QComboBox *run_, *compare_;
    QLabel *summary_, *no_map_;
    widgets::HeatMapPlot* heat_;
    widgets::LayerBarPlot* bars_;
    widgets::CurvePlot* curves_;
};

}  // namespace lincat::studio
