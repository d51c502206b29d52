// Attention transfer (DESIGN.md 1.4): a layer computes the teacher (softmax, no grad) and the
// student (hybrid) from the same q, k, v, and passes the teacher's output downstream, so every
// layer sees the original model's hidden states. The MSE of the per-head outputs is kept.
#pragma once

#include "attention/hybrid.h"
#include "model/llama.h"

namespace lincat {

class TransferAttentionImpl : public AttentionCoreImpl {
  public:
    // xent: also compute the cross-entropy of the student's attention weights against the
    // teacher's (materialises T x T weights; LoLCATs' optional xent_factor term).
    TransferAttentionImpl(std::shared_ptr<HybridAttentionImpl> student, int64_t sliding_window, bool xent = false);
    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          AttentionState* state) override;
    std::unique_ptr<AttentionState> new_state() const override;
    std::string kind() const override { return "transfer"; }

    std::shared_ptr<HybridAttentionImpl> student;
    torch::Tensor last_mse;   // scalar, carries the student's graph when grad is enabled
    torch::Tensor last_xent;  // scalar when xent is on

  private:
    int64_t sliding_window_;
    bool xent_;
};

// Every hybrid layer of a model wrapped for attention transfer: the students' parameters and
// the stage-1 loss over the layers' last forward.
struct TransferLayers {
    std::vector<int64_t> layers;
    std::vector<std::shared_ptr<TransferAttentionImpl>> cores;

    std::vector<torch::Tensor> parameters() const;
    // mse_factor x mean layer MSE (+ xent_factor x mean attention cross-entropy); fills the
    // per-layer MSE of the last forward.
    torch::Tensor loss(double mse_factor, double xent_factor, std::vector<double>& layer_mse) const;
};
TransferLayers wrap_for_transfer(LlamaModel& model, bool xent);

}  // namespace lincat
