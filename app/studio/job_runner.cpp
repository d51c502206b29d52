#include "job_runner.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QJsonDocument>
#include <QRegularExpression>
#include <QSocketNotifier>
#include <QStandardPaths>
#include <csignal>

#include <fcntl.h>
#include <unistd.h>

#include "util/duration.h"

namespace lincat::studio {

JobRunner::JobRunner(QObject* parent) : QObject(parent) {
    process_.setProcessChannelMode(QProcess::MergedChannels);
    connect(&process_, &QProcess::readyRead, this, &JobRunner::read_output);
    connect(&process_, &QProcess::started, this, [this] { started_pids_.insert(process_.processId()); });
    connect(&process_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        read_output();
        read_events();
        close_events();
        QStringList lines = output_.split('\n', Qt::SkipEmptyParts);
        QString tail = lines.mid(std::max<qsizetype>(0, lines.size() - 6)).join('\n');
        emit finished(code, status == QProcess::CrashExit, tail);
    });
    connect(&process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError e) {
        if (e == QProcess::FailedToStart)
            emit finished(-1, true, "cannot start " + process_.program() + ": " + process_.errorString());
    });
}

JobRunner::~JobRunner() {
    // Closing the studio stops a running job cleanly: SIGTERM makes lincat record the run as
    // cancelled at the next step (every record kept), so it can be resumed later. (A job left
    // running would die of SIGPIPE on its next progress line once this process is gone.)
    if (running()) {
        process_.disconnect();
        cancel();
        if (!process_.waitForFinished(60000)) process_.kill();
    }
}

QString JobRunner::lincat_binary() {
    QString env = qEnvironmentVariable("LINCAT_BIN");
    if (!env.isEmpty()) return env;
    QString beside = QCoreApplication::applicationDirPath() + "/lincat";
    if (QFileInfo(beside).isExecutable()) return beside;
    QString found = QStandardPaths::findExecutable("lincat");
    return found.isEmpty() ? "lincat" : found;
}

// The child's fd 3 is the write end of a pipe: `--events fd:3` (the flag is global in lincat).
static constexpr int kChildEventsFd = 3;

bool JobRunner::start(const QString& label, const QStringList& args) {
    if (running()) return false;
    label_ = label;
    output_.clear();
    partial_.clear();
    events_partial_.clear();
    result_ = {};
    close_events();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    const int write_end = fds[1];
    process_.setChildProcessModifier([write_end] { ::dup2(write_end, kChildEventsFd); });  // dup2 clears CLOEXEC
    process_.start(lincat_binary(), args + QStringList{"--events", QString("fd:%1").arg(kChildEventsFd)});
    ::close(write_end);  // the child holds it now; EOF comes when the child is gone
    events_fd_ = fds[0];
    events_notifier_ = new QSocketNotifier(events_fd_, QSocketNotifier::Read, this);
    connect(events_notifier_, &QSocketNotifier::activated, this, &JobRunner::read_events);
    return true;
}

void JobRunner::close_events() {
    if (events_notifier_) {
        events_notifier_->setEnabled(false);
        events_notifier_->deleteLater();
        events_notifier_ = nullptr;
    }
    if (events_fd_ >= 0) ::close(events_fd_);
    events_fd_ = -1;
}

void JobRunner::read_events() {
    if (events_fd_ < 0) return;
    char buf[65536];
    ssize_t n = ::read(events_fd_, buf, sizeof buf);
    if (n <= 0) {  // EOF: the child closed its end
        if (n == 0 && events_notifier_) events_notifier_->setEnabled(false);
        return;
    }
    events_partial_.append(buf, n);
    qsizetype nl;
    while ((nl = events_partial_.indexOf('\n')) >= 0) {
        QByteArray line = events_partial_.left(nl);
        events_partial_.remove(0, nl + 1);
        QJsonDocument doc = QJsonDocument::fromJson(line);
        if (doc.isObject()) handle_event(doc.object());
    }
}

void JobRunner::handle_event(const QJsonObject& e) {
    const QString type = e.value("event").toString();
    if (type == "progress") {
        JobProgress p;
        p.step = e.value("done").toInteger();
        p.steps = e.value("total").toInteger();
        p.tokens_per_second = e.value("rate").toDouble();
        p.unit = e.value("unit").toString();
        p.eta = QString::fromStdString(duration_text(e.value("eta_seconds").toDouble()));
        p.line = QString("%1 %2/%3 %4").arg(e.value("label").toString()).arg(p.step).arg(p.steps).arg(p.unit);
        emit progress(p);
    } else if (type == "phase") {
        emit phase(e.value("name").toString());
    } else if (type == "result") {
        result_ = e;
    }
}

void JobRunner::cancel() {
    if (running()) ::kill(pid_t(process_.processId()), SIGTERM);
}

void JobRunner::kill() {
    if (running()) process_.kill();
}

void JobRunner::read_output() {
    partial_ += QString::fromUtf8(process_.readAll());
    // Lines end with \n (or \r from a progress bar); kept for the job's last lines.
    static const QRegularExpression split("[\r\n]");
    QStringList parts = partial_.split(split);
    partial_ = parts.takeLast();
    for (const QString& line : parts)
        if (!line.isEmpty()) output_ += line + '\n';
}

}  // namespace lincat::studio
