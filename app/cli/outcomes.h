// What the training commands print and emit when they end (a table or --json, and the
// "result" event), shared by the commands that start a run and by `lincat resume`.
#pragma once

#include <string>

#include "blocks/state_dump.h"
#include "store/workspace.h"
#include "train/distill.h"
#include "train/finetune.h"
#include "util/json.h"

namespace lincat::cli {

// The "result" event, and the JSON on stdout with --json; true when that was all to print.
bool emit_result(const json& result, bool as_json);

void print_distill_outcome(const DistillOutcome& o, bool as_json, bool with_ppl);
void print_finetune_outcome(const FinetuneOutcome& o, bool as_json);
// Runs (or continues) a state dump with a progress line, then reports it; the exit code.
int dump_states_and_report(Workspace& ws, const std::string& model_dir, const StateDumpConfig& config, bool as_json);

}  // namespace lincat::cli
