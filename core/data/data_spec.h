// Which sequences a run trains and evaluates on, as plain data (no torch): recorded in run
// configs and state-dump manifests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "util/options.h"

namespace lincat {

struct DataSpec {
    std::vector<std::string> text_files;   // UTF-8; documents separated by blank lines
    std::vector<std::string> jsonl_files;  // {"instruction", "input", "output"} per line
    int64_t teacher_sequences = 256;       // used when no files are given
    int64_t seq_len = 256;                 // capped by the model: default_seq_len()
    uint64_t seed = 0;
    double eval_fraction = 0.1;  // the last sequences form the held-out split
    // Precision the teacher samples in: "auto" (bf16 where the hardware computes it natively,
    // a GPU or a CPU with AVX512-BF16 / AMX; else the model's), "model" (as loaded), "bf16".
    std::string sample_dtype = "auto";
    bool operator==(const DataSpec&) const = default;
};

// The sequence length a run uses when none is given: DataSpec's, capped by the model's context.
inline int64_t default_seq_len(int64_t max_position_embeddings) {
    return std::min<int64_t>(DataSpec{}.seq_len, max_position_embeddings);
}

// {"text_files", "jsonl_files", "teacher_sequences", "seq_len", "seed", "eval_fraction",
// "sample_dtype"}.
const FieldTable<DataSpec>& data_fields();
std::string data_spec_to_json(const DataSpec& spec);
// Records from before sample_dtype read "model": those runs sampled the teacher as loaded.
DataSpec data_spec_from_json(const std::string& text, const std::string& label);

}  // namespace lincat
