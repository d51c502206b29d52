// Generation side by side: the softmax teacher and the linearized model (the selected run) on
// the same prompt, each with tokens/s and state memory; `lincat generate --json` children. Where
// the two texts part is highlighted. "Decode speed" measures tokens/s and state memory against
// context length (`lincat bench decode --json`) as two small bar charts: the linearized state
// stays flat while the teacher's KV cache grows.
#pragma once

#include <QProcess>
#include <QWidget>

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace lincat::widgets {
class LayerBarPlot;
}

namespace lincat::studio {

class GenerateView : public QWidget {
    Q_OBJECT
  public:
    explicit GenerateView(QWidget* parent = nullptr);
    void set_source(const QString& model, const QString& workspace, qint64 run);
    void generate(const QString& prompt, int tokens);
    bool busy() const { return teacher_.state() != QProcess::NotRunning || student_.state() != QProcess::NotRunning; }
    QString teacher_text() const;
    QString student_text() const;
    QString teacher_stats() const;
    QString student_stats() const;
    int divergence() const { return divergence_; }  // first character where the texts differ; -1: same
    void measure_decode(const QString& contexts = "256,1K,4K");
    bool decode_busy() const { return bench_process_.state() != QProcess::NotRunning; }
    widgets::LayerBarPlot* speed_plot() const { return speed_; }
    widgets::LayerBarPlot* memory_plot() const { return memory_; }

  signals:
    void done();
    void decode_measured(bool ok);

  private:
    void collect(QProcess& p, QPlainTextEdit* text, QLabel* stats, const QString& who);
    void highlight_divergence();
    void decode_finished();
    QLineEdit* prompt_;
    QSpinBox* tokens_;
    QPushButton *go_, *bench_;
    QLabel* bench_info_;
    widgets::LayerBarPlot *speed_, *memory_;
    QProcess bench_process_;
    int divergence_ = -1;
    QPlainTextEdit *teacher_text_, *student_text_;
    QLabel *teacher_stats_, *student_stats_;
    QProcess teacher_, student_;
    QString model_, workspace_;
    qint64 run_ = 0;
};

}  // namespace lincat::studio
