// Attention transfer (DESIGN.md 1.4): a layer computes the teacher (softmax, no grad) and the
// student (hybrid) from the same q, k, v, and passes the teacher's output downstream, so every
// layer sees the original model's hidden states. The MSE of the per-head outputs is kept.
#pragma once

#include "attention/hybrid.h"

namespace lincat {

class TransferAttentionImpl : public AttentionCoreImpl {
public:
    TransferAttentionImpl(std::shared_ptr<HybridAttentionImpl> student, int64_t sliding_window);
    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          AttentionState* state) override;
    std::unique_ptr<AttentionState> new_state() const override;
    std::string kind() const override { return "transfer"; }

    std::shared_ptr<HybridAttentionImpl> student;
    torch::Tensor last_mse;  // scalar, carries the student's graph when grad is enabled

private:
    int64_t sliding_window_;
};

}  // namespace lincat
