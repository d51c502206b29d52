#include "plot_export.h"

#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>
#include <QSvgGenerator>
#include <qcustomplot.h>

namespace lincat::widgets {

bool export_plot(QCustomPlot* plot, const QString& path, QString* error) {
    const int w = std::max(plot->width(), 320), h = std::max(plot->height(), 240);
    bool ok = false;
    if (path.endsWith(".svg", Qt::CaseInsensitive)) {
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(QSize(w, h));
        svg.setViewBox(QRect(0, 0, w, h));
        svg.setTitle(plot->objectName());
        QCPPainter painter;
        ok = painter.begin(&svg);
        if (ok) {
            plot->toPainter(&painter, w, h);
            ok = painter.end();
        }
    } else if (path.endsWith(".pdf", Qt::CaseInsensitive)) {
        ok = plot->savePdf(path, w, h);
    } else if (path.endsWith(".png", Qt::CaseInsensitive)) {
        ok = plot->savePng(path, w, h);
    } else {
        if (error) *error = "unknown format (use .png, .svg or .pdf): " + path;
        return false;
    }
    if (!ok && error) *error = "cannot write " + path;
    return ok;
}

void add_export_menu(QCustomPlot* plot) {
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot](const QPoint& pos) {
        QMenu menu(plot);
        QAction* act = menu.addAction("Export plot…");
        if (menu.exec(plot->mapToGlobal(pos)) != act) return;
        QString path = QFileDialog::getSaveFileName(plot, "Export plot", plot->objectName() + ".png",
                                                    "PNG image (*.png);;SVG image (*.svg);;PDF (*.pdf)");
        QString error;
        if (!path.isEmpty() && !export_plot(plot, path, &error)) QMessageBox::warning(plot, "Export failed", error);
    });
}

}  // namespace lincat::widgets
