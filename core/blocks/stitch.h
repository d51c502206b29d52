// `lincat stitch`: the trained blocks of a state dump merged into one linearized checkpoint,
// recorded as a completed stage-1 ("distill") run, so stage 2, eval, generate and export take it
// like any joint run. The stitched model is evaluated against the teacher on the dump's
// held-out rows (perplexity, top-1, KL, per-layer MSE).
#pragma once

#include <string>
#include <vector>

#include "eval/compare.h"
#include "store/workspace.h"

namespace lincat {

struct StitchOutcome {
    int64_t run = 0;
    std::string checkpoint;
    std::vector<int64_t> block_runs;  // by block
    ModelComparison comparison;       // teacher vs stitched student, held-out rows
};

// block_runs empty: for each block of the dump, the latest completed distill-block run trained
// from this dump (same manifest). Otherwise exactly one run per block.
StitchOutcome stitch_blocks(Workspace& ws, const std::string& model_dir, const std::string& states_dir,
                            const std::vector<int64_t>& block_runs);

}  // namespace lincat
