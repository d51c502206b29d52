// The k-block planner as a form and three plots against k (disk for saved states, GPU memory
// per block, wall time), with the user's limits drawn as lines and the recommended k
// highlighted; a table of every k; export of the plan (JSON) and of the Slurm scripts.
#pragma once

#include <QWidget>

#include "plan/plan_measured.h"
#include "plan/planner.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QSpinBox;
class QLabel;
class QTableWidget;
class QCustomPlot;

namespace lincat::widgets {

class PlannerView : public QWidget {
    Q_OBJECT
  public:
    explicit PlannerView(QWidget* parent = nullptr);

    void set_preset(const QString& name);
    void set_tokens(double tokens);
    // The workspace whose dump and block jobs' measured memory and FLOP/s are shown next to the
    // predictions (and, with "calibrate", replace the assumed throughput); empty: none.
    void set_workspace(const QString& dir);
    const PlanMeasurements& measurements() const { return measured_; }
    const Plan& plan() const { return plan_; }
    QTableWidget* table() const { return table_; }
    QString recommendation() const;
    QCustomPlot* disk_plot() const { return disk_plot_; }
    QCustomPlot* gpu_plot() const { return gpu_plot_; }
    QCustomPlot* time_plot() const { return time_plot_; }
    // Writes `lincat plan --json`'s document; false with the reason in *error.
    bool export_plan(const QString& path, QString* error = nullptr) const;

  signals:
    void plan_changed();

  private:
    void recompute();
    void export_plan_dialog();
    void export_slurm_dialog();

    QComboBox* preset_;
    QDoubleSpinBox *tokens_m_, *bytes_, *gpu_gb_, *tflops_, *utilization_, *disk_tb_, *gpu_price_, *disk_price_;
    QCheckBox* calibrate_;
    QString workspace_;
    PlanMeasurements measured_;
    QSpinBox *seq_len_, *gpus_;
    QLabel* summary_;
    QTableWidget* table_;
    QCustomPlot *disk_plot_, *gpu_plot_, *time_plot_;
    Plan plan_;
};

}  // namespace lincat::widgets
