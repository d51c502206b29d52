// Helpers shared by the training and evaluation commands.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "cli/args.h"
#include "data/dataset.h"
#include "train/trainer.h"
#include "util/duration.h"
#include "util/progress.h"

namespace lincat::cli {

// A progress bar on a terminal (stderr), a line every 10 steps otherwise.
std::function<void(const TrainProgress&)> progress_printer(const std::string& label);
// The same for the core's other long steps (util/progress.h); main() installs it as the sink.
void print_core_progress(const Progress& p);

// Set by SIGINT / SIGTERM (installed by main): long jobs stop at the next step, mark their run
// cancelled (RunStatus) and keep every record, so `lincat resume` continues. A second signal ends the process.
const std::atomic<bool>* cancel_flag();
void install_cancel_handler();

// --device (cpu | cuda | cuda:N) and --dtype (auto | fp32 | bf16; auto = bf16 on a GPU) for
// the commands that compute; apply before any model is loaded.
std::vector<OptionSpec> with_compute_options(std::vector<OptionSpec> specs);
void apply_compute_options(const Args& a);

// --data's comma-separated files into a DataSpec: *.jsonl as Alpaca records, the rest as text.
void add_data_files(DataSpec& spec, const std::string& list);

// The checkpoint folder named by --checkpoint DIR, or by --run N (+ --workspace WS: the run's
// best checkpoint, else its last); "" when neither is given.
std::string checkpoint_from_args(const Args& a);

// Bytes for a bench table: "1.25 GB", "12.3 MB", "4.0 kB".
std::string human_bytes(double bytes);

}  // namespace lincat::cli
