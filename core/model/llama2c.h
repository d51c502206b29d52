// llama2.c checkpoints (Karpathy's "legacy" model.bin): a 7 x int32 header, then fp32
// weights grouped by kind across layers. The importer writes a Hugging Face folder.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace lincat {

struct Llama2cHeader {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    bool shared_classifier;  // vocab_size > 0 in the file means tied embeddings
    uint64_t expected_file_size() const;
};

// Validates the header against the file size; `label` names the file. Torch-free.
Llama2cHeader parse_llama2c_header(const uint8_t* bytes, size_t size, const std::string& label);
ModelConfig llama2c_config(const Llama2cHeader& h);

struct ImportOptions {
    std::string model_bin, tokenizer_bin, out_dir;
};

// Writes config.json, model.safetensors (fp32, q/k rows permuted for rotate-half RoPE),
// tokenizer.json (converted from tokenizer.bin) and a copy of tokenizer.bin into out_dir,
// all through a temp folder renamed at the end.
void import_llama2c(const ImportOptions& options);

}  // namespace lincat
