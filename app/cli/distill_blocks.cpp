#include "cli/distill_blocks.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "blocks/block_distill.h"
#include "blocks/state_dump.h"
#include "cli/common.h"
#include "cli/outcomes.h"
#include "util/error.h"
#include "util/json.h"
#include "util/sha256.h"

extern char** environ;

namespace lincat::cli {

namespace fs = std::filesystem;

namespace {

bool process_alive(int64_t pid) {
    return pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno == EPERM);
}

// The latest distill-block run of this dump and block, if any.
std::optional<RunRecord> block_run(const Workspace& ws, const std::string& states_dir, const StateManifest& m,
                                   int64_t block) {
    std::optional<RunRecord> found;
    for (auto& r : ws.runs()) {
        if (r.kind != RunKind::DistillBlock) continue;
        BlockRunInfo info = block_run_info(r.config_json, "run " + std::to_string(r.id) + " config");
        if (info.block == block && block_run_matches(info, states_dir, m)) found = r;
    }
    return found;
}

int train_one_block(const Args& a, Workspace& ws, const std::string& model_dir, const DistillConfig& c,
                    const std::string& states_dir, int64_t block) {
    // ready.json suffices: a block trains as soon as its own input states are complete.
    const StateManifest m = load_ready_manifest(states_dir, block);
    std::optional<int64_t> resume;
    if (a.has("resume")) resume = a.get_int("resume", 0);
    if (!resume && !a.flag("fresh")) {
        if (auto r = block_run(ws, states_dir, m, block)) {
            if (r->status == RunStatus::Completed) {
                std::printf("block %lld is already trained by run %lld (--fresh trains it again)\n", (long long)block,
                            (long long)r->id);
                return 0;
            }
            if (r->status == RunStatus::Running && process_alive(r->pid) && r->pid != getpid())
                fail("block ", block, " is being trained by run ", r->id, " (pid ", r->pid, ")");
            std::fprintf(stderr, "resuming run %lld of block %lld (%s)\n", (long long)r->id, (long long)block,
                         run_status_name(r->status));
            resume = r->id;
        }
    }
    DistillOutcome o = distill_block(ws, model_dir, states_dir, block, c, resume,
                                     progress_printer("block " + std::to_string(block)), cancel_flag());
    print_distill_outcome(o, a.flag("json"), false);
    return o.status == RunStatus::Completed ? 0 : 1;
}

}  // namespace

int distill_blocks(const Args& a, const Argv& argv, Workspace& ws, const std::string& model_dir,
                   const DistillConfig& c) {
    const std::string states_dir = fs::absolute(a.get("states")).lexically_normal().string();
    if (a.has("block")) {
        if (a.has("parallel")) fail("give --block I or --parallel N, not both");
        return train_one_block(a, ws, model_dir, c, states_dir, a.get_int("block", 0));
    }
    const StateManifest m = load_state_manifest(states_dir);
    if (a.has("resume")) fail("--resume N with --states needs --block I");
    const int64_t parallel = a.get_int("parallel", 1);
    if (parallel < 1) fail("--parallel must be at least 1");

    // Each block in its own process (a crash stays in its block); logs in <workspace>/logs.
    const std::string logs = ws.dir() + "/logs";
    fs::create_directories(logs);
    std::vector<std::string> base = {"/proc/self/exe", "distill"};
    for (size_t i = 0; i < argv.size(); ++i) {
        if (argv[i] == "--parallel" || argv[i] == "--json") {
            if (argv[i] == "--parallel") ++i;
            continue;
        }
        base.push_back(argv[i]);
    }
    const int64_t nblocks = int64_t(m.blocks.size());
    // N processes share the cores: each takes its part, or OpenMP threads oversubscribe and spin
    // (6 one-layer blocks, 2 at a time on 2 cores: 127 s with 2 threads each, 17.5 s one at a time).
    if (!std::getenv("LINCAT_THREADS")) {
        const int64_t cores = std::max<int64_t>(1, int64_t(sysconf(_SC_NPROCESSORS_ONLN)));
        setenv("LINCAT_THREADS", std::to_string(std::max<int64_t>(1, cores / parallel)).c_str(), 1);
    }
    std::map<pid_t, int64_t> running;
    std::vector<int> exit_code(size_t(nblocks), -1);
    int64_t next = 0;
    auto start = [&](int64_t b) {
        std::vector<std::string> args = base;
        args.push_back("--block");
        args.push_back(std::to_string(b));
        std::vector<char*> cargs;
        for (auto& s : args) cargs.push_back(s.data());
        cargs.push_back(nullptr);
        const std::string log = logs + "/block-" + std::to_string(b) + ".log";
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        pid_t pid;
        int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, cargs.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) fail("cannot start the process for block ", b, ": ", std::strerror(rc));
        running[pid] = b;
        std::fprintf(stderr, "block %lld: started (pid %d, log %s)\n", (long long)b, int(pid), log.c_str());
    };
    while (next < nblocks || !running.empty()) {
        while (next < nblocks && int64_t(running.size()) < parallel) start(next++);
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            fail("waitpid: ", std::strerror(errno));
        }
        auto it = running.find(pid);
        if (it == running.end()) continue;
        const int64_t b = it->second;
        running.erase(it);
        exit_code[size_t(b)] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::fprintf(stderr, "block %lld: %s\n", (long long)b,
                     exit_code[size_t(b)] == 0 ? "done"
                                               : ("failed (exit " + std::to_string(exit_code[size_t(b)]) + ", see " +
                                                  logs + "/block-" + std::to_string(b) + ".log)")
                                                     .c_str());
    }

    // Summary from the database: each block's run, status and held-out MSE before and after.
    int failed = 0;
    json rows = json::array();
    const bool as_json = a.flag("json");
    if (!as_json)
        std::printf("%6s %8s %6s %11s %14s %14s\n", "block", "layers", "run", "status", "mse initial", "mse final");
    for (int64_t b = 0; b < nblocks; ++b) {
        auto r = block_run(ws, states_dir, m, b);
        auto evals = r ? ws.steps(r->id, "eval") : std::vector<StepRecord>{};
        auto mean = [](const std::vector<double>& v) {
            double s = 0;
            for (double x : v) s += x;
            return v.empty() ? 0.0 : s / double(v.size());
        };
        double init = evals.empty() ? 0 : mean(evals.front().layer_mse),
               fin = evals.empty() ? 0 : mean(evals.back().layer_mse);
        const StateBlock& sb = m.blocks[size_t(b)];
        std::string status = r ? run_status_name(r->status) : "missing";
        if (exit_code[size_t(b)] != 0 || !r || r->status != RunStatus::Completed) ++failed;
        if (!as_json)
            std::printf("%6lld %4lld..%-3lld %6lld %11s %14.6g %14.6g\n", (long long)b, (long long)sb.first_layer,
                        (long long)(sb.first_layer + sb.layers - 1), (long long)(r ? r->id : 0), status.c_str(), init,
                        fin);
        rows.push_back(
            {{"block", b}, {"run", r ? r->id : 0}, {"status", status}, {"mse_initial", init}, {"mse_final", fin}});
    }
    if (as_json) std::printf("%s\n", json({{"blocks", rows}, {"blocks_failed", failed}}).dump().c_str());
    if (failed) fail(failed, " of ", nblocks, " blocks did not complete; rerun the same command to resume them");
    if (!as_json)
        std::printf("all %lld blocks trained; next: lincat stitch --states %s --workspace %s\n", (long long)nblocks,
                    states_dir.c_str(), ws.dir().c_str());
    return 0;
}

}  // namespace lincat::cli
