#include "attention_view.h"

#include <QDir>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QVBoxLayout>

#include "job_runner.h"
#include "matrix_map_plot.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"
#include "util/json.h"

namespace lincat::studio {

// The most prompt tokens the maps show (three T x T maps of doubles as JSON: 1024 is ~60 MB).
constexpr int kMaxTokens = 1024;

AttentionView::AttentionView(QWidget* parent) : QWidget(parent) {
    setObjectName("attentionView");
    prompt_ = new QLineEdit("Once upon a time, there was a little girl named Lily. She loved to play outside.");
    layer_ = new QSpinBox;
    layer_->setRange(0, 1023);
    head_ = new QSpinBox;
    head_->setRange(0, 1023);
    load_ = new QPushButton("Show");
    auto* sample = new QPushButton("Sample from data");
    connect(sample, &QPushButton::clicked, this, [this] {
        static int next = 0;
        if (!sample_prompt(next++)) info_->setText("No data in the workspace yet: run stage 1 first.");
    });
    info_ = new QLabel("Pick a prompt, layer and head. The student is the selected run's (or fresh feature maps).");
    info_->setObjectName("attentionInfo");
    teacher_ = new widgets::MatrixMapPlot("Teacher softmax", false);
    student_ = new widgets::MatrixMapPlot("Student hybrid", false);
    diff_ = new widgets::MatrixMapPlot("Student - teacher", true);
    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel("Prompt"));
    top->addWidget(prompt_, 1);
    top->addWidget(new QLabel("layer"));
    top->addWidget(layer_);
    top->addWidget(new QLabel("head"));
    top->addWidget(head_);
    top->addWidget(sample);
    top->addWidget(load_);
    auto* maps = new QSplitter(Qt::Horizontal);
    maps->addWidget(teacher_);
    maps->addWidget(student_);
    maps->addWidget(diff_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(info_);
    layout->addWidget(maps, 1);
    connect(load_, &QPushButton::clicked, this, [this] { load(prompt_->text(), layer_->value(), head_->value()); });
    process_.setProcessChannelMode(QProcess::SeparateChannels);
    connect(&process_, &QProcess::finished, this, &AttentionView::finished);
}

void AttentionView::set_source(const QString& model, const QString& workspace, qint64 run) {
    model_ = model, workspace_ = workspace, run_ = run;
}

QString AttentionView::prompt() const {
    return prompt_->text();
}

bool AttentionView::sample_prompt(int index) {
    if (workspace_.isEmpty() || model_.isEmpty()) return false;
    try {
        // Cached teacher samples: <workspace>/data/teacher-*.safetensors, tensor "tokens" (N, T) int32.
        QDir data(workspace_ + "/data");
        const QStringList files = data.entryList({"teacher-*.safetensors"}, QDir::Files, QDir::Name);
        if (files.isEmpty()) return false;
        SafetensorsFile f = SafetensorsFile::open(data.filePath(files.front()).toStdString());
        const TensorInfo* t = f.find("tokens");
        if (!t || t->dtype != DType::I32 || t->shape.size() != 2 || t->shape[0] < 1) return false;
        const int64_t rows = t->shape[0], len = std::min<int64_t>(t->shape[1], kMaxTokens - 1);  // + BOS
        const int32_t* p = reinterpret_cast<const int32_t*>(f.data(*t)) + (index % rows) * t->shape[1];
        Tokenizer tok = Tokenizer::load_dir(model_.toStdString());
        prompt_->setText(QString::fromStdString(tok.decode(std::vector<int32_t>(p, p + len))));
        return true;
    } catch (const std::exception& e) {
        info_->setText("Cannot read a data sample: " + QString::fromUtf8(e.what()));
        return false;
    }
}

void AttentionView::set_layer(int layer) {
    layer_->setValue(layer);
}

int AttentionView::layer() const {
    return layer_->value();
}

int AttentionView::head() const {
    return head_->value();
}

void AttentionView::show_head(int layer, int head) {
    layer_->setValue(layer);
    head_->setValue(head);
    if (teacher_->empty() || teacher_->size() <= 64) sample_prompt(0);  // a short prompt never leaves the window
    load(prompt_->text(), layer, head);
}

QString AttentionView::info() const {
    return info_->text();
}

void AttentionView::load(const QString& prompt, int layer, int head) {
    if (busy()) {
        pending_ = Pending{prompt, layer, head};
        return;
    }
    prompt_->setText(prompt);
    layer_->setValue(layer);
    head_->setValue(head);
    QStringList args = {"attention-map",
                        "--prompt",
                        prompt,
                        "--layer",
                        QString::number(layer),
                        "--head",
                        QString::number(head),
                        "--max-tokens",
                        QString::number(kMaxTokens)};
    if (!model_.isEmpty()) args << "--model" << model_;
    if (run_ && !workspace_.isEmpty()) args << "--run" << QString::number(run_) << "--workspace" << workspace_;
    info_->setText("Computing…");
    load_->setEnabled(false);
    process_.start(JobRunner::lincat_binary(), args);
}

void AttentionView::finished() {
    load_->setEnabled(true);
    if (pending_) {  // a newer request came in while this one ran: it wins
        Pending p = *pending_;
        pending_.reset();
        process_.readAllStandardOutput();
        process_.readAllStandardError();
        load(p.prompt, p.layer, p.head);
        return;
    }
    const QByteArray out = process_.readAllStandardOutput();
    if (process_.exitCode() != 0) {
        info_->setText("attention-map failed: " + QString::fromUtf8(process_.readAllStandardError()).trimmed());
        emit loaded(false);
        return;
    }
    json j = json::parse(out.toStdString(), nullptr, false);
    if (!j.is_object() || !j.contains("teacher")) {
        info_->setText("attention-map printed no maps");
        emit loaded(false);
        return;
    }
    auto matrix = [](const json& m) {
        QVector<QVector<double>> v;
        for (auto& row : m) v << QVector<double>(row.begin(), row.end());
        return v;
    };
    QStringList tokens;
    for (auto& t : j["tokens"]) tokens << QString::fromStdString(t.get<std::string>());
    auto t = matrix(j["teacher"]), s = matrix(j["student"]), region = matrix(j["window_mask"]);
    QVector<QVector<double>> d = s;
    for (int i = 0; i < d.size(); ++i)
        for (int k = 0; k < d[i].size(); ++k) d[i][k] -= t[i][k];
    teacher_->set_matrix(t, tokens);
    student_->set_matrix(s, tokens, region);
    diff_->set_matrix(d, tokens, region);
    const std::string variant = j["variant"].get<std::string>();
    info_->setText(
        variant.empty()
            ? QString("Layer %1 head %2: softmax in the student.").arg(j["layer"].get<int>()).arg(j["head"].get<int>())
            : QString("Layer %1 head %2: %3 window %4 (dashed: where the softmax window starts), "
                      "gamma %5, %6 tokens. Wheel: zoom, drag: pan.")
                  .arg(j["layer"].get<int>())
                  .arg(j["head"].get<int>())
                  .arg(QString::fromStdString(variant))
                  .arg(j["window"].get<int>())
                  .arg(j["gamma"].get<double>(), 0, 'f', 3)
                  .arg(tokens.size()));
    emit loaded(true);
}

}  // namespace lincat::studio
