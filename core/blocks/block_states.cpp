#include "blocks/block_states.h"

#include <filesystem>

#include "blocks/state_dump.h"
#include "model/weights.h"
#include "util/error.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

static void verify_file(const std::string& path, const std::string& sha, const std::string& what) {
    if (!fs::exists(path))
        fail(path, ": missing (", what, "); rerun lincat dump-states with the same options to redo it");
    std::string actual = sha256_file(path);
    if (actual != sha)
        fail(path, ": sha256 ", actual, " does not match the manifest (", sha, "); the ", what,
             " is corrupt; rerun lincat dump-states to redo it");
}

BlockStates BlockStates::open(const std::string& dir, int64_t block) {
    BlockStates s;
    s.manifest_ = load_ready_manifest(dir, block);  // whole, or ready.json while later blocks are dumped
    const StateManifest& m = s.manifest_;
    if (block < 0 || block >= int64_t(m.blocks.size()))
        fail("block ", block, " does not exist: the dump in ", dir, " has ", m.blocks.size(), " blocks (0..",
             m.blocks.size() - 1, ")");
    s.block_ = block;
    verify_file(dir + "/" + m.tokens_file, m.tokens_sha256, "token file");
    WeightStore tokens = WeightStore::open_file(dir + "/" + m.tokens_file);
    s.train_tokens_ = tokens.get("train_tokens", torch::kLong);
    s.eval_tokens_ = tokens.get("eval_tokens", torch::kLong);
    if (s.train_tokens_.sizes() != torch::IntArrayRef({m.train_rows, m.seq_len}) ||
        s.eval_tokens_.sizes() != torch::IntArrayRef({m.eval_rows, m.seq_len}))
        fail(dir, "/", m.tokens_file, ": token shapes do not match the manifest");
    for (const std::string split : {"train", "eval"}) {
        for (auto& info : m.block_shards(block, split)) {
            const std::string path = dir + "/" + info.file;
            verify_file(path, info.sha256, "state shard of block " + std::to_string(block));
            Shard sh{info, std::make_shared<SafetensorsFile>(SafetensorsFile::open(path)), nullptr};
            sh.tensor = sh.file->find("hidden_states");
            if (!sh.tensor) fail(path, ": no tensor 'hidden_states'");
            if (sh.tensor->dtype != m.dtype || sh.tensor->shape != std::vector<int64_t>{info.rows, m.seq_len, m.hidden})
                fail(path, ": hidden_states is ", dtype_name(sh.tensor->dtype), " ", shape_str(sh.tensor->shape),
                     ", the manifest says ", dtype_name(m.dtype), " [", info.rows, ",", m.seq_len, ",", m.hidden, "]");
            (split == "train" ? s.train_ : s.eval_).push_back(sh);
        }
    }
    return s;
}

torch::Tensor BlockStates::tokens(const std::string& split) const {
    return split == "train" ? train_tokens_ : eval_tokens_;
}

torch::Tensor BlockStates::rows(const std::string& split, const torch::Tensor& index) const {
    const std::vector<Shard>& shards = split == "train" ? train_ : eval_;
    const int64_t n = manifest_.rows(split), T = manifest_.seq_len, C = manifest_.hidden;
    const size_t row_bytes = size_t(T * C) * dtype_size(manifest_.dtype);
    auto idx = index.to(torch::kLong).contiguous();
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; i < idx.numel(); ++i) {
        int64_t r = idx.data_ptr<int64_t>()[i];
        if (r < 0 || r >= n) fail("block states: row ", r, " is outside the ", split, " split (", n, " rows)");
        // Shards tile the split in order (checked by the manifest parser): find r's shard.
        auto it = std::upper_bound(shards.begin(), shards.end(), r,
                                   [](int64_t v, const Shard& s) { return v < s.info.row_begin; });
        const Shard& sh = *std::prev(it);
        const uint8_t* p = sh.file->data(*sh.tensor) + size_t(r - sh.info.row_begin) * row_bytes;
        auto view = torch::from_blob(const_cast<uint8_t*>(p), {T, C},
                                     torch::TensorOptions().dtype(torch_dtype_of(manifest_.dtype)));
        out.push_back(view.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true));
        // The copy is all the job keeps: drop the file's pages from its resident set (a block
        // job reads every state of its split once per epoch; they would all stay counted).
        sh.file->release(*sh.tensor, size_t(r - sh.info.row_begin) * row_bytes, row_bytes);
    }
    return torch::stack(out);
}

}  // namespace lincat
