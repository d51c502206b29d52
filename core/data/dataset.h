// Distillation and finetuning data: token sequences of a fixed length, from the teacher's
// own samples (fixed seed, cached in the workspace), plain text files, or Alpaca-style JSONL.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "data/data_spec.h"
#include "data/inverse_cdf.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace lincat {

struct TokenData {
    torch::Tensor train;  // (N, seq_len) int64
    torch::Tensor eval;   // (M, seq_len) int64
};

// Samples `n` sequences of `len` tokens from BOS with a KV cache (temperature 1), as many rows
// at a time as fit `sampling_batch_rows` (max_batch > 0 caps it), reporting progress. A row's
// tokens depend on the seed and its index only, not on the batching. With a `dtype` other than
// the model's, a copy of the model in that dtype samples (the KV cache follows it).
// `times`, where given, receives where the time went (lincat bench sample prints it).
struct SamplingTimes {
    double forward_seconds = 0;  // the model's steps: matmuls, attention over the KV cache
    double pick_seconds = 0;     // inverse_cdf_sample on the logits
    int64_t batch_rows = 0;      // rows sampled together
};
torch::Tensor sample_teacher_sequences(LlamaModel& model, int64_t n, int64_t len, uint64_t seed, int32_t bos,
                                       int64_t max_batch = 0, std::optional<torch::Dtype> dtype = std::nullopt,
                                       SamplingTimes* times = nullptr);
// The dtype teacher samples for `spec` are drawn in on this machine (DataSpec::sample_dtype).
// Batch-256 decode is bound by the matmuls and the KV cache's reads, and bf16 halves both's
// bytes; where bf16 is only emulated, "auto" keeps the model's dtype.
torch::Dtype teacher_sampling_dtype(const DataSpec& spec);
// Rows whose KV caches and logits fit in budget_bytes (at least 1).
int64_t sampling_batch_rows(const ModelConfig& config, int64_t len, int64_t element_bytes,
                            int64_t budget_bytes = int64_t(2) << 30);

std::vector<int32_t> tokens_from_text_file(const Tokenizer& tok, const std::string& path);
std::vector<int32_t> tokens_from_alpaca_jsonl(const Tokenizer& tok, const std::string& path);

// True when load_token_data would sample the teacher (no files given, no cached samples): the
// only case that needs the whole model. A state dump otherwise never loads more than a block.
bool token_data_needs_teacher(const DataSpec& spec, const std::string& cache_dir, const std::string& model_hash);
// Builds (or loads from cache_dir) the sequences, then splits them deterministically.
TokenData load_token_data(const DataSpec& spec, LlamaModel& teacher, const Tokenizer& tok, const std::string& cache_dir,
                          const std::string& model_hash);

}  // namespace lincat
