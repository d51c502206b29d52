// Reads the saved hidden states of one block (a state dump's shards, memory-mapped): rows are
// copied out on request, so a block trains from a dump far larger than RAM. Opening verifies
// the block's shards and the token file against the manifest's sha256.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blocks/state_manifest.h"
#include "util/torch_prelude.h"

namespace lincat {

class BlockStates {
  public:
    static BlockStates open(const std::string& dir, int64_t block);

    const StateManifest& manifest() const { return manifest_; }
    const StateBlock& block() const { return manifest_.blocks.at(size_t(block_)); }
    // Rows (by index within the split) of the state entering the block: (B, T, C) float32.
    torch::Tensor rows(const std::string& split, const torch::Tensor& index) const;
    torch::Tensor tokens(const std::string& split) const;  // (N, T) int64

  private:
    struct Shard {
        StateShard info;
        std::shared_ptr<SafetensorsFile> file;
        const TensorInfo* tensor = nullptr;
    };
    StateManifest manifest_;
    int64_t block_ = 0;
    std::vector<Shard> train_, eval_;
    torch::Tensor train_tokens_, eval_tokens_;
};

}  // namespace lincat
