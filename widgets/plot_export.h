// Every plot exports PNG, SVG or PDF (by the file's extension), from its context menu or a call.
#pragma once

#include <QString>

class QCustomPlot;

namespace lincat::widgets {

// Writes the plot at its on-screen size; false (and why in *error) when it cannot.
bool export_plot(QCustomPlot* plot, const QString& path, QString* error = nullptr);

// Right-click > "Export plot…" with a file dialog.
void add_export_menu(QCustomPlot* plot);

}  // namespace lincat::widgets
