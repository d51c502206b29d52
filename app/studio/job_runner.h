// A background job: one `lincat` child process (training never runs in the GUI process, so a
// crash or kill -9 of the job leaves the studio up and the workspace database intact). Reads
// the child's JSON-lines events (`--events fd:3`, a pipe; util/events.h) for progress, phases
// and the result; keeps its human output for the last lines. Cancel sends SIGTERM, which makes lincat stop at the next
// step, record the run as cancelled and keep every record, so Resume continues it. Closing the studio cancels a running
// job the same way.
#pragma once

#include <QJsonObject>
#include <QObject>
#include <QProcess>
#include <QSet>
#include <QStringList>

class QSocketNotifier;

namespace lincat::studio {

struct JobProgress {
    qint64 step = 0, steps = 0;    // done / total of the event's unit
    double tokens_per_second = 0;  // training: tokens/s; else the unit's rate
    QString eta, line, unit;       // eta as "3m05s"; line: "stage 1 12/200 steps"
};

class JobRunner : public QObject {
    Q_OBJECT
  public:
    explicit JobRunner(QObject* parent = nullptr);
    ~JobRunner() override;

    // The lincat binary: $LINCAT_BIN, else next to the studio, else on PATH.
    static QString lincat_binary();
    bool start(const QString& label, const QStringList& args);
    void cancel();  // SIGTERM: a clean stop at the next step
    void kill();    // SIGKILL (tests: a crashed job)
    bool running() const { return process_.state() != QProcess::NotRunning; }
    qint64 pid() const { return process_.processId(); }
    const QString& label() const { return label_; }
    const QString& output() const { return output_; }
    // Every process this runner started (a run recorded with another pid belongs to someone else,
    // e.g. a Slurm job on another node writing to a shared workspace).
    const QSet<qint64>& started_pids() const { return started_pids_; }

    // The last "result" event of the job (empty when none came).
    const QJsonObject& result() const { return result_; }

  signals:
    void progress(const lincat::studio::JobProgress& p);
    void phase(const QString& name);
    void finished(int exit_code, bool crashed, const QString& last_lines);

  private:
    void read_output();
    void read_events();
    void close_events();
    void handle_event(const QJsonObject& e);
    QProcess process_;
    QString label_, output_, partial_;
    QByteArray events_partial_;
    int events_fd_ = -1;  // read end of the events pipe
    QSocketNotifier* events_notifier_ = nullptr;
    QJsonObject result_;
    QSet<qint64> started_pids_;
};

}  // namespace lincat::studio
