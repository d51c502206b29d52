// Causal softmax attention with a KV cache (optionally a Mistral-style sliding window).
// Scores and the softmax are computed in fp32 whatever the input dtype.
#pragma once

#include "attention/attention.h"

namespace lincat {

class KVCache : public AttentionState {
  public:
    // Appends k, v (B, Hkv, T, D); capacity doubles so decode is amortised O(1) per token.
    void append(const torch::Tensor& k, const torch::Tensor& v);
    torch::Tensor keys() const;    // (B, Hkv, length, D)
    torch::Tensor values() const;  // (B, Hkv, length, D)
    int64_t length() const override { return length_; }
    int64_t bytes() const override;

  private:
    torch::Tensor k_, v_;
    int64_t length_ = 0;
};

// Reference softmax attention of queries at positions [q_start, q_start + T) over keys at
// positions [0, S). Returns (B, H, T, D) in q's dtype; `weights_out`, when given, gets the
// (B, H, T, S) fp32 attention weights. Without weights_out the queries are taken in chunks
// whose fp32 scores stay under max_score_bytes, so long inputs never hold a T x S matrix.
constexpr int64_t kMaxSoftmaxScoreBytes = int64_t(256) << 20;
torch::Tensor softmax_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_start,
                                int64_t sliding_window = 0, torch::Tensor* weights_out = nullptr,
                                int64_t max_score_bytes = kMaxSoftmaxScoreBytes);

class SoftmaxAttentionImpl : public AttentionCoreImpl {
  public:
    explicit SoftmaxAttentionImpl(int64_t sliding_window = 0) : sliding_window_(sliding_window) {}
    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          AttentionState* state) override;
    std::unique_ptr<AttentionState> new_state() const override { return std::make_unique<KVCache>(); }
    std::string kind() const override { return "softmax"; }

  private:
    int64_t sliding_window_;
};

}  // namespace lincat
