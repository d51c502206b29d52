// Compare runs: every evaluated stage-1 / stage-2 run of the workspace in one table, the
// columns of `lincat ablate` (variant, stage, ppl vs teacher, top-1, KL, mean and worst layer
// MSE, trained share, tokens/s, decode state and its growth per token; what a run did not
// measure stays empty), and the per-layer MSE bars of the selected rows side by side.
#pragma once

#include <QVector>
#include <QWidget>

class QLabel;
class QTableWidget;

namespace lincat {
class Workspace;
}
namespace lincat::widgets {
class LayerBarPlot;
}

namespace lincat::studio {

class CompareView : public QWidget {
    Q_OBJECT
  public:
    explicit CompareView(QWidget* parent = nullptr);
    void set_workspace(Workspace* ws);  // not owned
    void refresh();                     // re-reads the runs' evaluations
    QTableWidget* table() const { return table_; }
    widgets::LayerBarPlot* bars() const { return bars_; }
    enum Column {
        ColRun,
        ColVariant,
        ColGate,
        ColStage,
        ColPpl,
        ColTop1,
        ColKl,
        ColMean,
        ColWorst,
        ColTrained,
        ColSpeed,
        ColState,
        ColGrowth
    };

  private:
    void show_bars();
    Workspace* ws_ = nullptr;
    QTableWidget* table_;
    widgets::LayerBarPlot* bars_;
    QLabel* info_;
    QVector<qint64> runs_;  // the table's rows
};

}  // namespace lincat::studio
