#include "generate_view.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTextCursor>
#include <QTextEdit>
#include <QVBoxLayout>

#include "job_runner.h"
#include "layer_bar_plot.h"
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
    bench_ = new QPushButton("Decode speed vs context");
    bench_->setObjectName("decodeBench");
    bench_info_ = new QLabel(
        "tokens/s and state memory of both models at 256, 1K and 4K tokens of context "
        "(lincat bench decode)");
    bench_info_->setWordWrap(true);
    speed_ = new widgets::LayerBarPlot;
    speed_->setObjectName("decodeSpeed");
    memory_ = new widgets::LayerBarPlot;
    memory_->setObjectName("decodeMemory");
    speed_->set_axis("context (tokens)");
    memory_->set_axis("context (tokens)");
    auto* bench_row = new QHBoxLayout;
    bench_row->addWidget(bench_);
    bench_row->addWidget(bench_info_, 1);
    auto* charts = new QSplitter(Qt::Horizontal);
    charts->addWidget(speed_);
    charts->addWidget(memory_);
    auto* texts = new QWidget;
    texts->setLayout(grid);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(texts);
    split->addWidget(charts);
    speed_->setMinimumHeight(240);
    memory_->setMinimumHeight(240);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(split, 1);
    layout->addLayout(bench_row);
    connect(bench_, &QPushButton::clicked, this, [this] { measure_decode(); });
    bench_process_.setProcessChannelMode(QProcess::SeparateChannels);
    connect(&bench_process_, &QProcess::finished, this, &GenerateView::decode_finished);
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
    teacher_text_->setExtraSelections({});
    student_text_->setExtraSelections({});
    divergence_ = -1;
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
        highlight_divergence();
        go_->setEnabled(true);
        emit done();
    }
}

// Both texts start with the prompt; greedy decoding makes them equal until the models disagree.
void GenerateView::highlight_divergence() {
    const QString a = teacher_text_->toPlainText(), b = student_text_->toPlainText();
    divergence_ = -1;
    if (!run_ || a.isEmpty() || b.isEmpty()) return;
    int i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    if (i == a.size() && i == b.size()) {
        student_stats_->setText(student_stats_->text() + " — the same text as the teacher");
        return;
    }
    divergence_ = i;
    QTextEdit::ExtraSelection part;
    part.format.setBackground(QColor(255, 220, 210));
    for (QPlainTextEdit* e : {teacher_text_, student_text_}) {
        QTextCursor c(e->document());
        c.setPosition(std::min<int>(i, e->document()->characterCount() - 1));
        c.movePosition(QTextCursor::End, QTextCursor::KeepAnchor);
        part.cursor = c;
        e->setExtraSelections({part});
    }
    const int words = int(a.left(i).split(' ', Qt::SkipEmptyParts).size());
    student_stats_->setText(student_stats_->text() +
                            QString(" — parts from the teacher after %1 words (shaded)").arg(words));
}

void GenerateView::measure_decode(const QString& contexts) {
    if (bench_process_.state() != QProcess::NotRunning) return;
    QStringList args = {"bench", "decode", "--json", "--context", contexts, "--steps", "16"};
    if (!model_.isEmpty()) args << "--model" << model_;
    if (run_ && !workspace_.isEmpty()) args << "--run" << QString::number(run_) << "--workspace" << workspace_;
    bench_info_->setText("Measuring decode at " + contexts + " tokens of context…");
    bench_->setEnabled(false);
    bench_process_.start(JobRunner::lincat_binary(), args);
}

void GenerateView::decode_finished() {
    bench_->setEnabled(true);
    json rows = json::parse(bench_process_.readAllStandardOutput().toStdString(), nullptr, false);
    if (bench_process_.exitCode() != 0 || !rows.is_array() || rows.empty()) {
        bench_info_->setText("bench decode failed: " +
                             QString::fromUtf8(bench_process_.readAllStandardError()).trimmed());
        emit decode_measured(false);
        return;
    }
    QVector<int> contexts;
    QVector<double> t_speed, l_speed, t_mem, l_mem;
    for (auto& r : rows) {
        contexts << r.value("context", 0);
        l_speed << r.value("linear_tokens_per_second", 0.0);
        t_speed << r.value("teacher_tokens_per_second", 0.0);
        l_mem << r.value("linear_state_bytes", 0.0) / 1e6;
        t_mem << r.value("teacher_state_bytes", 0.0) / 1e6;
    }
    speed_->set_axis("context (tokens)", contexts);
    memory_->set_axis("context (tokens)", contexts);
    speed_->set_series({t_speed, l_speed}, {"softmax teacher", "linearized"}, "decode tokens/s");
    memory_->set_series({t_mem, l_mem}, {"softmax teacher (KV cache)", "linearized (state)"}, "state MB", true);
    bench_info_->setText(QString("At %1 tokens of context: linearized %2 tok/s with %3 MB of state; teacher %4 tok/s "
                                 "with %5 MB.")
                             .arg(contexts.back())
                             .arg(l_speed.back(), 0, 'f', 1)
                             .arg(l_mem.back(), 0, 'f', 2)
                             .arg(t_speed.back(), 0, 'f', 1)
                             .arg(t_mem.back(), 0, 'f', 2));
    emit decode_measured(true);
}

}  // namespace lincat::studio
