#include "session_view.h"

#include <QDateTime>
#include <QFileDialog>
#include <QFormLayout>
#include <QLineEdit>
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
#include <algorithm>
#include <map>
#include <cerrno>

#include "option_form.h"
#include "run_figures.h"
#include "model/config.h"
#include "model/model_dir.h"
#include "store/run_evaluation.h"
#include "store/workspace.h"
#include "train/distill_config.h"
#include "train/finetune_config.h"

namespace lincat::studio {

SessionView::SessionView(QWidget* parent) : QWidget(parent) {
    setObjectName("sessionView");
    ws_label_ = new QLabel("No workspace. File > Open workspace… (Ctrl+Shift+O)");
    ws_label_->setObjectName("workspaceLabel");
    model_label_ = new QLabel("Model: default");
    tree_ = new QTreeWidget;
    tree_->setObjectName("runTree");
    tree_->setHeaderLabels(
        {"run", "kind", "status", "steps", "ppl vs teacher", "top-1", "KL", "mean MSE", "updated", "message"});
    tree_->headerItem()->setToolTip(ColPpl, "held-out perplexity over the softmax teacher's (newest evaluation)");
    tree_->headerItem()->setToolTip(ColMse, "mean attention-output MSE of the linearized layers (held out)");
    tree_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    tree_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    connect(tree_, &QTreeWidget::currentItemChanged, this, [this] {
        if (qint64 r = selected_run()) {
            suggest_keep_softmax(r);
            emit run_selected(r);
        }
    });
    connect(tree_, &QTreeWidget::itemSelectionChanged, this, [this] {
        QList<qint64> runs;
        for (QTreeWidgetItem* item : tree_->selectedItems())
            if (qint64 r = item->data(0, Qt::UserRole).toLongLong(); r && !runs.contains(r)) runs << r;
        if (runs.size() == 2)
            emit runs_compared(runs[0] == selected_run() ? runs[0] : runs[1],
                               runs[0] == selected_run() ? runs[1] : runs[0]);
    });

    // Stage settings: rows, ranges and defaults come from the stages' option tables (the CLI's).
    stages_ = new QTabWidget;
    stages_->setObjectName("stageTabs");
    auto* s1 = new QWidget;
    auto* f1 = new QFormLayout(s1);
    stage1_form_ = std::make_unique<OptionForm>(
        f1, distill_fields(),
        std::vector<std::string>{"steps", "lr", "variant", "window", "feature_map", "feature_dim", "gate",
                                 "softmax_share", "layers", "seq_len", "teacher_sequences", "sample_dtype",
                                 "batch_size", "eval_every", "checkpoint_every"});
    stage1_steps()->setObjectName("stage1Steps");
    // Not fields of the run's config but of the command (as in `lincat distill`).
    keep_softmax_ = new QLineEdit;
    keep_softmax_->setObjectName("option_keep_softmax");
    keep_softmax_->setPlaceholderText("e.g. 4,5 (the Where-it-loses tab shows the worst layers)");
    keep_softmax_->setToolTip("--keep-softmax: these layers stay softmax, every other is linearized");
    f1->addRow("Layers kept softmax", keep_softmax_);
    // Named softmax layers stay as named: the share chooses none on top (as `lincat distill`).
    connect(keep_softmax_, &QLineEdit::textChanged, this, [this](const QString& text) {
        stage1_form_->editor("softmax_share")->setEnabled(text.trimmed().isEmpty());
    });
    keep_hint_ = new QLabel("Select an evaluated run: the layers it loses most in are suggested here.");
    keep_hint_->setObjectName("keepSoftmaxHint");
    keep_hint_->setWordWrap(true);
    keep_worst_ = new QPushButton("Keep the worst softmax");
    keep_worst_->setObjectName("keepWorst");
    keep_worst_->setEnabled(false);
    auto* hint_row = new QHBoxLayout;
    hint_row->addWidget(keep_hint_, 1);
    hint_row->addWidget(keep_worst_);
    f1->addRow(hint_row);  // the whole width: the hint is a sentence
    data_files_ = new QLineEdit;
    data_files_->setObjectName("option_data");
    data_files_->setPlaceholderText("text / .jsonl files, comma-separated (empty: sample the teacher)");
    data_files_->setToolTip("--data");
    auto* browse = new QPushButton("…");
    connect(browse, &QPushButton::clicked, this, [this] {
        QStringList files =
            QFileDialog::getOpenFileNames(this, "Training text", {}, "Text or Alpaca (*.txt *.jsonl);;All (*)");
        if (!files.isEmpty()) data_files_->setText(files.join(","));
    });
    auto* data_row = new QHBoxLayout;
    data_row->addWidget(data_files_, 1);
    data_row->addWidget(browse);
    f1->addRow("Data files", data_row);
    stages_->addTab(s1, "Stage 1: attention transfer");
    auto* s2 = new QWidget;
    auto* f2 = new QFormLayout(s2);
    stage2_form_ = std::make_unique<OptionForm>(
        f2, finetune_fields(),
        std::vector<std::string>{"steps", "lr", "lora_rank", "lora_alpha", "kd_factor", "xent_factor"});
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
        const bool steps = p.unit == "steps";
        QString text = QString("%1: %2 %3/%4, %5 %6, ETA %7")
                           .arg(job_.label(), steps ? "step" : p.unit)
                           .arg(p.step)
                           .arg(p.steps)
                           .arg(p.tokens_per_second, 0, 'f', steps ? 0 : 1)
                           .arg(steps ? "tok/s" : p.unit + "/s", p.eta);
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

QString SessionView::keep_softmax_hint() const {
    return keep_hint_->text();
}

// Keeping a layer softmax buys back its error and costs its KV cache at decode: 2 (k, v) x kv
// heads x head dim values per token, which grow with the context again (the others stay constant).
void SessionView::suggest_keep_softmax(qint64 run) {
    if (!ws_) return;
    const RunFigures f = run_figures(newest_evaluations(*ws_), run);
    if (!f.ok || f.layer_mse.isEmpty() || f.layers.size() != f.layer_mse.size()) {
        keep_hint_->setText(QString("Run %1 has no per-layer evaluation yet: evaluate it to see which layers to keep "
                                    "softmax.")
                                .arg(run));
        keep_worst_->setEnabled(false);
        return;
    }
    QVector<int> order(f.layers.size());
    for (int i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return f.layer_mse[a] > f.layer_mse[b]; });
    QString worst;
    QStringList pick;
    for (int i = 0; i < order.size() && i < 3; ++i) {
        worst +=
            QString("%1layer %2 (%3)").arg(i ? ", " : "").arg(f.layers[order[i]]).arg(f.layer_mse[order[i]], 0, 'g', 3);
        if (i < std::min(2, int(order.size()) - 1)) pick << QString::number(f.layers[order[i]]);  // never all
    }
    std::sort(pick.begin(), pick.end(), [](const QString& a, const QString& b) { return a.toInt() < b.toInt(); });
    QString cost;
    try {
        ModelConfig c = load_model_config(
            resolve_model_dir(model_dir_.isEmpty() ? "default" : model_dir_.toStdString()) + "/config.json");
        const int64_t per_token = 2 * c.num_key_value_heads * c.head_dim;  // values
        cost = QString(
                   " Each one kept costs %1 values of KV cache per token at decode (%2 KB per 1K tokens in "
                   "fp32, half in bf16), growing with the context.")
                   .arg(per_token)
                   .arg(double(per_token) * 4 * 1024 / 1e3, 0, 'f', 0);
    } catch (const std::exception&) {
        // no readable model: the suggestion without its cost
    }
    keep_hint_->setText(QString("Run %1 loses most in %2 (held-out output MSE).").arg(run).arg(worst) + cost);
    keep_worst_->setText("Keep " + pick.join(",") + " softmax");
    keep_worst_->setEnabled(!pick.isEmpty());
    disconnect(keep_worst_, nullptr, nullptr, nullptr);
    connect(keep_worst_, &QPushButton::clicked, this, [this, pick] { keep_softmax_->setText(pick.join(",")); });
}

QSpinBox* SessionView::stage1_steps() const {
    return qobject_cast<QSpinBox*>(stage1_form_->editor("steps"));
}

bool SessionView::open_workspace(const QString& dir) {
    try {
        ws_ = std::make_unique<Workspace>(Workspace::open(dir.toStdString()));
        ws_dir_ = dir;
        ws_label_->setText("Workspace: <b>" + dir + "</b>");
        data_version_ = -1;
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
// Returns whether it changed a run.
bool SessionView::mark_dead_runs() {
    if (job_.started_pids().isEmpty() || job_.running()) return false;  // nothing of ours can have died
    bool changed = false;
    for (auto& r : ws_->runs()) {
        if (r.status != RunStatus::Running || !job_.started_pids().contains(r.pid)) continue;
        if (::kill(pid_t(r.pid), 0) == 0 || errno == EPERM) continue;
        ws_->set_run_status(r.id, RunStatus::Failed, "the job process ended without finishing (killed or crashed)");
        changed = true;
    }
    return changed;
}

void SessionView::refresh() {
    if (!ws_) return;
    try {
        // Read the runs only when another connection committed (PRAGMA data_version) or we wrote.
        const bool wrote = mark_dead_runs();
        const int64_t version = ws_->data_version();
        if (version == data_version_ && !wrote) return;
        data_version_ = version;
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
                             .arg(run_status_name(r.status))
                             .arg(rows.back().steps)
                             .arg(rows.back().checkpoints.size());
        }
        if (signature == tree_signature_) return;
        tree_signature_ = signature;
        const auto evaluations = newest_evaluations(*ws_);  // a new evaluation is a new run: in the signature
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
            const RunFigures f = run_figures(evaluations, r.id);
            auto figure = [&](double v, const char* format) { return f.ok ? QString::asprintf(format, v) : QString(); };
            auto* item = new QTreeWidgetItem(
                session, {QString::number(r.id), run_kind_name(r.kind), run_status_name(r.status),
                          row.steps ? QString::number(row.steps) : "", figure(100 * f.ppl_gap(), "%+.2f%%"),
                          f.top1 >= 0 ? figure(100 * f.top1, "%.2f%%") : "", f.kl >= 0 ? figure(f.kl, "%.4f") : "",
                          f.ok && !f.layer_mse.isEmpty() ? QString::asprintf("%.3g", f.mean_layer_mse()) : "",
                          QString::fromStdString(r.updated_at), QString::fromStdString(r.message)});
            if (f.ok)
                item->setToolTip(ColPpl, QString("ppl %1 vs the teacher's %2%3")
                                             .arg(f.student_ppl, 0, 'f', 3)
                                             .arg(f.teacher_ppl, 0, 'f', 3)
                                             .arg(f.eval_run ? QString(" (eval run %1)").arg(f.eval_run) : ""));
            item->setData(0, Qt::UserRole, qint64(r.id));
            QColor color = r.status == RunStatus::Failed      ? QColor(200, 40, 40)
                           : r.status == RunStatus::Running   ? QColor(30, 110, 200)
                           : r.status == RunStatus::Cancelled ? QColor(150, 110, 0)
                                                              : QColor(30, 130, 60);
            item->setForeground(ColStatus, color);
            for (auto& c : row.checkpoints) {
                QStringList cols(ColMessage + 1);
                cols[ColRun] = c.is_best ? "best" : "checkpoint";
                cols[ColSteps] = QString::number(c.step);
                cols[ColMessage] = QString::fromStdString(c.path);
                auto* ck = new QTreeWidgetItem(item, cols);
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
    if (!job_.start(label, full)) {
        emit status_text("Cannot start " + label + ": no pipe for its events");
        return false;
    }
    start_->setEnabled(false);
    resume_->setEnabled(false);
    cancel_->setEnabled(true);
    progress_->setValue(0);
    job_label_->setText(label + ": starting…");
    emit status_text(label + " started");
    return true;
}

bool SessionView::start_stage1(const QStringList& extra) {
    QStringList args = QStringList{"distill"} + stage1_form_->args();
    if (!keep_softmax_->text().trimmed().isEmpty()) args << "--keep-softmax" << keep_softmax_->text().remove(' ');
    if (!data_files_->text().trimmed().isEmpty()) args << "--data" << data_files_->text().trimmed();
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
    return start("Stage 2", QStringList{"finetune", "--run", QString::number(run)} + stage2_form_->args());
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
    if (r.status == RunStatus::Completed) {
        emit status_text(QString("Run %1 is already completed").arg(run));
        return false;
    }
    if (!run_kind_resumes(r.kind)) {
        emit status_text(QString("Run %1 is an %2 run; start it again instead").arg(run).arg(run_kind_name(r.kind)));
        return false;
    }
    // `lincat resume` dispatches on the run's kind (stage 1, stage 2, block, dump).
    return start("Resume run " + QString::number(run), {"resume", "--run", QString::number(run)});
}

void SessionView::cancel_job() {
    job_.cancel();
    emit status_text("Cancelling " + job_.label() + " (it stops at the next step)…");
}

}  // namespace lincat::studio
