#include "planner_view.h"

#include <QCheckBox>
#include <algorithm>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "blocks/slurm.h"
#include "plot_export.h"

namespace lincat::widgets {

static QDoubleSpinBox* spin(double lo, double hi, double value, int decimals, const QString& suffix) {
    auto* s = new QDoubleSpinBox;
    s->setRange(lo, hi);
    s->setDecimals(decimals);
    s->setValue(value);
    s->setSuffix(suffix);
    s->setKeyboardTracking(false);
    return s;
}

static QCustomPlot* make_plot(const QString& name, const QString& y_label, bool log_y) {
    auto* p = new QCustomPlot;
    p->setObjectName(name);
    p->xAxis->setLabel("k (layers per block)");
    p->yAxis->setLabel(y_label);
    if (log_y) {
        p->yAxis->setScaleType(QCPAxis::stLogarithmic);
        p->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    }
    p->setMinimumHeight(160);
    add_export_menu(p);
    return p;
}

PlannerView::PlannerView(QWidget* parent) : QWidget(parent) {
    setObjectName("plannerView");
    preset_ = new QComboBox;
    preset_->setObjectName("plannerPreset");
    for (auto& n : plan_preset_names()) preset_->addItem(QString::fromStdString(n));
    tokens_m_ = spin(0.001, 1e7, 50, 3, " M tokens");
    tokens_m_->setObjectName("plannerTokens");
    bytes_ = spin(0.5, 8, 2, 1, " bytes/value");
    seq_len_ = new QSpinBox;
    seq_len_->setRange(16, 1 << 20);
    seq_len_->setValue(1024);
    gpu_gb_ = spin(1, 10000, 80, 0, " GB per GPU");
    gpus_ = new QSpinBox;
    gpus_->setRange(1, 1 << 20);
    gpus_->setValue(8);
    tflops_ = spin(1, 1e5, 989, 0, " TFLOP/s");
    utilization_ = spin(0.01, 1, 0.35, 2, "");
    disk_tb_ = spin(0, 1e6, 0, 1, " TB (0: none)");
    disk_tb_->setObjectName("plannerDisk");
    gpu_price_ = spin(0, 1e4, PlanInput{}.gpu_hour_price, 2, " per GPU-hour");
    gpu_price_->setObjectName("plannerGpuPrice");
    disk_price_ = spin(0, 1e6, PlanInput{}.disk_tb_price, 2, " per TB");
    disk_price_->setObjectName("plannerDiskPrice");
    calibrate_ = new QCheckBox("Times from the workspace's measured jobs");
    calibrate_->setObjectName("plannerCalibrate");
    calibrate_->setEnabled(false);

    auto* form = new QFormLayout;
    form->addRow("Model", preset_);
    form->addRow("Training tokens", tokens_m_);
    form->addRow("Saved states", bytes_);
    form->addRow("Sequence length", seq_len_);
    form->addRow("GPU memory", gpu_gb_);
    form->addRow("GPUs", gpus_);
    form->addRow("GPU bf16 peak", tflops_);
    form->addRow("Utilisation", utilization_);
    form->addRow("Disk limit", disk_tb_);
    form->addRow("GPU price", gpu_price_);
    form->addRow("Disk price", disk_price_);
    form->addRow("", calibrate_);
    auto* export_json = new QPushButton("Export plan (JSON)…");
    auto* export_slurm = new QPushButton("Export Slurm scripts…");
    connect(export_json, &QPushButton::clicked, this, &PlannerView::export_plan_dialog);
    connect(export_slurm, &QPushButton::clicked, this, &PlannerView::export_slurm_dialog);
    summary_ = new QLabel;
    summary_->setObjectName("plannerSummary");
    summary_->setWordWrap(true);
    auto* left = new QVBoxLayout;
    left->addLayout(form);
    left->addWidget(summary_);
    left->addWidget(export_json);
    left->addWidget(export_slurm);
    left->addStretch(1);

    disk_plot_ = make_plot("plannerDiskPlot", "disk for states (TB)", true);
    gpu_plot_ = make_plot("plannerGpuPlot", "GPU memory per block (GB)", true);
    time_plot_ = make_plot("plannerTimePlot", "wall time (hours)", true);
    table_ = new QTableWidget(0, 11);
    table_->setObjectName("plannerTable");
    table_->setHorizontalHeaderLabels({"k", "blocks", "disk", "GPU mem/block", "measured", "dump job mem", "measured",
                                       "dump h", "wall h", "cost", "fits"});
    table_->horizontalHeaderItem(4)->setToolTip(
        "Peak resident memory above its start (runtime and libraries) that a block job of this k recorded in the "
        "workspace");
    table_->horizontalHeaderItem(6)->setToolTip(
        "Peak resident memory above its start (runtime and libraries) that a dump job of this k recorded in the "
        "workspace");
    table_->verticalHeader()->setVisible(false);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

    auto* plots = new QSplitter(Qt::Vertical);
    plots->addWidget(disk_plot_);
    plots->addWidget(gpu_plot_);
    plots->addWidget(time_plot_);
    auto* right = new QSplitter(Qt::Horizontal);
    right->addWidget(plots);
    right->addWidget(table_);
    right->setStretchFactor(0, 3);
    right->setStretchFactor(1, 2);
    auto* layout = new QHBoxLayout(this);
    layout->addLayout(left);
    layout->addWidget(right, 1);

    connect(calibrate_, &QCheckBox::toggled, this, &PlannerView::recompute);
    for (auto* s : {tokens_m_, bytes_, gpu_gb_, tflops_, utilization_, disk_tb_, gpu_price_, disk_price_})
        connect(s, &QDoubleSpinBox::valueChanged, this, &PlannerView::recompute);
    for (auto* s : {seq_len_, gpus_}) connect(s, &QSpinBox::valueChanged, this, &PlannerView::recompute);
    connect(preset_, &QComboBox::currentTextChanged, this, &PlannerView::recompute);
    set_preset("llama-3.1-405b");
    recompute();
}

void PlannerView::set_preset(const QString& name) {
    int i = preset_->findText(name);
    if (i >= 0) preset_->setCurrentIndex(i);
}

void PlannerView::set_workspace(const QString& dir) {
    workspace_ = dir;
    recompute();
}

void PlannerView::set_tokens(double tokens) {
    tokens_m_->setValue(tokens / 1e6);
}

QString PlannerView::recommendation() const {
    return summary_->text();
}

// Draws y(k) as a line with markers, a horizontal limit line, and the recommended k in red.
static void draw(QCustomPlot* p, const Plan& plan, double (*value)(const PlanRow&), double limit) {
    p->clearGraphs();
    p->clearItems();
    QVector<double> ks, ys, rk, ry;
    for (auto& r : plan.rows) {
        ks << double(r.k), ys << value(r);
        if (r.k == plan.recommended_k) rk << double(r.k), ry << value(r);
    }
    QCPGraph* g = p->addGraph();
    g->setData(ks, ys, true);
    g->setPen(QPen(QColor(31, 119, 180), 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    QCPGraph* best = p->addGraph();
    best->setData(rk, ry, true);
    best->setLineStyle(QCPGraph::lsNone);
    best->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(214, 39, 40), 10));
    p->rescaleAxes();
    if (limit > 0) {
        auto* line = new QCPItemStraightLine(p);
        line->point1->setCoords(0, limit);
        line->point2->setCoords(1, limit);
        line->setPen(QPen(QColor(214, 39, 40), 1, Qt::DashLine));
        QCPRange r = p->yAxis->range();
        p->yAxis->setRange(std::min(r.lower, limit / 2), std::max(r.upper, limit * 2));
    }
    if (!rk.isEmpty()) {
        auto* label = new QCPItemText(p);
        label->position->setCoords(rk[0], ry[0]);
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        label->setText(QString(" k = %1").arg(rk[0]));
        label->setColor(QColor(214, 39, 40));
    }
    p->xAxis->setRange(0.5, double(plan.rows.size()) + 0.5);
    p->replot();
}

void PlannerView::recompute() {
    PlanInput in;
    try {
        in.model = plan_preset(preset_->currentText().toStdString());
    } catch (const std::exception& e) {
        summary_->setText(QString::fromUtf8(e.what()));
        return;
    }
    in.tokens = int64_t(tokens_m_->value() * 1e6);
    in.bytes_per_value = bytes_->value();
    in.seq_len = seq_len_->value();
    in.gpu_bytes = gpu_gb_->value() * 1e9;
    in.gpus = gpus_->value();
    in.gpu_flops = tflops_->value() * 1e12;
    in.utilization = utilization_->value();
    in.disk_limit_bytes = disk_tb_->value() * 1e12;
    in.gpu_hour_price = gpu_price_->value();
    in.disk_tb_price = disk_price_->value();
    measured_ = {};
    QString measured_note;
    if (!workspace_.isEmpty()) {
        try {
            measured_ = plan_measurements(workspace_.toStdString(), in.model);
        } catch (const std::exception& e) {
            measured_note = QString::fromUtf8(e.what());
        }
    }
    const bool can_calibrate = measured_.dump_flops() > 0 || measured_.block_flops() > 0;
    calibrate_->setEnabled(can_calibrate);
    if (can_calibrate && calibrate_->isChecked()) in = calibrated(in, measured_);
    try {
        plan_ = make_plan(in);
    } catch (const std::exception& e) {
        summary_->setText(QString::fromUtf8(e.what()));
        return;
    }
    table_->setRowCount(int(plan_.rows.size()));
    for (int i = 0; i < int(plan_.rows.size()); ++i) {
        const PlanRow& r = plan_.rows[size_t(i)];
        auto measured = [](int64_t bytes) {
            return bytes > 0 ? QString::fromStdString(si_bytes(double(bytes))) : QString("-");
        };
        QStringList cells = {QString::number(r.k),
                             QString::number(r.blocks),
                             QString::fromStdString(si_bytes(r.disk_bytes)),
                             QString::fromStdString(si_bytes(r.gpu_bytes_per_block)),
                             measured(measured_.block_peak(r.k)),
                             QString::fromStdString(si_bytes(r.dump_gpu_bytes)),
                             measured(measured_.dump_peak(r.k)),
                             QString::number(r.dump_hours, 'f', 1),
                             QString::number(r.hours_wall, 'f', 1),
                             QString::number(r.cost, 'f', 0),
                             r.fits ? "yes" : (r.fits_gpu ? "no (disk)" : "no (GPU memory)")};
        for (int c = 0; c < cells.size(); ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            if (r.k == plan_.recommended_k) {
                QFont f = item->font();
                f.setBold(true);
                item->setFont(f);
                item->setBackground(QColor(255, 228, 225));
            }
            table_->setItem(i, c, item);
        }
    }
    QString measured_text;
    if (!measured_note.isEmpty())
        measured_text = "<br>Measurements: " + measured_note.toHtmlEscaped();
    else if (!measured_.jobs.empty()) {
        const auto outliers =
            std::count_if(measured_.jobs.begin(), measured_.jobs.end(), [](const MeasuredJob& j) { return j.outlier; });
        measured_text =
            QString("<br>%1 measured job(s) in the workspace%2.%3")
                .arg(measured_.jobs.size())
                .arg(in.block_flops_measured > 0 || in.dump_flops_measured > 0
                         ? QString(": times from %1 GFLOP/s measured")
                               .arg(std::max(in.block_flops_measured, in.dump_flops_measured) / 1e9, 0, 'g', 3)
                         : QString())
                .arg(outliers
                         ? QString(" %1 job(s) over 3x off the median rate are left out of the times.").arg(outliers)
                         : QString());
    }
    const PlanRow* best = plan_.row(plan_.recommended_k);
    summary_->setText(QString("<b>%1</b>: %2 layers, hidden %3.<br>%4%5%6")
                          .arg(QString::fromStdString(in.model.name))
                          .arg(in.model.layers)
                          .arg(in.model.hidden)
                          .arg(QString::fromStdString(plan_.reason))
                          .arg(best ? QString("<br>Cost at k = %1: %2 GPU-hours, %3 in all (GPU %4 + disk %5).")
                                          .arg(best->k)
                                          .arg(best->gpu_hours, 0, 'f', 0)
                                          .arg(best->cost, 0, 'f', 0)
                                          .arg(best->cost_gpu, 0, 'f', 0)
                                          .arg(best->cost_disk, 0, 'f', 0)
                                    : QString())
                          .arg(measured_text));
    draw(
        disk_plot_, plan_, [](const PlanRow& r) { return r.disk_bytes / 1e12; }, in.disk_limit_bytes / 1e12);
    draw(
        gpu_plot_, plan_, [](const PlanRow& r) { return r.gpu_bytes_per_block / 1e9; }, in.gpu_bytes / 1e9);
    draw(
        time_plot_, plan_, [](const PlanRow& r) { return r.hours_wall; }, 0);
    emit plan_changed();
}

bool PlannerView::export_plan(const QString& path, QString* error) const {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
        if (error) *error = "cannot write " + path + ": " + f.errorString();
        return false;
    }
    f.write(QByteArray::fromStdString(plan_to_json(plan_)));
    return f.error() == QFileDevice::NoError;
}

