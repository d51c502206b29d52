// Token generation: prefill the prompt into a ModelState, then one token at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/llama.h"
#include "model/tokenizer.h"

namespace lincat {

struct GenerateOptions {
    int64_t max_new_tokens = 128;
    double temperature = 0.0;  // 0 = greedy
    double top_p = 1.0;
    uint64_t seed = 42;
    bool stop_at_eos = true;
    std::vector<int32_t> stop_ids = {2, 1};  // stop_tokens(tokenizer): every EOS, and BOS
    int64_t batch = 1;                       // rows generated together from the same prompt (one state each)
};

struct GenerateResult {
    std::vector<int32_t> tokens;             // generated tokens only (row 0)
    std::vector<std::vector<int32_t>> rows;  // every row's generated tokens
    double prefill_seconds = 0, decode_seconds = 0;
    int64_t state_bytes = 0;
    int64_t decode_steps = 0;  // forward passes after the prefill
    // Tokens produced per second of decoding, all rows together.
    double tokens_per_second() const;
};

// The ids a row stops at: every EOS the model folder names (Llama 3.1 Instruct has three)
// and BOS (llama2.c-trained models end a story by emitting it; Qwen's is <|endoftext|>).
std::vector<int32_t> stop_tokens(const Tokenizer& tokenizer);

// on_token(id) is called for each new token of row 0 as soon as it is chosen; return false to
// stop. Rows stop at EOS independently; generation ends when every row has stopped.
GenerateResult generate(LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                        const std::function<bool(int32_t)>& on_token = {});

}  // namespace lincat
