#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QElapsedTimer>
#include <functional>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "layer_bar_plot.h"
#include "layer_error_view.h"
#include "model/model_summary.h"
#include "planner_view.h"
#include "plot_export.h"
#include "session_view.h"
#include "attention_view.h"
#include "generate_view.h"
#include "compare_view.h"
#include "position_view.h"
#include "store/workspace.h"
#include <QEventLoop>
#include <QTreeWidget>

// Resources in a static library need an explicit init (outside any namespace).
static void init_studio_resources() {
    Q_INIT_RESOURCE(lincat);
}

namespace lincat::studio {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setObjectName("mainWindow");
    setWindowTitle("Lincat Studio");
    init_studio_resources();
    setWindowIcon(QIcon(":/lincat/icon.svg"));

    auto* session_page = new QWidget;
    auto* sl = new QVBoxLayout(session_page);
    summary_ = new QLabel("No model open. File > Open model… (Ctrl+O)");
    summary_->setObjectName("modelSummary");
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    summary_->setWordWrap(true);
    session_ = new SessionView;
    sl->addWidget(summary_);
    sl->addWidget(session_, 1);
    layer_error_ = new LayerErrorView;
    planner_ = new widgets::PlannerView;
    attention_ = new AttentionView;
    generate_ = new GenerateView;
    position_ = new PositionView;
    compare_ = new CompareView;

    tabs_ = new QTabWidget;
    tabs_->setObjectName("mainTabs");
    tabs_->addTab(session_page, "Session");
    tabs_->addTab(layer_error_, "Layer error");
    tabs_->addTab(position_, "Where it loses");
    tabs_->addTab(compare_, "Compare runs");
    tabs_->addTab(attention_, "Attention maps");
    tabs_->addTab(generate_, "Generate");
    tabs_->addTab(planner_, "Block planner");
    setCentralWidget(tabs_);

    connect(session_, &SessionView::status_text, this, [this](const QString& t) { statusBar()->showMessage(t); });
    connect(session_, &SessionView::runs_changed, layer_error_, &LayerErrorView::refresh);
    connect(session_, &SessionView::runs_changed, compare_, &CompareView::refresh);
    connect(session_, &SessionView::run_selected, layer_error_, &LayerErrorView::show_run);
    // The attention and generation views use the selected run as the student.
    connect(session_, &SessionView::run_selected, this, [this](qint64 run) {
        attention_->set_source(session_->model_dir(), session_->workspace_dir(), run);
        generate_->set_source(session_->model_dir(), session_->workspace_dir(), run);
        position_->set_source(session_->model_dir(), session_->workspace_dir(), run);
    });
    connect(session_, &SessionView::runs_compared, this, [this](qint64 run, qint64 other) {
        layer_error_->compare_runs(run, other);
        statusBar()->showMessage(QString("Comparing run %1 with run %2 (Layer error tab)").arg(run).arg(other));
    });
    // A layer or head picked in one view opens its attention maps.
    connect(layer_error_, &LayerErrorView::layer_clicked, this, [this](int layer) {
        tabs_->setCurrentWidget(attention_);
        attention_->show_head(layer, attention_->head());
    });
    connect(position_, &PositionView::head_clicked, this, [this](int layer, int head) {
        tabs_->setCurrentWidget(attention_);
        attention_->show_head(layer, head);
    });

