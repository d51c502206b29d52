// The evaluation a run is known by: the newest completed eval run of it (named by --run, or by
// one of its checkpoint folders), else the run's own results (a stitched run records its
// figures itself). One place for the model card, the studio's run tree and its comparisons.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "store/workspace.h"

namespace lincat {

// The results JSON (eval's document) of `run`'s newest evaluation; nullopt when it has none.
std::optional<std::string> newest_evaluation(const Workspace& ws, int64_t run);
// The same for every run of the workspace at once (runs without one are left out); an eval run
// maps to its own document.
std::map<int64_t, std::string> newest_evaluations(const Workspace& ws);

}  // namespace lincat
