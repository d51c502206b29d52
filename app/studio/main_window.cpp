#include "main_window.h"

#include <QAction>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QStatusBar>
#include <QVBoxLayout>

#include "layer_bar_plot.h"
#include "model/config.h"

namespace lincat::studio {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setObjectName("mainWindow");
    setWindowTitle("Lincat Studio");
    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    summary_ = new QLabel("No model open. File > Open model… (Ctrl+O)", central);
    summary_->setObjectName("modelSummary");
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    params_plot_ = new widgets::LayerBarPlot(central);
    layout->addWidget(summary_);
    layout->addWidget(params_plot_, 1);
    setCentralWidget(central);

    auto* open = menuBar()->addMenu("&File")->addAction("&Open model…");
    open->setShortcut(QKeySequence::Open);
    connect(open, &QAction::triggered, this, &MainWindow::choose_model);
    statusBar()->showMessage("Ready");
    resize(900, 600);
}

void MainWindow::choose_model() {
    QString dir = QFileDialog::getExistingDirectory(this, "Open a Hugging Face model folder");
    if (!dir.isEmpty()) open_model(dir);
}

bool MainWindow::open_model(const QString& dir) {
    try {
        ModelConfig c = load_model_config((dir + "/config.json").toStdString());
        summary_->setText(QString("<b>%1</b> — %2, %3 layers, hidden %4, %5 heads (%6 kv), vocab %7, %8M parameters")
                              .arg(dir, QString::fromStdString(c.model_type))
                              .arg(c.num_hidden_layers)
                              .arg(c.hidden_size)
                              .arg(c.num_attention_heads)
                              .arg(c.num_key_value_heads)
                              .arg(c.vocab_size)
                              .arg(double(c.parameter_count()) / 1e6, 0, 'f', 1));
        const double per_layer =
            double(c.parameter_count() - c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2)) /
            double(c.num_hidden_layers);
        params_plot_->set_values(QVector<double>(int(c.num_hidden_layers), per_layer / 1e6), "parameters (M)");
        statusBar()->showMessage("Opened " + dir);
        return true;
    } catch (const std::exception& e) {
        summary_->setText(QString("Cannot open model: %1").arg(QString::fromUtf8(e.what())));
        statusBar()->showMessage("Open failed");
        return false;
    }
}

}  // namespace lincat::studio
