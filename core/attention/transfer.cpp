#include "attention/transfer.h"

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

std::vector<torch::Tensor> TransferLayers::parameters() const {
    std::vector<torch::Tensor> params;
    for (auto& t : cores)
        for (auto& p : t->student->parameters()) params.push_back(p);
    return params;
}

torch::Tensor TransferLayers::loss(double mse_factor, double xent_factor, std::vector<double>& layer_mse) const {
    std::vector<torch::Tensor> m;
    for (auto& t : cores) m.push_back(t->last_mse);
    for (auto& t : m) layer_mse.push_back(t.item<double>());
    auto loss = mse_factor * torch::stack(m).mean();
    if (xent_factor > 0) {
        std::vector<torch::Tensor> xs;
        for (auto& t : cores) xs.push_back(t->last_xent);
        loss = loss + xent_factor * torch::stack(xs).mean();
    }
    return loss;
}

TransferLayers wrap_for_transfer(LlamaModel& model, bool xent) {
    TransferLayers out;
    for (int64_t l = 0; l < model->num_layers(); ++l) {
        auto hybrid = std::dynamic_pointer_cast<HybridAttentionImpl>(model->layer(l)->self_attn->core());
        if (!hybrid) continue;
        auto t = std::make_shared<TransferAttentionImpl>(hybrid, model->config().sliding_window, xent);
        model->layer(l)->self_attn->set_core(t);
        out.cores.push_back(t);
        out.layers.push_back(l);
    }
    return out;
}

}  // namespace lincat
