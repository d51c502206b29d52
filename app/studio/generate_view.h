// Generation side by side: the softmax teacher and the linearized model (the selected run) on
// the same prompt, each with tokens/s and state memory; `lincat generate --json` children.
#pragma once

#include <QProcess>
#include <QWidget>

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

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

  signals:
    void done();

  private:
    void collect(QProcess& p, QPlainTextEdit* text, QLabel* stats, const QString& who);
    QLineEdit* prompt_;
    QSpinBox* tokens_;
    QPushButton* go_;
    QPlainTextEdit *teacher_text_, *student_text_;
    QLabel *teacher_stats_, *student_stats_;
    QProcess teacher_, student_;
    QString model_, workspace_;
    qint64 run_ = 0;
};

}  // namespace lincat::studio
