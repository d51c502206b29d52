#include "blocks/slurm.h"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "util/error.h"
#include "util/file.h"

namespace lincat {

namespace fs = std::filesystem;

std::string slurm_time(double hours) {
    int64_t minutes = std::max<int64_t>(10, int64_t(std::ceil(hours * 60)));
    char buf[48];
    std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:00", (long long)(minutes / 1440), (long long)(minutes / 60 % 24),
                  (long long)(minutes % 60));
    return buf;
}

// Single-quoted for bash.
static std::string q(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

static std::string header(const std::string& name, const SlurmOptions& o, const std::string& time,
                          const std::string& mem, int64_t gpus, const std::string& log, const std::string& extra = "") {
    std::string h = "#!/bin/bash\n";
    h += "#SBATCH --job-name=" + name + "\n";
    h += "#SBATCH --time=" + time + "\n";
    h += "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=" + std::to_string(o.cpus_per_task) + "\n";
    if (!mem.empty()) h += "#SBATCH --mem=" + mem + "\n";
    if (gpus > 0) h += "#SBATCH --gpus-per-task=" + std::to_string(gpus) + "\n";
    if (!o.partition.empty()) h += "#SBATCH --partition=" + o.partition + "\n";
    if (!o.account.empty()) h += "#SBATCH --account=" + o.account + "\n";
    h += "#SBATCH --output=" + log + "\n";
    h += extra;  // sbatch reads #SBATCH lines only before the first command
    h += "set -euo pipefail\n";
    return h;
}

SlurmScripts slurm_scripts(const Plan& plan, const SlurmOptions& o) {
    if (o.lincat.empty() || o.model_dir.empty() || o.workspace.empty())
        fail("slurm: the lincat binary, --model and --workspace are required");
    if (o.cpus_per_task < 1 || o.gpus_per_task < 0) fail("slurm: --cpus-per-task must be >= 1, --gpus >= 0");
    const int64_t k = o.k ? o.k : plan.recommended_k;
    if (k == 0) fail("slurm: the plan recommends no k (", plan.reason, "); pass --k");
    // A plan printed for one k may lack the row wanted: recompute it from the plan's inputs.
    const PlanRow computed = plan.row(k) ? *plan.row(k) : plan_row(plan.input, k);
    const PlanRow* row = &computed;
    const std::string states = o.states_dir.empty() ? o.workspace + "/states/k" + std::to_string(k) : o.states_dir;
    // Host memory: the plan models GPU memory; a block job needs at least the frozen weights of
    // its layers in host RAM as well, so ask for the GPU figure (at least 4 GB) unless told.
    auto gb = [](double bytes) { return std::to_string(std::max<int64_t>(4, int64_t(std::ceil(bytes / 1e9)))) + "G"; };
    const std::string mem = o.mem.empty() ? gb(row->gpu_bytes_per_block) : o.mem;
    const std::string logs = o.workspace + "/logs";
    const std::string common = " --model " + q(o.model_dir) + " --workspace " + q(o.workspace);

    SlurmScripts s;
    s.k = k, s.blocks = row->blocks;
    if (!row->fits)
        s.warnings.push_back("k = " + std::to_string(k) + " does not fit the plan's limits (" +
                             (row->fits_gpu ? "disk" : "GPU memory") + ")");
    // One dump job per block, chained: job b writes the states entering block b from block b-1's
    // (a process holds one block's layers). Each block trains as soon as its own input exists.
    const std::string nb = std::to_string(row->blocks);
    const double dump_job_hours = row->blocks > 1 ? row->dump_hours / double(row->blocks - 1) : 0.0;
    const std::string dump_mem = o.mem.empty() ? gb(row->dump_gpu_bytes) : o.mem;
    s.files.push_back({"dump.sbatch", header("lincat-dump", o, slurm_time(dump_job_hours * o.time_factor), dump_mem,
                                             o.gpus_per_task, logs + "/dump-%j.log") +
                                          "# Usage: sbatch dump.sbatch BLOCK (submit.sh chains 0.." +
                                          std::to_string(row->blocks - 1) + ").\n" + "BLOCK=\"$1\"\n" + q(o.lincat) +
                                          " dump-states" + common + " --k " + std::to_string(k) + " --out " +
                                          q(states) + " --block \"$BLOCK\"" +
                                          (o.dump_args.empty() ? "" : " " + o.dump_args) + "\n"});
    s.files.push_back(
        {"block.sbatch", header("lincat-block", o, slurm_time(row->block_hours * o.time_factor), mem, o.gpus_per_task,
                                logs + "/block-%j.log") +
                             "# Usage: sbatch block.sbatch BLOCK; a requeued job resumes its block's unfinished run.\n"
                             "BLOCK=\"${1:-${SLURM_ARRAY_TASK_ID:-}}\"\n" +
                             q(o.lincat) + " distill" + common + " --states " + q(states) + " --block \"$BLOCK\"" +
                             (o.distill_args.empty() ? "" : " " + o.distill_args) + "\n"});
    s.files.push_back(
        {"stitch.sbatch", header("lincat-stitch", o, slurm_time(1.0), mem, o.gpus_per_task, logs + "/stitch-%j.log") +
                              q(o.lincat) + " stitch" + common + " --states " + q(states) + "\n"});
    s.files.push_back({"submit.sh",
                       "#!/bin/bash\n"
                       "# Submits one dump job per block, each after the previous one (block b's input needs block\n"
                       "# b-1's); each block's training after its own dump job; the stitch after every block.\n"
                       "set -euo pipefail\n"
                       "cd \"$(dirname \"$0\")\"\n"
                       "mkdir -p " +
                           q(logs) +
                           "\n"
                           "prev=\"\"\n"
                           "trained=\"\"\n"
                           "for b in $(seq 0 " +
                           std::to_string(row->blocks - 1) +
                           "); do\n"
                           "  dep=\"\"\n"
                           "  [ -n \"$prev\" ] && dep=\"--dependency=afterok:$prev\"\n"
                           "  prev=$(sbatch --parsable --job-name=lincat-dump-$b $dep dump.sbatch \"$b\")\n"
                           "  prev=${prev%%;*}\n"
                           "  t=$(sbatch --parsable --job-name=lincat-block-$b --dependency=afterok:$prev block.sbatch "
                           "\"$b\")\n"
                           "  trained=\"$trained:${t%%;*}\"\n"
                           "  echo \"block $b: dump $prev, training ${t%%;*}\"\n"
                           "done\n"
                           "stitch=$(sbatch --parsable --dependency=afterok$trained stitch.sbatch)\n"
                           "echo \"" +
                           nb + " blocks; stitch ${stitch%%;*}\"\n"});
    return s;
}

SlurmScripts emit_slurm(const Plan& plan, const SlurmOptions& o, const std::string& dir) {
    SlurmScripts s = slurm_scripts(plan, o);
    fs::create_directories(dir);
    for (auto& [name, text] : s.files) {
        write_file_atomic(dir + "/" + name, text);
        ::chmod((dir + "/" + name).c_str(), 0755);
    }
    return s;
}

}  // namespace lincat
