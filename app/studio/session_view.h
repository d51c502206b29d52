// The session: a model and a workspace; the run tree from the workspace database (runs >
// checkpoints, with status and each run's held-out figures: ppl vs the teacher, top-1, KL,
// mean layer MSE; selecting two runs compares them); the pipeline (stage 1 -> stage 2 -> eval) with each stage's
// settings, Start / Cancel / Resume, and a progress bar with tokens/s and ETA. Jobs are `lincat` processes.
#pragma once

#include <QWidget>
#include <memory>

#include "job_runner.h"

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QDoubleSpinBox;
class QTabWidget;
class QTimer;
class QTreeWidget;
class QTreeWidgetItem;

namespace lincat {
class Workspace;
}
namespace lincat::studio {
class OptionForm;
}

namespace lincat::studio {

class SessionView : public QWidget {
    Q_OBJECT
  public:
    explicit SessionView(QWidget* parent = nullptr);
    ~SessionView() override;

    bool open_workspace(const QString& dir);  // false (and why, in the view) when it cannot
    void set_model(const QString& dir);
    Workspace* workspace() const { return ws_.get(); }
    QString workspace_dir() const { return ws_dir_; }
    QString model_dir() const { return model_dir_; }
    JobRunner* job() { return &job_; }
    QTreeWidget* run_tree() const { return tree_; }
    qint64 selected_run() const;
    // The tree's columns (one place for the view and its tests).
    enum Column { ColRun, ColKind, ColStatus, ColSteps, ColPpl, ColTop1, ColKl, ColMse, ColUpdated, ColMessage };
    QTreeWidgetItem* run_item(qint64 run) const;  // nullptr when the tree does not show it

    // Stage 1 with the form's settings (extra args appended); Resume continues the selected run.
    bool start_stage1(const QStringList& extra = {});
    bool start_stage2();
    bool start_linearize();  // the main job: stage 1 -> stage 2 -> eval with the defaults
    bool start_eval();
    bool resume_selected();
    void cancel_job();
    void refresh();  // re-reads the run tree (also on a 1 s timer)

    QSpinBox* stage1_steps() const;
    QString keep_softmax_hint() const;
    QLineEdit* keep_softmax() const { return keep_softmax_; }
    QPushButton* keep_worst_button() const { return keep_worst_; }

  signals:
    void status_text(const QString& text);
    void runs_changed();
    void run_selected(qint64 run);
    void runs_compared(qint64 run, qint64 other);  // two runs selected (Ctrl+click)

  private:
    bool start(const QString& label, const QStringList& args);
    bool mark_dead_runs();

    std::unique_ptr<Workspace> ws_;
    QString ws_dir_, model_dir_;
    JobRunner job_;
    QLabel *ws_label_, *model_label_, *job_label_;
    QTreeWidget* tree_;
    QProgressBar* progress_;
    QPushButton *start_, *cancel_, *resume_;
    QTabWidget* stages_;
    QLineEdit *keep_softmax_, *data_files_;
    QLabel* keep_hint_;
    QPushButton* keep_worst_;
    void suggest_keep_softmax(qint64 run);  // the worst layers of the run's evaluation, and their decode cost
    std::unique_ptr<OptionForm> stage1_form_, stage2_form_;
    QTimer* timer_;
    QString tree_signature_;
    int64_t data_version_ = -1;
};

}  // namespace lincat::studio
