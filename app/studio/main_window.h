// The studio's main window: Session (model, workspace, runs, pipeline), Layer error (live
// per-layer MSE), Where it loses (error by position and head), Attention maps, Generate and
// Compare runs (the ablation table of every evaluated run), Planner (k-block planner) tabs; settings and layout persist
// (QSettings). The views lead into each other: a heat-map cell or a head bar opens that layer's attention maps.
#pragma once

#include <QMainWindow>

class QLabel;
class QTabWidget;

namespace lincat::widgets {
class LayerBarPlot;
class PlannerView;
}  // namespace lincat::widgets

namespace lincat::studio {

class SessionView;
class LayerErrorView;
class AttentionView;
class GenerateView;
class PositionView;
class CompareView;

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    explicit MainWindow(QWidget* parent = nullptr);
    // Shows the model in `dir`; returns false (and shows why) when it cannot be read.
    bool open_model(const QString& dir);
    bool open_workspace(const QString& dir);
    // Writes one PNG per main view into dir (session.png, layer_error.png, position_error.png,
    // compare.png, attention.png, generate.png, planner.png). With a workspace, it first selects its newest
    // stage-1 run and fills the views that compute (position error, the attention maps of a
    // data sample, generation, decode speed), waiting up to `wait_ms` for each.
    bool save_screenshots(const QString& dir, int wait_ms = 300000);

    SessionView* session() const { return session_; }
    LayerErrorView* layer_error() const { return layer_error_; }
    widgets::PlannerView* planner() const { return planner_; }
    AttentionView* attention() const { return attention_; }
    GenerateView* generation() const { return generate_; }
    PositionView* position() const { return position_; }
    CompareView* compare() const { return compare_; }
    QTabWidget* tabs() const { return tabs_; }

  protected:
    void closeEvent(QCloseEvent* e) override;

  private:
    void choose_model();
    void choose_workspace();
    void update_recent_menu();
    void export_current_plot();

    QTabWidget* tabs_;
    QLabel* summary_;
    SessionView* session_;
    LayerErrorView* layer_error_;
    widgets::PlannerView* planner_;
    AttentionView* attention_;
    GenerateView* generate_;
    PositionView* position_;
    CompareView* compare_;
    QMenu* recent_menu_;
};

}  // namespace lincat::studio
