// `lincat distill --block I --states DIR`: attention transfer of one block's layers from the
// hidden states saved for it (DESIGN.md 1.6); the teacher outputs of each layer are computed on
// the fly, exactly as joint stage 1 does. Its own RunKind::DistillBlock run, checkpointed and resumable
// like any stage-1 run. Feature maps start from the same seeded values joint training would give
// these layers, so with one block (k = L) it reproduces joint training.
#pragma once

#include "blocks/state_manifest.h"
#include "train/distill.h"

namespace lincat {

struct BlockRunInfo {
    int64_t block = 0;
    std::string states_dir;       // absolute
    std::string states_sha256;    // block_states_fingerprint of the states it was trained from
    std::string manifest_sha256;  // runs recorded before streaming dumps: the whole manifest's sha256
};

// Reads the block fields of a distill-block run's config.
BlockRunInfo block_run_info(const std::string& config_json, const std::string& label);
// Whether a block run was trained from these states (manifest m of the dump in states_dir).
bool block_run_matches(const BlockRunInfo& info, const std::string& states_dir, const StateManifest& m);

// cfg's data spec is ignored: the rows are the dump's. Its linearize.layers (empty = all) are
// intersected with the block's layers.
DistillOutcome distill_block(Workspace& ws, const std::string& model_dir, const std::string& states_dir, int64_t block,
                             const DistillConfig& config, std::optional<int64_t> resume_run,
                             const std::function<void(const DistillProgress&)>& on_progress,
                             const std::atomic<bool>* cancel = nullptr);

}  // namespace lincat