void PlannerView::export_plan_dialog() {
    QString path = QFileDialog::getSaveFileName(this, "Export plan", "plan.json", "JSON (*.json)");
    QString error;
    if (!path.isEmpty() && !export_plan(path, &error)) QMessageBox::warning(this, "Export failed", error);
}

void PlannerView::export_slurm_dialog() {
    QString dir = QFileDialog::getExistingDirectory(this, "Folder for the Slurm scripts");
    if (dir.isEmpty()) return;
    bool ok = false;
    QString model = QInputDialog::getText(this, "Slurm", "Model folder on the cluster:", QLineEdit::Normal, "", &ok);
    if (!ok || model.isEmpty()) return;
    QString ws = QInputDialog::getText(this, "Slurm", "Shared workspace folder:", QLineEdit::Normal, "", &ok);
    if (!ok || ws.isEmpty()) return;
    SlurmOptions o;
    o.lincat = "lincat", o.model_dir = model.toStdString(), o.workspace = ws.toStdString();
    try {
        SlurmScripts s = emit_slurm(plan_, o, dir.toStdString());
        QMessageBox::information(this, "Slurm scripts",
                                 QString("k = %1, %2 blocks: dump.sbatch, blocks.sbatch, stitch.sbatch and submit.sh "
                                         "written to %3")
                                     .arg(s.k)
                                     .arg(s.blocks)
                                     .arg(dir));
    } catch (const std::exception& e) {
        QMessageBox::warning(this, "Slurm scripts", QString::fromUtf8(e.what()));
    }
}

}  // namespace lincat::widgets