    // Menus and shortcuts for the common actions.
    QMenu* file = menuBar()->addMenu("&File");
    QAction* open = file->addAction("&Open model…", this, &MainWindow::choose_model);
    open->setShortcut(QKeySequence::Open);
    QAction* open_ws = file->addAction("Open &workspace…", this, &MainWindow::choose_workspace);
    open_ws->setShortcut(QKeySequence("Ctrl+Shift+O"));
    recent_menu_ = file->addMenu("&Recent sessions");
    QAction* exp = file->addAction("&Export plot…", this, &MainWindow::export_current_plot);
    exp->setShortcut(QKeySequence("Ctrl+E"));
    file->addSeparator();
    QAction* quit = file->addAction("&Quit", this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    QMenu* run = menuBar()->addMenu("&Run");
    run->addAction("Start &stage 1", QKeySequence("Ctrl+R"), session_, [this] { session_->start_stage1(); });
    run->addAction("Start stage &2 from the selected run", QKeySequence("Ctrl+Shift+R"), session_,
                   [this] { session_->start_stage2(); });
    run->addAction("&Evaluate the selected run", QKeySequence("Ctrl+Shift+E"), session_,
                   [this] { session_->start_eval(); });
    run->addAction("&Resume the selected run", QKeySequence("Ctrl+Shift+U"), session_,
                   [this] { session_->resume_selected(); });
    run->addAction("&Cancel the job", QKeySequence("Ctrl+."), session_, [this] { session_->cancel_job(); });
    QMenu* view = menuBar()->addMenu("&View");
    for (int i = 0; i < tabs_->count(); ++i)
        view->addAction(tabs_->tabText(i), QKeySequence(QString("Ctrl+%1").arg(i + 1)), this,
                        [this, i] { tabs_->setCurrentIndex(i); });

    statusBar()->showMessage("Ready");
    resize(1200, 800);
    QSettings s;
    restoreGeometry(s.value("window/geometry").toByteArray());
    restoreState(s.value("window/state").toByteArray());
    tabs_->setCurrentIndex(s.value("window/tab", 0).toInt());
    update_recent_menu();
}

void MainWindow::closeEvent(QCloseEvent* e) {
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    s.setValue("window/tab", tabs_->currentIndex());
    if (session_->job()->running() &&
        QMessageBox::question(this, "Job running",
                              "A job is running. Close anyway? It will be cancelled at its next step and can be "
                              "resumed later from the run tree.") != QMessageBox::Yes) {
        e->ignore();
        return;
    }
    e->accept();
}

void MainWindow::choose_model() {
    QString dir = QFileDialog::getExistingDirectory(this, "Open a Hugging Face model folder");
    if (!dir.isEmpty()) open_model(dir);
}

void MainWindow::choose_workspace() {
    QString dir = QFileDialog::getExistingDirectory(this, "Open or create a workspace folder");
    if (!dir.isEmpty()) open_workspace(dir);
}

void MainWindow::update_recent_menu() {
    recent_menu_->clear();
    const QStringList recent = QSettings().value("session/recent").toStringList();
    for (const QString& dir : recent) recent_menu_->addAction(dir, this, [this, dir] { open_workspace(dir); });
    recent_menu_->setEnabled(!recent.isEmpty());
}

bool MainWindow::open_workspace(const QString& dir) {
    if (!session_->open_workspace(dir)) {
        statusBar()->showMessage("Cannot open workspace " + dir);
        return false;
    }
    layer_error_->set_workspace(session_->workspace());
    compare_->set_workspace(session_->workspace());
    planner_->set_workspace(dir);
    QSettings s;
    QStringList recent = s.value("session/recent").toStringList();
    recent.removeAll(dir);
    recent.prepend(dir);
    s.setValue("session/recent", recent.mid(0, 8));
    s.setValue("session/workspace", dir);
    update_recent_menu();
    statusBar()->showMessage("Workspace " + dir);
    return true;
}

bool MainWindow::open_model(const QString& dir) {
    try {
        ModelSummary m = summarize_model(dir.toStdString());  // checks config, tokenizer and weights
        summary_->setText(QString("<b>%1</b> — %2")
                              .arg(dir.toHtmlEscaped(), QString::fromStdString(model_summary_text(m)).toHtmlEscaped()));
        session_->set_model(dir);
        attention_->set_source(dir, session_->workspace_dir(), session_->selected_run());
        generate_->set_source(dir, session_->workspace_dir(), session_->selected_run());
        QSettings().setValue("session/model", dir);
        statusBar()->showMessage("Opened " + dir);
        return true;
    } catch (const std::exception& e) {
        summary_->setText(QString("<b>Cannot open model</b> %1: %2")
                              .arg(dir.toHtmlEscaped(), QString::fromUtf8(e.what()).toHtmlEscaped()));
        statusBar()->showMessage("Open failed");
        return false;
    }
}

void MainWindow::export_current_plot() {
    // The first plot under the current tab (each plot also has its own right-click export).
    auto plots = tabs_->currentWidget()->findChildren<QCustomPlot*>();
    if (plots.isEmpty()) return;
    QString path = QFileDialog::getSaveFileName(this, "Export plot", plots.front()->objectName() + ".png",
                                                "PNG image (*.png);;SVG image (*.svg);;PDF (*.pdf)");
    QString error;
    if (!path.isEmpty() && !widgets::export_plot(plots.front(), path, &error))
        QMessageBox::warning(this, "Export failed", error);
}

// Waits until `busy` is false (the view's child process ended), at most wait_ms.
static void wait_until_idle(const std::function<bool()>& busy, int wait_ms) {
    QElapsedTimer t;
    t.start();
    while (busy() && t.elapsed() < wait_ms) {
        QEventLoop loop;
        QTimer::singleShot(100, &loop, &QEventLoop::quit);
        loop.exec();
    }
}

bool MainWindow::save_screenshots(const QString& dir, int wait_ms) {
    QDir().mkpath(dir);
    if (Workspace* ws = session_->workspace()) {
        // The newest stage-1 run as the student, every computing view filled for it.
        qint64 run = 0;
        for (auto& r : ws->runs())
            if (r.kind == RunKind::Distill && r.status == RunStatus::Completed) run = r.id;
        if (QTreeWidgetItem* item = run ? session_->run_item(run) : nullptr) {
            session_->run_tree()->setCurrentItem(item);
            QApplication::processEvents();
            tabs_->setCurrentWidget(position_);
            position_->compute();
            wait_until_idle([this] { return position_->busy(); }, wait_ms);
            attention_->show_head(std::max(0, position_->head_layer()), position_->worst_head());
            wait_until_idle([this] { return attention_->busy(); }, wait_ms);
            generate_->generate("Once upon a time", 128);
            wait_until_idle([this] { return generate_->busy(); }, wait_ms);
            generate_->measure_decode("256,1K");
            wait_until_idle([this] { return generate_->decode_busy(); }, wait_ms);
        }
    }
    const QStringList names = {"session",   "layer_error", "position_error", "compare",
                               "attention", "generate",    "planner"};
    bool ok = true;
    const int keep = tabs_->currentIndex();
    for (int i = 0; i < tabs_->count() && i < names.size(); ++i) {
        tabs_->setCurrentIndex(i);
        QApplication::processEvents();
        ok = grab().save(dir + "/" + names[i] + ".png") && ok;
    }
    tabs_->setCurrentIndex(keep);
    return ok;
}

}  // namespace lincat::studio
