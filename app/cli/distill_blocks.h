// `lincat distill --states DIR [--block I | --parallel N]`: block-wise stage 1 from a state dump.
#pragma once

#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "store/workspace.h"
#include "train/distill.h"

namespace lincat::cli {

// One block (--block I: resumes the block's unfinished run, or says it is done), or every block
// of the dump as local child processes, N at a time, each logging to <workspace>/logs/.
int distill_blocks(const Args& a, const Argv& argv, Workspace& ws, const std::string& model_dir,
                   const DistillConfig& config);

}  // namespace lincat::cli
