// The base model a pipeline loads once and hands to every stage (stage 1, stage 2, the
// held-out figures): its folder, fingerprint, weights with softmax attention, tokenizer. A
// stage that changes the model's attention cores or adapters puts them back when it ends.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/llama.h"
#include "model/tokenizer.h"

namespace lincat {

struct BaseModel {
    std::string dir, hash;
    LlamaModel model{nullptr};  // frozen, evaluation mode
    Tokenizer tokenizer;
};

BaseModel load_base_model(const std::string& dir);

// Keeps a model's attention cores and gives them back when it goes (also on an error).
class SavedCores {
  public:
    explicit SavedCores(LlamaModel model);
    ~SavedCores();
    SavedCores(const SavedCores&) = delete;
    SavedCores& operator=(const SavedCores&) = delete;

  private:
    LlamaModel model_;
    std::vector<std::shared_ptr<AttentionCoreImpl>> cores_;
};

// A checkpoint applied to the base model in place while it lives: its linearization, and a
// stage-2 checkpoint's adapters attached (not merged), so the same weights serve as teacher
// and student in turn without a second load. Checked like load_linearized (hash, checksums).
class AppliedCheckpoint {
  public:
    AppliedCheckpoint(BaseModel& base, const std::string& checkpoint_dir);
    ~AppliedCheckpoint();
    AppliedCheckpoint(const AppliedCheckpoint&) = delete;
    AppliedCheckpoint& operator=(const AppliedCheckpoint&) = delete;

  private:
    LlamaModel model_;
    SavedCores cores_;
};

// A separate copy of the base weights (same dtype and device), frozen, in evaluation mode:
// a stage-2 student, built without reading the folder again.
LlamaModel copy_model(const LlamaModel& model);

}  // namespace lincat
