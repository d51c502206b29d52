// Attention maps: a prompt, a layer and a head; the teacher's softmax weights, the student's
// hybrid weights and their difference, with token labels, the window region outlined and the
// head's gamma shown. The maps come from `lincat attention-map` (a child process).
#pragma once

#include <QProcess>
#include <QWidget>
#include <optional>

class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace lincat::widgets {
class MatrixMapPlot;
}

namespace lincat::studio {

class AttentionView : public QWidget {
    Q_OBJECT
  public:
    explicit AttentionView(QWidget* parent = nullptr);
    // Where the student comes from: a workspace run (its best checkpoint), or none for fresh
    // feature maps. model: the model folder.
    void set_source(const QString& model, const QString& workspace, qint64 run);
    void load(const QString& prompt, int layer, int head);
    // A layer and head chosen elsewhere (a heat-map cell, a head bar): shown on a data sample
    // several windows long when the workspace has one, else on the current prompt.
    void show_head(int layer, int head);
    void set_layer(int layer);
    int layer() const;
    int head() const;
    // A prompt from the data: a whole cached teacher sample of the workspace (its sequence
    // length, several windows long); false when the workspace has none yet.
    bool sample_prompt(int index);
    QString prompt() const;
    bool busy() const { return process_.state() != QProcess::NotRunning; }
    widgets::MatrixMapPlot* teacher() const { return teacher_; }
    widgets::MatrixMapPlot* student() const { return student_; }
    widgets::MatrixMapPlot* difference() const { return diff_; }
    QString info() const;

  signals:
    void loaded(bool ok);

  private:
    void finished();
    QLineEdit* prompt_;
    QSpinBox *layer_, *head_;
    QPushButton* load_;
    QLabel* info_;
    widgets::MatrixMapPlot *teacher_, *student_, *diff_;
    QProcess process_;
    QString model_, workspace_;
    qint64 run_ = 0;
    // A request made while a map computes: run after it (the newest wins).
    struct Pending {
        QString prompt;
        int layer = 0, head = 0;
    };
    std::optional<Pending> pending_;
};

}  // namespace lincat::studio
