// Progress of a long step that is not a training loop (teacher sampling, state dumps): the
// core reports it here, the "progress" job event goes out, and the front end's sink (the CLI's
// bar on stderr) shows it. Training stages report through their own TrainProgress callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace lincat {

struct Progress {
    std::string label;  // "sampling teacher data"
    int64_t done = 0, total = 0;
    std::string unit;  // "tokens", "rows", ...
    double rate = 0;   // units per second so far
    double eta_seconds = 0;
};

using ProgressSink = std::function<void(const Progress&)>;
void set_progress_sink(ProgressSink sink);  // empty: events only
void report_progress(const Progress& p);

// Rate and ETA from the time since construction; report() at most every `min_interval`
// seconds, and always for the last unit.
class ProgressMeter {
  public:
    ProgressMeter(std::string label, int64_t total, std::string unit, double min_interval = 0.25);
    void update(int64_t done);

  private:
    Progress p_;
    double min_interval_;
    std::chrono::steady_clock::time_point start_, last_;
    bool reported_ = false;
};

}  // namespace lincat
