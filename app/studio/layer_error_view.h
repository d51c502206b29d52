// Per-layer error of a run, live: the layers x steps heat map of attention-output MSE (train
// records, log colours), per-layer bars for the latest and the best evaluation, loss and
// learning-rate curves, and a second run to compare against.
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
    void refresh();  // re-reads the shown run(s) from the database
    widgets::HeatMapPlot* heat_map() const { return heat_; }
    widgets::LayerBarPlot* bars() const { return bars_; }
    widgets::CurvePlot* curves() const { return curves_; }

  private:
    void fill_run_lists();
    Workspace* ws_ = nullptr;
    QComboBox *run_, *compare_;
    QLabel* summary_;
    widgets::HeatMapPlot* heat_;
    widgets::LayerBarPlot* bars_;
    widgets::CurvePlot* curves_;
};

}  // namespace lincat::studio
