// The studio's main window. For now: open a model folder and inspect its shape; the
// linearization views arrive with their issues.
#pragma once

#include <QMainWindow>

class QLabel;

namespace lincat::widgets {
class LayerBarPlot;
}

namespace lincat::studio {

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    explicit MainWindow(QWidget* parent = nullptr);
    // Shows the model in `dir`; returns false (and shows why) when it cannot be read.
    bool open_model(const QString& dir);

  private:
    void choose_model();
    QLabel* summary_;
    widgets::LayerBarPlot* params_plot_;
};

}  // namespace lincat::studio
