#include "job_runner.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QRegularExpression>
#include <QStandardPaths>
#include <csignal>

namespace lincat::studio {

JobRunner::JobRunner(QObject* parent) : QObject(parent) {
    process_.setProcessChannelMode(QProcess::MergedChannels);
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("LINCAT_PROGRESS_EVERY", "1");  // a progress line per step
    process_.setProcessEnvironment(env);
    connect(&process_, &QProcess::readyRead, this, &JobRunner::read_output);
    connect(&process_, &QProcess::started, this, [this] { started_pids_.insert(process_.processId()); });
    connect(&process_, &QProcess::finished, this, [this](int code, QProcess::ExitStatus status) {
        read_output();
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

bool JobRunner::start(const QString& label, const QStringList& args) {
    if (running()) return false;
    label_ = label;
    output_.clear();
    partial_.clear();
    process_.start(lincat_binary(), args);
    return true;
}

void JobRunner::cancel() {
    if (running()) ::kill(pid_t(process_.processId()), SIGTERM);
}

void JobRunner::kill() {
    if (running()) process_.kill();
}

void JobRunner::read_output() {
    partial_ += QString::fromUtf8(process_.readAll());
    // Lines end with \n (or \r from a progress bar).
    static const QRegularExpression split("[\r\n]");
    static const QRegularExpression step_re(R"(step (\d+)/(\d+) \| ([\d.]+) tok/s.*ETA (\S+))");
    QStringList parts = partial_.split(split);
    partial_ = parts.takeLast();
    for (const QString& line : parts) {
        if (line.isEmpty()) continue;
        output_ += line + '\n';
        auto m = step_re.match(line);
        if (m.hasMatch())
            emit progress({m.captured(1).toLongLong(), m.captured(2).toLongLong(), m.captured(3).toDouble(),
                           m.captured(4), line});
    }
}

}  // namespace lincat::studio
