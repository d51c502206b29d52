#include "eval/compare.h"

#include <cmath>

#include "attention/linearize.h"
#include "attention/transfer.h"

namespace lincat {

ModelComparison compare_models(LlamaModel& teacher, LlamaModel& student, const torch::Tensor& rows, int64_t batch) {
    torch::NoGradGuard ng;
    ModelComparison r;
    double nll_t = 0, nll_s = 0, agree = 0, kl = 0;
    const int64_t T = rows.size(1);
    for (int64_t s = 0; s < rows.size(0); s += batch) {
        auto x = rows.narrow(0, s, std::min(batch, rows.size(0) - s));
        auto in = x.narrow(1, 0, T - 1), target = x.narrow(1, 1, T - 1).unsqueeze(-1);
        auto lt = torch::log_softmax(teacher->forward(in), -1), ls = torch::log_softmax(student->forward(in), -1);
        target = target.to(lt.device());  // rows live on the CPU; the models may not
        nll_t -= lt.gather(2, target).sum().item<double>();
        nll_s -= ls.gather(2, target).sum().item<double>();
        agree += (lt.argmax(-1) == ls.argmax(-1)).sum().item<double>();
        kl += (lt.exp() * (lt - ls)).sum().item<double>();
        r.tokens += target.numel();
    }
    r.teacher_ppl = std::exp(nll_t / double(r.tokens));
    r.student_ppl = std::exp(nll_s / double(r.tokens));
    r.top1_agreement = agree / double(r.tokens);
    r.kl = kl / double(r.tokens);

    // Layer MSE: each hybrid layer also computes softmax on its own q, k, v (transfer mode).
    std::vector<std::shared_ptr<AttentionCoreImpl>> saved;
    std::vector<std::shared_ptr<TransferAttentionImpl>> wrapped;
    for (int64_t l = 0; l < student->num_layers(); ++l) {
        auto core = student->layer(l)->self_attn->core();
        auto hybrid = std::dynamic_pointer_cast<HybridAttentionImpl>(core);
        if (!hybrid) continue;
        auto t = std::make_shared<TransferAttentionImpl>(hybrid, student->config().sliding_window);
        t->eval();  // figures only: no autograd graph
        student->layer(l)->self_attn->set_core(t);
        saved.push_back(core);
        wrapped.push_back(t);
        r.layers.push_back(l);
    }
    r.layer_mse.assign(wrapped.size(), 0.0);
    try {
        for (int64_t s = 0; s < rows.size(0); s += batch) {
            const int64_t b = std::min(batch, rows.size(0) - s);
            student->hidden(rows.narrow(0, s, b));
            for (size_t i = 0; i < wrapped.size(); ++i)
                r.layer_mse[i] += wrapped[i]->last_mse.item<double>() * double(b) / double(rows.size(0));
        }
    } catch (...) {
        for (size_t i = 0; i < saved.size(); ++i) student->layer(r.layers[i])->self_attn->set_core(saved[i]);
        throw;
    }
    for (size_t i = 0; i < saved.size(); ++i) student->layer(r.layers[i])->self_attn->set_core(saved[i]);
    return r;
}

}  // namespace lincat
