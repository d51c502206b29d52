// The manifest of a hidden-state dump (DESIGN.md 1.6): which layers form each block, and for
// every block the safetensors shards holding the hidden state entering its first layer, with
// their rows, sizes and sha256. Torch-free, so it is fuzzed and sanitized with the parsers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace lincat {

struct StateShard {
    int64_t block = 0;
    std::string split;  // "train" or "eval"
    int64_t row_begin = 0, rows = 0;
    std::string file;  // relative to the dump folder
    uint64_t bytes = 0;
    std::string sha256;
};

struct StateBlock {
    int64_t index = 0, first_layer = 0, layers = 0;  // layers [first_layer, first_layer + layers)
};

struct StateManifest {
    std::string base_model_hash;
    int64_t num_layers = 0, hidden = 0, k = 0, seq_len = 0;
    DType dtype = DType::F32;
    int64_t train_rows = 0, eval_rows = 0;
    std::string tokens_file, tokens_sha256;  // train_tokens (N, T) and eval_tokens (M, T), int64
    std::string data_json;                   // the DataSpec the rows came from (JSON object)
    std::vector<StateBlock> blocks;
    std::vector<StateShard> shards;  // per block, train shards then eval shards, by row
    // A streaming dump writes blocks in order; ready.json lists blocks [0, blocks_ready) while
    // later ones are still being dumped, so their training can start. -1: every block (manifest.json).
    int64_t blocks_ready = -1;
    bool whole() const { return blocks_ready < 0 || blocks_ready == int64_t(blocks.size()); }
    bool block_ready(int64_t b) const { return whole() || b < blocks_ready; }

    int64_t rows(const std::string& split) const { return split == "train" ? train_rows : eval_rows; }
    // The shards of one block and split, in row order.
    std::vector<StateShard> block_shards(int64_t block, const std::string& split) const;
    uint64_t shard_bytes(int64_t rows) const;  // rows x seq_len x hidden x dtype size
    uint64_t total_bytes() const;
};

// Blocks of k consecutive layers: ceil(L / k) of them, the last one possibly shorter.
// Throws for k outside [1, L].
std::vector<StateBlock> make_blocks(int64_t num_layers, int64_t k);

// What identifies the states entering one block: the token file's and the block's shards'
// sha256 (and the layout). The same from ready.json and from the final manifest.json, so a block
// trained while later blocks were still being dumped stitches with the finished dump.
std::string block_states_fingerprint(const StateManifest& m, int64_t block);

// Relative file names inside a folder: no absolute paths, no "..", no empty parts.
void check_relative_path(const std::string& path, const std::string& label);

constexpr size_t kMaxManifestBytes = 64u << 20;

// Parses and validates everything: counts, block layout, shard rows tiling each split with
// no gap or overlap, byte sizes (overflow checked), sha256 spelling, paths confined to the
// folder. Errors name `label` and the field.
StateManifest parse_state_manifest(const std::string& text, const std::string& label);
std::string state_manifest_to_json(const StateManifest& m);

}  // namespace lincat
