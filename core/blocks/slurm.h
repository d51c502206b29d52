// `lincat slurm --plan PLAN --emit DIR`: the block-wise stage 1 as Slurm jobs (DESIGN.md 2):
// one dump job per block chained with afterok (each holds one block's layers), each block's
// training job after its own dump job, and a stitch job after every block (submit.sh). Resources
// from the plan. Torch-free text generation.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "plan/planner.h"

namespace lincat {

struct SlurmOptions {
    std::string lincat;         // absolute path of the lincat binary on the cluster
    std::string model_dir;      // model folder, as the nodes see it
    std::string workspace;      // shared workspace folder
    std::string states_dir;     // empty: <workspace>/states/k<k>
    int64_t k = 0;              // 0: the plan's recommended k
    int64_t gpus_per_task = 1;  // 0 for CPU-only clusters
    int64_t cpus_per_task = 8;
    std::string mem;  // e.g. "64G"; empty: from the plan
    std::string partition, account;
    std::string dump_args, distill_args;  // extra flags passed through
    double time_factor = 1.5;             // margin over the plan's hours
};

struct SlurmScripts {
    int64_t k = 0, blocks = 0;
    std::vector<std::pair<std::string, std::string>> files;  // name -> content
    std::vector<std::string> warnings;                       // e.g. the chosen k does not fit the plan's limits
};

SlurmScripts slurm_scripts(const Plan& plan, const SlurmOptions& options);

// Writes the scripts into dir (created; existing scripts are replaced atomically); returns them.
SlurmScripts emit_slurm(const Plan& plan, const SlurmOptions& options, const std::string& dir);

// Slurm's --time for a duration: minutes, at least 10, as D-HH:MM:SS.
std::string slurm_time(double hours);

}  // namespace lincat
