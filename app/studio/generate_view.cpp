#include "generate_view.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include "job_runner.h"
#include "util/json.h"

namespace lincat::studio {

GenerateView::GenerateView(QWidget* parent) : QWidget(parent) {
    setObjectName("generateView");
    prompt_ = new QLineEdit("Once upon a time");
    tokens_ = new QSpinBox;
    tokens_->setRange(1, 4096);
    tokens_->setValue(128);
    go_ = new QPushButton("Generate");
    teacher_text_ = new QPlainTextEdit;
    student_text_ = new QPlainTextEdit;
    teacher_text_->setReadOnly(true);
    student_text_->setReadOnly(true);
    teacher_stats_ = new QLabel;
    student_stats_ = new QLabel;
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel("Prompt"));
    top->addWidget(prompt_, 1);
    top->addWidget(new QLabel("new tokens"));
    top->addWidget(tokens_);
    top->addWidget(go_);
    auto* grid = new QGridLayout;
    grid->addWidget(new QLabel("<b>Teacher (softmax attention)</b>"), 0, 0);
    grid->addWidget(new QLabel("<b>Linearized (selected run)</b>"), 0, 1);
    grid->addWidget(teacher_text_, 1, 0);
    grid->addWidget(student_text_, 1, 1);
    grid->addWidget(teacher_stats_, 2, 0);
    grid->addWidget(student_stats_, 2, 1);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addLayout(grid, 1);
    connect(go_, &QPushButton::clicked, this, [this] { generate(prompt_->text(), tokens_->value()); });
    connect(&teacher_, &QProcess::finished, this,
            [this] { collect(teacher_, teacher_text_, teacher_stats_, "teacher"); });
    connect(&student_, &QProcess::finished, this,
            [this] { collect(student_, student_text_, student_stats_, "linearized"); });
}

void GenerateView::set_source(const QString& model, const QString& workspace, qint64 run) {
    model_ = model, workspace_ = workspace, run_ = run;
}

QString GenerateView::teacher_text() const {
    return teacher_text_->toPlainText();
}
QString GenerateView::student_text() const {
    return student_text_->toPlainText();
}
QString GenerateView::teacher_stats() const {
    return teacher_stats_->text();
}
QString GenerateView::student_stats() const {
    return student_stats_->text();
}

void GenerateView::generate(const QString& prompt, int tokens) {
    if (busy()) return;
    prompt_->setText(prompt);
    tokens_->setValue(tokens);
    QStringList args = {
        "generate", "--json", "--greedy", "--prompt", prompt, "--max-new-tokens", QString::number(tokens)};
    if (!model_.isEmpty()) args << "--model" << model_;
    teacher_text_->setPlainText("…");
    teacher_stats_->clear();
    teacher_.start(JobRunner::lincat_binary(), args);
    if (run_ && !workspace_.isEmpty()) {
        student_text_->setPlainText("…");
        student_stats_->clear();
        student_.start(JobRunner::lincat_binary(),
                       args + QStringList{"--run", QString::number(run_), "--workspace", workspace_});
    } else {
        student_text_->setPlainText("Select a stage-1 or stage-2 run in the session to compare.");
    }
    go_->setEnabled(false);
}

void GenerateView::collect(QProcess& p, QPlainTextEdit* text, QLabel* stats, const QString& who) {
    json j = json::parse(p.readAllStandardOutput().toStdString(), nullptr, false);
    if (p.exitCode() != 0 || !j.is_object()) {
        text->setPlainText(who + " failed: " + QString::fromUtf8(p.readAllStandardError()).trimmed());
    } else {
        text->setPlainText(QString::fromStdString(j["text"].get<std::string>()));
        stats->setText(QString("%1: %2 tokens, %3 tokens/s, state %4 MB")
                           .arg(j["linearized"].get<bool>() ? "linearized" : "softmax")
                           .arg(j["tokens"].get<int>())
                           .arg(j["tokens_per_second"].get<double>(), 0, 'f', 1)
                           .arg(j["state_mb"].get<double>(), 0, 'f', 2));
    }
    if (!busy()) {
        go_->setEnabled(true);
        emit done();
    }
}

}  // namespace lincat::studio
