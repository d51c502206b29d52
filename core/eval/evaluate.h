// `lincat eval` as a library call: a linearized checkpoint against its base model on held-out
// rows (compare.h) and on multiple-choice tasks (multiple_choice.h), recorded in the
// workspace as an "eval" run with its JSON document. The document keeps lm-evaluation-
// harness's layout for tasks ("results": {task: {"acc,none": .., "acc_stderr,none": ..}}).
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "store/workspace.h"
#include "train/base_model.h"

namespace lincat {

struct EvalConfig {
    std::string checkpoint;               // linearized checkpoint folder (stage 1 or 2)
    int64_t source_run = 0;               // run the checkpoint came from (recorded; gives its data)
    DataSpec data;                        // held-out rows: the eval split of this data
    std::vector<std::string> text_files;  // or: all of these texts, cut into rows of data.seq_len
    std::vector<std::string> tasks;       // multiple-choice JSONL files
    int64_t max_rows = 0;                 // 0 = every held-out row
    int64_t batch = 8;
};

// The data spec of a distill or finetune run.
DataSpec run_data_spec(const Workspace& ws, int64_t run);
// The checkpoint a run is best known by: its best one, else its last.
std::string run_checkpoint(const Workspace& ws, int64_t run);

// Evaluates, records, and returns the JSON document (also stored as the run's results).
std::string evaluate_checkpoint(Workspace& ws, const std::string& model_dir, const EvalConfig& config);
// The same on a base model already loaded (the teacher; the student is a copy of its weights).
std::string evaluate_checkpoint(Workspace& ws, BaseModel& base, const EvalConfig& config);

}  // namespace lincat
