#include "util/progress.h"

#include <algorithm>
#include <mutex>

#include "util/events.h"

namespace lincat {

namespace {
std::mutex sink_mutex;
ProgressSink& sink() {
    static ProgressSink s;
    return s;
}
}  // namespace

void set_progress_sink(ProgressSink s) {
    std::lock_guard<std::mutex> lock(sink_mutex);
    sink() = std::move(s);
}

void report_progress(const Progress& p) {
    emit_event("progress", {{"label", p.label},
                            {"done", p.done},
                            {"total", p.total},
                            {"unit", p.unit},
                            {"rate", p.rate},
                            {"eta_seconds", p.eta_seconds}});
    std::lock_guard<std::mutex> lock(sink_mutex);
    if (sink()) sink()(p);
}

ProgressMeter::ProgressMeter(std::string label, int64_t total, std::string unit, double min_interval)
    : min_interval_(min_interval), start_(std::chrono::steady_clock::now()), last_(start_) {
    p_.label = std::move(label);
    p_.total = total;
    p_.unit = std::move(unit);
}

void ProgressMeter::update(int64_t done) {
    auto now = std::chrono::steady_clock::now();
    const bool last = done >= p_.total;
    if (!last && reported_ && std::chrono::duration<double>(now - last_).count() < min_interval_) return;
    const double secs = std::max(std::chrono::duration<double>(now - start_).count(), 1e-9);
    p_.done = done;
    p_.rate = double(done) / secs;
    p_.eta_seconds = p_.rate > 0 ? double(p_.total - done) / p_.rate : 0;
    last_ = now;
    reported_ = true;
    report_progress(p_);
}

}  // namespace lincat
