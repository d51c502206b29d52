#include "train/transfer.h"

#include "attention/softmax.h"
#include "util/error.h"

namespace lincat {

TransferAttentionImpl::TransferAttentionImpl(std::shared_ptr<HybridAttentionImpl> s, int64_t sliding_window, bool xent)
    : student(std::move(s)), sliding_window_(sliding_window), xent_(xent) {
    register_module("student", student);
}

torch::Tensor TransferAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                             AttentionState* state) {
    if (state) fail("attention transfer runs on whole sequences; it has no decode state");
    torch::Tensor teacher, teacher_weights;
    {
        torch::NoGradGuard ng;
        teacher = softmax_attention(q, k, v, 0, sliding_window_, xent_ ? &teacher_weights : nullptr);
    }
    // The rest of the model runs without grad; the student's own graph is built here.
    torch::AutoGradMode grad_on(true);
    auto y = student->forward(q.detach(), k.detach(), v.detach(), nullptr);
    last_mse = torch::mse_loss(y.to(torch::kFloat32), teacher.to(torch::kFloat32));
    if (xent_) {
        // Cross-entropy of the student's weights under the teacher's, per query row, averaged.
        auto w = student->attention_weights_with_grad(q.detach(), k.detach());  // (B, H, T, T)
        last_xent = -(teacher_weights * torch::log(w.clamp_min(1e-12))).sum(-1).mean();
    }
    return teacher;
}

std::unique_ptr<AttentionState> TransferAttentionImpl::new_state() const {
    return student->new_state();
}

}  // namespace lincat
