// What a person wants to know about a model folder before working on it: family, size,
// attention layout, RoPE, vocabulary and tokenizer kind. Reading it also checks the folder
// (config.json, tokenizer files, safetensors headers and index), so a folder that cannot be
// loaded says why, naming the file and field. Torch-free: the studio calls it on open.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace lincat {

struct ModelSummary {
    ModelConfig config;
    std::string family;          // "Llama 3.1", "Qwen 3", ...
    std::string tokenizer_kind;  // "byte-level BPE" | "SentencePiece BPE"
    int64_t tokenizer_vocab = 0;
    int64_t weight_bytes = 0;  // the safetensors data, all shards
    int64_t shards = 0;
    std::string rope;  // "theta 500000, llama3 scaling x8 (from 8192)"
};

ModelSummary summarize_model(const std::string& dir);
// One line: "Llama 3.1, 8.03B parameters, 32 layers, 32 heads / 8 kv heads x 128, ...".
std::string model_summary_text(const ModelSummary& summary);

}  // namespace lincat
