// Distillation and finetuning data: token sequences of a fixed length, from the teacher's
// own samples (fixed seed, cached in the workspace), plain text files, or Alpaca-style JSONL.
#pragma once

#include <string>
#include <vector>

#include "model/llama.h"
#include "model/tokenizer.h"

namespace lincat {

struct DataSpec {
    std::vector<std::string> text_files;   // UTF-8; documents separated by blank lines
    std::vector<std::string> jsonl_files;  // {"instruction", "input", "output"} per line
    int64_t teacher_sequences = 256;       // used when no files are given
    int64_t seq_len = 256;
    uint64_t seed = 0;
    double eval_fraction = 0.1;  // the last sequences form the held-out split
};

// {"text_files", "jsonl_files", "teacher_sequences", "seq_len", "seed", "eval_fraction"}.
std::string data_spec_to_json(const DataSpec& spec);
DataSpec data_spec_from_json(const std::string& text, const std::string& label);

struct TokenData {
    torch::Tensor train;  // (N, seq_len) int64
    torch::Tensor eval;   // (M, seq_len) int64
};

// Samples `n` sequences of `len` tokens from BOS in batches with a KV cache (temperature 1).
torch::Tensor sample_teacher_sequences(LlamaModel& model, int64_t n, int64_t len, uint64_t seed, int32_t bos);

std::vector<int32_t> tokens_from_text_file(const Tokenizer& tok, const std::string& path);
std::vector<int32_t> tokens_from_alpaca_jsonl(const Tokenizer& tok, const std::string& path);

// Builds (or loads from cache_dir) the sequences, then splits them deterministically.
TokenData load_token_data(const DataSpec& spec, LlamaModel& teacher, const Tokenizer& tok, const std::string& cache_dir,
                          const std::string& model_hash);

}  // namespace lincat
