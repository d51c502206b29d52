#include "session_view.h"

#include <QDateTime>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QTimer>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <csignal>
#include <map>
#include <cerrno>

#include "store/workspace.h"

namespace lincat::studio {

static QSpinBox* int_spin(int lo, int hi, int value) {
    auto* s = new QSpinBox;
    s->setRange(lo, hi);
    s->setValue(value);
    return s;
}

static QDoubleSpinBox* lr_spin(double value) {
    auto* s = new QDoubleSpinBox;
    s->setDecimals(5);
    s->setRange(1e-6, 1);
    s->setSingleStep(1e-4);
    s->setValue(value);
    return s;
}

SessionView::SessionView(QWidget* parent) : QWidget(parent) {
    setObjectName("sessionView");
    ws_label_ = new QLabel("No workspace. File > Open workspace… (Ctrl+Shift+O)");
    ws_label_->setObjectName("workspaceLabel");
    model_label_ = new QLabel("Model: default");
    tree_ = new QTreeWidget;
    tree_->setObjectName("runTree");
    tree_->setHeaderLabels({"run", "kind", "status", "steps", "updated", "message"});
    tree_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    connect(tree_, &QTreeWidget::currentItemChanged, this, [this] {
        if (qint64 r = selected_run()) emit run_selected(r);
    });

    // Stage settings: the defaults are DESIGN.md's (stage 1: tk window 64, lr 1e-2, 200 steps; stage 2: r 8, lr 3e-4).
    stages_ = new QTabWidget;
    stages_->setObjectName("stageTabs");
    auto* s1 = new QWidget;
    auto* f1 = new QFormLayout(s1);
    f1->addRow("Steps", s1_steps_ = int_spin(1, 1000000, 200));
    f1->addRow("Learning rate", s1_lr_ = lr_spin(1e-2));
    f1->addRow("Window", s1_window_ = int_spin(1, 4096, 64));
    f1->addRow("Sequence length", s1_seq_len_ = int_spin(8, 1 << 20, 256));
    f1->addRow("Teacher samples", s1_samples_ = int_spin(2, 1 << 20, 256));
    f1->addRow("Batch", s1_batch_ = int_spin(1, 4096, 4));
    f1->addRow("Evaluate every", s1_eval_every_ = int_spin(1, 100000, 25));
    s1_steps_->setObjectName("stage1Steps");
    stages_->addTab(s1, "Stage 1: attention transfer");
    auto* s2 = new QWidget;
    auto* f2 = new QFormLayout(s2);
    f2->addRow("Steps", s2_steps_ = int_spin(1, 1000000, 100));
    f2->addRow("Learning rate", s2_lr_ = lr_spin(3e-4));
    f2->addRow("LoRA rank", s2_rank_ = int_spin(1, 1024, 8));
    f2->addRow(new QLabel("Starts from the selected stage-1 run."));
    stages_->addTab(s2, "Stage 2: LoRA");
    auto* s3 = new QWidget;
    auto* f3 = new QVBoxLayout(s3);
    f3->addWidget(new QLabel("Teacher vs the selected run: perplexity, top-1, KL, per-layer MSE."));
    f3->addStretch(1);
    stages_->addTab(s3, "Eval");

    start_ = new QPushButton("Start");
    cancel_ = new QPushButton("Cancel");
    resume_ = new QPushButton("Resume selected run");
    start_->setObjectName("startButton");
    cancel_->setObjectName("cancelButton");
    resume_->setObjectName("resumeButton");
    cancel_->setEnabled(false);
    connect(start_, &QPushButton::clicked, this, [this] {
        int i = stages_->currentIndex();
        i == 0 ? start_stage1() : i == 1 ? start_stage2() : start_eval();
    });
    connect(cancel_, &QPushButton::clicked, this, &SessionView::cancel_job);
    connect(resume_, &QPushButton::clicked, this, &SessionView::resume_selected);
    progress_ = new QProgressBar;
    progress_->setObjectName("jobProgress");
    progress_->setFormat("%v / %m steps");
    job_label_ = new QLabel("No job running.");
    job_label_->setObjectName("jobLabel");

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(start_);
    buttons->addWidget(cancel_);
    buttons->addWidget(resume_);
    auto* pipeline = new QGroupBox("Pipeline");
    auto* pl = new QVBoxLayout(pipeline);
    pl->addWidget(stages_);
    pl->addLayout(buttons);
    pl->addWidget(progress_);
    pl->addWidget(job_label_);
    auto* runs = new QGroupBox("Runs");
    auto* rl = new QVBoxLayout(runs);
    rl->addWidget(tree_);
    auto* body = new QHBoxLayout;
    body->addWidget(pipeline, 2);
    body->addWidget(runs, 3);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(ws_label_);
    layout->addWidget(model_label_);
    layout->addLayout(body, 1);

    connect(&job_, &JobRunner::progress, this, [this](const JobProgress& p) {
        progress_->setMaximum(int(p.steps));
        progress_->setValue(int(p.step));
        QString text = QString("%1: step %2/%3, %4 tok/s, ETA %5")
                           .arg(job_.label())
                           .arg(p.step)
                           .arg(p.steps)
                           .arg(p.tokens_per_second, 0, 'f', 0)
                           .arg(p.eta);
        job_label_->setText(text);
        emit status_text(text);
    });
    connect(&job_, &JobRunner::finished, this, [this](int code, bool crashed, const QString& tail) {
        QString text = crashed     ? QString("%1 stopped (killed or crashed)").arg(job_.label())
                       : code == 0 ? QString("%1 finished").arg(job_.label())
                                   : QString("%1 ended (exit %2)").arg(job_.label()).arg(code);
        job_label_->setText(text + "\n" + tail);
        start_->setEnabled(true);
        resume_->setEnabled(true);
        cancel_->setEnabled(false);
        emit status_text(text);
        refresh();
    });
    timer_ = new QTimer(this);
    connect(timer_, &QTimer::timeout, this, &SessionView::refresh);
    timer_->start(1000);
}

SessionView::~SessionView() = default;

bool SessionView::open_workspace(const QString& dir) {
    try {
        ws_ = std::make_unique<Workspace>(Workspace::open(dir.toStdString()));
        ws_dir_ = dir;
        ws_label_->setText("Workspace: <b>" + dir + "</b>");
        refresh();
        return true;
    } catch (const std::exception& e) {
        ws_.reset();
        ws_label_->setText("Cannot open workspace: " + QString::fromUtf8(e.what()));
        return false;
    }
}

void SessionView::set_model(const QString& dir) {
    model_dir_ = dir;
    model_label_->setText("Model: " + dir);
}

// The run of the current item (a checkpoint selects its run; a session none).
qint64 SessionView::selected_run() const {
    QTreeWidgetItem* item = tree_->currentItem();
    while (item && item->data(0, Qt::UserRole).toLongLong() == 0 && item->parent()) item = item->parent();
    return item ? item->data(0, Qt::UserRole).toLongLong() : 0;
}

QTreeWidgetItem* SessionView::run_item(qint64 run) const {
    for (int s = 0; s < tree_->topLevelItemCount(); ++s)
        for (int i = 0; i < tree_->topLevelItem(s)->childCount(); ++i)
            if (tree_->topLevelItem(s)->child(i)->data(0, Qt::UserRole).toLongLong() == run)
                return tree_->topLevelItem(s)->child(i);
    return nullptr;
}

// A run still marked running whose process (one this studio started) is gone was killed or
// crashed: say so in the database (its records stay), so it shows as failed and can be resumed.
// Runs of other processes are left alone: their pid may live on another machine (Slurm).
void SessionView::mark_dead_runs() {
    for (auto& r : ws_->runs()) {
        if (r.status != "running" || !job_.started_pids().contains(r.pid)) continue;
        if (job_.running() && r.pid == job_.pid()) continue;
        if (::kill(pid_t(r.pid), 0) == 0 || errno == EPERM) continue;
        ws_->set_run_status(r.id, "failed", "the job process ended without finishing (killed or crashed)");
    }
}

void SessionView::refresh() {
    if (!ws_) return;
    try {
        mark_dead_runs();
        // Rebuild only when something changed (runs, statuses, steps, checkpoints).
        struct Row {
            RunRecord run;
            size_t steps;
            std::vector<CheckpointRecord> checkpoints;
        };
        std::vector<Row> rows;
        QString signature;
        for (auto& r : ws_->runs()) {
            rows.push_back({r, ws_->steps(r.id, "train").size(), ws_->checkpoints(r.id)});
            signature += QString("%1:%2:%3:%4;")
                             .arg(r.id)
                             .arg(QString::fromStdString(r.status))
                             .arg(rows.back().steps)
                             .arg(rows.back().checkpoints.size());
        }
        if (signature == tree_signature_) return;
        tree_signature_ = signature;
        const qint64 keep = selected_run();
        QSignalBlocker block(tree_);
        tree_->clear();
        // sessions > runs > checkpoints
        std::map<std::string, QTreeWidgetItem*> sessions;
        QTreeWidgetItem* keep_item = nullptr;
        for (const Row& row : rows) {
            const RunRecord& r = row.run;
            QTreeWidgetItem*& session = sessions[r.session];
            if (!session) {
                session = new QTreeWidgetItem(tree_, {"session " + QString::fromStdString(r.session)});
                session->setData(0, Qt::UserRole, qint64(0));
                session->setExpanded(true);
            }
            auto* item = new QTreeWidgetItem(
                session, {QString::number(r.id), QString::fromStdString(r.kind), QString::fromStdString(r.status),
                          row.steps ? QString::number(row.steps) : "", QString::fromStdString(r.updated_at),
                          QString::fromStdString(r.message)});
            item->setData(0, Qt::UserRole, qint64(r.id));
            QColor color = r.status == "failed"      ? QColor(200, 40, 40)
                           : r.status == "running"   ? QColor(30, 110, 200)
                           : r.status == "cancelled" ? QColor(150, 110, 0)
                                                     : QColor(30, 130, 60);
            item->setForeground(2, color);
            for (auto& c : row.checkpoints) {
                auto* ck = new QTreeWidgetItem(item, {c.is_best ? "best" : "checkpoint", "", "",
                                                      QString::number(c.step), "", QString::fromStdString(c.path)});
                ck->setData(0, Qt::UserRole, qint64(0));
            }
            if (r.id == keep) keep_item = item;
        }
        if (keep_item) tree_->setCurrentItem(keep_item);
        emit runs_changed();
    } catch (const std::exception& e) {
        emit status_text("Workspace read failed: " + QString::fromUtf8(e.what()));
    }
}

bool SessionView::start(const QString& label, const QStringList& args) {
    if (!ws_) {
        emit status_text("Open a workspace first");
        return false;
    }
    if (job_.running()) {
        emit status_text("A job is already running");
        return false;
    }
    QStringList full = args;
    full << "--workspace" << ws_dir_;
    if (!model_dir_.isEmpty()) full << "--model" << model_dir_;
    job_.start(label, full);
    start_->setEnabled(false);
    resume_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setValue(0);
    job_label_->setText(label + ": starting…");
    emit status_text(label + " started");
    return true;
}

bool SessionView::start_stage1(const QStringList& extra) {
    QStringList args = {"distill",
                        "--steps",
                        QString::number(s1_steps_->value()),
                        "--lr",
                        QString::number(s1_lr_->value()),
                        "--window",
                        QString::number(s1_window_->value()),
                        "--seq-len",
                        QString::number(s1_seq_len_->value()),
                        "--teacher-sequences",
                        QString::number(s1_samples_->value()),
                        "--batch-size",
                        QString::number(s1_batch_->value()),
                        "--eval-every",
                        QString::number(s1_eval_every_->value()),
                        "--checkpoint-every",
                        QString::number(s1_eval_every_->value())};
    return start("Stage 1", args + extra);
}

bool SessionView::start_linearize() {
    return start("Linearize", {"linearize"});
}

bool SessionView::start_stage2() {
    qint64 run = selected_run();
    if (!run) {
        emit status_text("Select a completed stage-1 run first");
        return false;
    }
    return start("Stage 2",
                 {"finetune", "--run", QString::number(run), "--steps", QString::number(s2_steps_->value()), "--lr",
                  QString::number(s2_lr_->value()), "--lora-rank", QString::number(s2_rank_->value())});
}

bool SessionView::start_eval() {
    qint64 run = selected_run();
    if (!run) {
        emit status_text("Select a run to evaluate");
        return false;
    }
    return start("Eval", {"eval", "--run", QString::number(run)});
}

bool SessionView::resume_selected() {
    qint64 run = selected_run();
    if (!run || !ws_) return false;
    RunRecord r = ws_->run(run);
    if (r.status == "completed") {
        emit status_text(QString("Run %1 is already completed").arg(run));
        return false;
    }
    QString cmd = r.kind == "finetune" ? "finetune" : "distill";
    return start("Resume run " + QString::number(run), {cmd, "--resume", QString::number(run)});
}

void SessionView::cancel_job() {
    job_.cancel();
    emit status_text("Cancelling " + job_.label() + " (it stops at the next step)…");
}

}  // namespace lincat::studio
