// LoLCATs checkpoints in and out, and PEFT adapters out (interop/lolcats_format.h has the names
// and YAML). An import becomes ordinary runs in a workspace, so eval, generate, export and the
// studio treat it as a native run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/workspace.h"

namespace lincat {

struct LolcatsImportFiles {
    std::string distill;          // distill .pt (feature maps, window factors)
    std::string finetune;         // optional finetune .pt (LoRA)
    std::string config;           // the LoLCATs model YAML (attention block)
    std::string finetune_config;  // optional finetune YAML (LoRA alpha, targets)
};

struct LolcatsImport {
    int64_t distill_run = 0, finetune_run = 0;  // finetune_run 0 without --finetune
    std::string checkpoint;                     // the last run's checkpoint folder
    std::vector<std::string> notes;             // what was assumed, for the user
};

// Validates every key and shape against model_dir's config before anything is written; then
// records a completed distill run (and a finetune run on top of it) whose best checkpoint
// holds the same tensors in lincat's format.
LolcatsImport import_lolcats(Workspace& ws, const std::string& model_dir, const LolcatsImportFiles& files);

// Writes distill.pt (+ finetune.pt for a stage-2 checkpoint), model.yaml (+ finetune.yaml) into
// a new folder out_dir, atomically, in fp32, with model_card as README.md when given. Returns
// the files written.
std::vector<std::string> export_lolcats(const std::string& model_dir, const std::string& checkpoint_dir,
                                        const std::string& out_dir, const std::string& model_card = "");

// Writes adapter_model.safetensors + adapter_config.json as PEFT saves a LoRA adapter (stage-2
// checkpoints only; the feature maps have no place in PEFT: export them with --format lolcats).
std::vector<std::string> export_peft(const std::string& model_dir, const std::string& checkpoint_dir,
                                     const std::string& out_dir, const std::string& model_card = "");

}  // namespace lincat
