// Perplexity over a token stream with a sliding window (as Hugging Face's guide does it):
// windows of seq_len tokens advancing by stride; each token is scored once, with as much
// context as the window gives it.
#pragma once

#include <cstdint>
#include <vector>

#include "model/llama.h"

namespace lincat {

// `lincat ppl`'s default window: the model's context, but never more than this (Llama 3.1's
// max_position_embeddings is 131072, far past what a perplexity window needs).
constexpr int64_t kDefaultPerplexityWindow = 2048;

struct PerplexityResult {
    double nll_sum = 0;
    int64_t tokens_scored = 0;
    int64_t windows = 0;
    double perplexity() const;
};

// Mean next-token negative log-likelihood over rows (N, T) of token ids, each row scored
// from its second token; perplexity = exp of it.
double sequences_nll(LlamaModel& model, const torch::Tensor& rows, int64_t batch = 8);

PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& tokens, int64_t seq_len, int64_t stride);

}  // namespace lincat
