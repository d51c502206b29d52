// `lincat dump-states`: run the teacher once over the training data and save the hidden state
// entering each block of k layers (DESIGN.md 1.6), as sharded safetensors with a manifest and
// checksums. It streams the model: the states entering block b+1 are block b's layers applied
// to the saved states entering b, so a process holds one block's weights at a time, never the
// whole model (only sampling teacher data, when no cached samples or files are given, loads it).
// Resumable: finished shards are journaled (progress.jsonl) and kept; ready.json lists the
// blocks whose states are complete (their training may start); the manifest is written last,
// so its presence means the dump is whole. Free disk is checked first against the planner.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "blocks/state_manifest.h"
#include "data/dataset.h"
#include "store/workspace.h"

namespace lincat {

struct StateDumpConfig {
    int64_t k = 0;
    DataSpec data;
    DType dtype = DType::F32;  // F32 keeps block training exact; BF16 halves the disk
    int64_t shard_rows = 64;   // sequences per shard file
    int64_t batch = 8;         // sequences per teacher forward (the micro-batch)
    std::string out_dir;       // empty: <workspace>/states/k<k>
    int64_t block = -1;        // only the states entering this block (one Slurm job per block); -1: all
};

struct StateDumpProgress {
    int64_t rows_done = 0, rows_total = 0;
    double rows_per_second = 0, eta_seconds = 0;
};

struct StateDumpOutcome {
    int64_t run = 0;
    std::string dir;
    RunStatus status = RunStatus::Created;  // Completed or Cancelled (errors throw)
    bool already_complete = false;          // a whole dump was found and re-verified; nothing written
    StateManifest manifest;
    uint64_t bytes = 0, needed_bytes = 0;  // written in all; the planner's figure
    int64_t shards_written = 0, shards_kept = 0;
    int64_t blocks_ready = 0;  // blocks whose input states are complete
    // Measured for this process: resident memory (baseline = before any tensor), tokens pushed
    // through layers per second, bytes of shards written.
    int64_t baseline_rss_bytes = 0, peak_rss_bytes = 0;
    double tokens_per_second = 0, seconds = 0;
    uint64_t bytes_written = 0;
};

StateDumpOutcome dump_states(Workspace& ws, const std::string& model_dir, const StateDumpConfig& config,
                             const std::function<void(const StateDumpProgress&)>& on_progress,
                             const std::atomic<bool>* cancel = nullptr);

// The configuration a dump-states run was started with (to continue it: `lincat resume`).
StateDumpConfig dump_config_from_run(const Workspace& ws, const RunRecord& run);

// Free bytes where `dir` lives (its nearest existing parent). LINCAT_FREE_DISK_BYTES overrides
// it, so tests can stand in for a small disk.
uint64_t free_disk_bytes(const std::string& dir);

// <dir>/manifest.json, read and validated; a missing one means the dump is unfinished.
StateManifest load_state_manifest(const std::string& dir);
// The manifest that covers `block`: manifest.json, or ready.json while later blocks are still
// being dumped; fails naming what is missing when block's states are not complete yet.
StateManifest load_ready_manifest(const std::string& dir, int64_t block);

}  // namespace lincat
