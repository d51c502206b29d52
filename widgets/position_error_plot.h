// Attention-output MSE against query position (log scale): one curve for a layer or the mean of
// all, and optionally a second run's; the softmax window's reach shaded and the position where
// the linear part takes over marked, so the eye finds where the hybrid starts to lose.
#pragma once

#include <QString>
#include <QVector>
#include <QWidget>

class QCustomPlot;

namespace lincat::widgets {

class PositionErrorPlot : public QWidget {
    Q_OBJECT
  public:
    explicit PositionErrorPlot(QWidget* parent = nullptr);
    // mse[t] per query position; linear_keys[t] = keys the linear part covers at t (0 inside the
    // window). compare: a second curve over the same positions (may be empty).
    void set_curve(const QVector<double>& mse, const QVector<int>& linear_keys, const QString& name,
                   const QVector<double>& compare = {}, const QString& compare_name = {});
    void clear(const QString& text);  // no curve; the text says why
    const QVector<double>& values() const { return mse_; }
    int window_edge() const { return edge_; }  // first position with linear keys; -1 when none
    double mean_inside() const;                // over positions inside the window
    double mean_beyond() const;                // over positions beyond it (0 when none)
    QString describe(double position) const;   // the hover text
    QCustomPlot* plot() const { return plot_; }

  private:
    QCustomPlot* plot_;
    QVector<double> mse_, compare_;
    QVector<int> linear_keys_;
    QString name_, compare_name_;
    int edge_ = -1;
};

}  // namespace lincat::widgets
