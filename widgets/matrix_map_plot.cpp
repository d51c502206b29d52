#include "matrix_map_plot.h"

#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <qcustomplot.h>

#include "plot_export.h"

namespace lincat::widgets {

MatrixMapPlot::MatrixMapPlot(const QString& title, bool diverging, QWidget* parent)
    : QWidget(parent), diverging_(diverging) {
    plot_ = new QCustomPlot(this);
    plot_->setObjectName(title.toLower().replace(' ', '_'));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(plot_);
    plot_->plotLayout()->insertRow(0);
    plot_->plotLayout()->addElement(0, 0, new QCPTextElement(plot_, title, QFont("sans", 10, QFont::Bold)));
    map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
    scale_ = new QCPColorScale(plot_);
    plot_->plotLayout()->addElement(1, 1, scale_);
    map_->setColorScale(scale_);
    map_->setInterpolate(false);
    if (diverging) {
        QCPColorGradient g;
        g.setColorStopAt(0, QColor(33, 102, 172));
        g.setColorStopAt(0.5, QColor(247, 247, 247));
        g.setColorStopAt(1, QColor(178, 24, 43));
        map_->setGradient(g);
    } else {
        map_->setGradient(QCPColorGradient::gpThermal);
    }
    outline_ = new QCPCurve(plot_->xAxis, plot_->yAxis);
    outline_->setPen(QPen(QColor(255, 80, 80), 1.5, Qt::DashLine));
    plot_->xAxis->setLabel("key");
    plot_->yAxis->setLabel("query");
    plot_->yAxis->setRangeReversed(true);  // the first token at the top
    plot_->setMouseTracking(true);
    connect(plot_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        QString t = describe(plot_->xAxis->pixelToCoord(e->pos().x()), plot_->yAxis->pixelToCoord(e->pos().y()));
        if (t.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(e->globalPosition().toPoint(), t, plot_);
    });
    add_export_menu(plot_);
}

void MatrixMapPlot::set_matrix(const QVector<QVector<double>>& values, const QStringList& tokens,
                               const QVector<QVector<double>>& region) {
    values_ = values, tokens_ = tokens;
    const int n = int(values.size());
    map_->data()->setSize(std::max(n, 1), std::max(n, 1));
    map_->data()->setRange(QCPRange(0, std::max(n - 1, 1)), QCPRange(0, std::max(n - 1, 1)));
    double lo = 0, hi = 0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n && j < values[i].size(); ++j) {
            map_->data()->setCell(j, i, values[i][j]);
            lo = std::min(lo, values[i][j]), hi = std::max(hi, values[i][j]);
        }
    if (diverging_) {
        double m = std::max(std::fabs(lo), std::fabs(hi));
        map_->setDataRange(QCPRange(-std::max(m, 1e-12), std::max(m, 1e-12)));
    } else {
        map_->setDataRange(QCPRange(0, std::max(hi, 1e-12)));
    }
    // Token labels (every k-th when there are many).
    QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
    const int every = std::max(1, n / 24);
    for (int i = 0; i < n; i += every) ticks->addTick(i, tokens.value(i).replace(QChar(0x2581), ' ').trimmed());
    plot_->xAxis->setTicker(ticks);
    plot_->yAxis->setTicker(ticks);
    plot_->xAxis->setTickLabelRotation(60);
    // Outline: the left edge of the region in each row, then back along the diagonal.
    QVector<double> xs, ys;
    for (int i = 0; i < n && i < region.size(); ++i) {
        int j0 = -1;
        for (int j = 0; j < region[i].size(); ++j)
            if (region[i][j] != 0) {
                j0 = j;
                break;
            }
        if (j0 < 0) continue;
        xs << j0 - 0.5 << j0 - 0.5, ys << i - 0.5 << i + 0.5;
    }
    outline_->setData(xs, ys);
    plot_->xAxis->setRange(-0.5, n - 0.5);
    plot_->yAxis->setRange(-0.5, n - 0.5);
    plot_->replot();
}

QString MatrixMapPlot::describe(double col, double row) const {
    int i = int(std::lround(row)), j = int(std::lround(col));
    if (i < 0 || j < 0 || i >= values_.size() || j >= values_[i].size()) return {};
    return QString("query %1 '%2', key %3 '%4': %5")
        .arg(i)
        .arg(tokens_.value(i))
        .arg(j)
        .arg(tokens_.value(j))
        .arg(values_[i][j], 0, 'g', 4);
}

}  // namespace lincat::widgets
