// A square matrix as a heat map with token labels on both axes (attention weights: rows are
// queries, columns keys), an optional outline of a region (the softmax window), a diverging
// colour scale for differences; hovering shows query, key and value. The wheel zooms and a drag
// pans (token labels thin out to what fits); before any data it says what to do instead.
#pragma once

#include <QStringList>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPCurve;
class QCPItemText;

namespace lincat::widgets {

class MatrixMapPlot : public QWidget {
    Q_OBJECT
  public:
    explicit MatrixMapPlot(const QString& title, bool diverging, QWidget* parent = nullptr);
    // values[i][j]; region[i][j] != 0 marks the outlined cells (may be empty).
    void set_matrix(const QVector<QVector<double>>& values, const QStringList& tokens,
                    const QVector<QVector<double>>& region = {});
    int size() const { return values_.size(); }
    double value(int row, int col) const { return values_.value(row).value(col); }
    QString describe(double col, double row) const;
    // No matrix: the map is cleared and `text` says what to do.
    void set_empty(const QString& text);
    bool empty() const { return values_.isEmpty(); }
    int visible_labels() const;  // token labels on the key axis in the current view
    QCustomPlot* plot() const { return plot_; }

  private:
    QCustomPlot* plot_;
    QCPColorMap* map_;
    QCPColorScale* scale_;
    QCPCurve* outline_;
    QCPItemText* empty_text_;
    void update_labels();
    bool diverging_;
    QVector<QVector<double>> values_;
    QStringList tokens_;
};

}  // namespace lincat::widgets
