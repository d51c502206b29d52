#include "attention/transfer.h"

#include <cmath>

#include "attention/softmax.h"
#include "util/error.h"
#include "util/precision.h"

namespace lincat {

TransferOutputs transfer_outputs_shared_scores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                               HybridAttentionImpl& student, int64_t sliding_window) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), d = q.size(3), Hkv = k.size(1);
    if (q.dim() != 4 || k.dim() != 4 || k.sizes() != v.sizes() || Hkv == 0 || H % Hkv != 0 || k.size(2) != T ||
        k.size(3) != d || H != student.options().heads())
        fail("attention transfer: shapes q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(), " do not fit");
    const int64_t G = H / Hkv;
    auto qf = q.detach().to(torch::kFloat32), kf = k.detach().to(torch::kFloat32), vf = v.detach().to(torch::kFloat32);
    auto dev = q.device();
    auto i = torch::arange(T, torch::kLong).view({T, 1}), j = torch::arange(T, torch::kLong).view({1, T});
    auto causal = j <= i;
    auto teacher_allowed = sliding_window > 0 ? causal & (i - j < sliding_window) : causal;
    auto win = hybrid_window_mask(T, student.options().window());
    auto not_lin = (causal & win.logical_not()).logical_not().to(dev);
    // Grouped views: the G query heads of kv head h are rows h*G..h*G+G-1, so (B, Hkv, G*T, *).
    auto grouped = [&](const torch::Tensor& x) { return x.reshape({B, Hkv, G * T, x.size(-1)}); };
    auto per_head = [&](const torch::Tensor& x) { return x.view({B, H, T, x.size(-1)}); };

    torch::Tensor teacher, num_sm, den_sm;
    {
        torch::NoGradGuard ng;
        auto s = per_head(torch::matmul(grouped(qf), kf.transpose(-1, -2)).mul_(1.0 / std::sqrt(double(d))));
        auto p = torch::softmax(s.masked_fill(teacher_allowed.logical_not().to(dev), -INFINITY), -1);
        teacher = per_head(torch::matmul(grouped(p), vf)).to(q.scalar_type());
        // The student's window part, in place on the scores: exp(s - max over W(i)) on W(i), 0 elsewhere.
        auto a = s.masked_fill_(win.logical_not().to(dev), -INFINITY);
        a.sub_(a.amax(-1, true)).exp_();
        num_sm = per_head(torch::matmul(grouped(a), vf));
        den_sm = a.sum(-1, true);
    }
    auto f_q = student.feature_map_q(qf);
    auto f_k = student.feature_map_k->forward_grouped(kf, G);
    auto a_ln = torch::matmul(f_q, f_k.transpose(-1, -2)).masked_fill(not_lin, 0);  // (B, H, T, T)
    auto num_ln = per_head(torch::matmul(grouped(a_ln), vf));
    auto den_ln = a_ln.sum(-1, true);
    auto g = student.gamma().to(torch::kFloat32).view({1, H, 1, 1});
    auto l = student.lambda().to(torch::kFloat32).view({1, H, 1, 1});
    return {teacher, (g * num_sm + l * num_ln) / (g * den_sm + l * den_ln)};
}

TransferAttentionImpl::TransferAttentionImpl(std::shared_ptr<HybridAttentionImpl> s, int64_t sliding_window, bool xent)
    : student(std::move(s)), sliding_window_(sliding_window), xent_(xent) {
    register_module("student", student);
}

torch::Tensor TransferAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                             AttentionState* state) {
    if (state) fail("attention transfer runs on whole sequences; it has no decode state");
    // The rest of the model runs without grad; in training mode each student builds its own
    // graph here, in eval mode (evaluations) none.
    torch::AutoGradMode grad_on(is_training());
    // Shared scores have no gate: a gated student runs its own (chunked) form.
    if (shared_scores && !xent_ && student->options().gate() == GateKind::None) {
        TransferOutputs o = transfer_outputs_shared_scores(q, k, v, *student, sliding_window_);
        last_mse = torch::mse_loss(o.student, o.teacher.to(torch::kFloat32));
        return o.teacher;
    }
    torch::Tensor teacher, teacher_weights;
    {
        torch::NoGradGuard ng;
        teacher = softmax_attention(q, k, v, 0, sliding_window_, xent_ ? &teacher_weights : nullptr);
    }
    // Contiguous copies, so a replay from the cache sees these very tensors (the same bits out).
    TeacherActivations a{q.detach().contiguous(), k.detach().contiguous(), v.detach().contiguous(),
                         teacher.contiguous()};
    if (keep_teacher) last_teacher = a;
    student_loss(a);
    if (xent_) {
        // Cross-entropy of the student's weights under the teacher's, per query row, averaged.
        auto w = student->attention_weights_with_grad(q.detach(), k.detach());  // (B, H, T, T)
        last_xent = -(teacher_weights * torch::log(w.clamp_min(1e-12))).sum(-1).mean();
    }
    return teacher;
}

void TransferAttentionImpl::student_loss(const TeacherActivations& a) {
    torch::AutoGradMode grad_on(is_training());
    // The student in fp32 (its output would otherwise be cast to a bf16 q's dtype before the
    // loss); the MSE from fp32 on both sides (util/precision.h).
    auto y = student->forward(a.q.detach().to(kMasterDtype), a.k.detach().to(kMasterDtype),
                              a.v.detach().to(kMasterDtype), nullptr);
    last_mse = torch::mse_loss(y, a.teacher.to(kMasterDtype));
}

bool TransferAttentionImpl::replayable() const {
    return !xent_ && !(shared_scores && student->options().gate() == GateKind::None);
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
    auto stacked = torch::stack(m);
    auto host = stacked.detach().to(torch::kCPU, torch::kFloat64).contiguous();  // one sync per step
    const double* p = host.data_ptr<double>();
    layer_mse.insert(layer_mse.end(), p, p + host.numel());
    auto loss = mse_factor * stacked.mean();
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
