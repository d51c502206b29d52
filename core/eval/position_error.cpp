#include "eval/position_error.h"

#include "attention/hybrid.h"
#include "attention/softmax.h"
#include "util/error.h"

namespace lincat {

namespace {

// A hybrid layer's student next to softmax on its q, k, v; sums the squared error per query
// position and per head, in fp64 on the host, and passes the softmax output on.
class PositionErrorCore : public AttentionCoreImpl {
  public:
    PositionErrorCore(std::shared_ptr<HybridAttentionImpl> student, int64_t sliding_window)
        : student_(std::move(student)), sliding_window_(sliding_window) {}

    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          AttentionState* state) override {
        if (state) fail("position error runs on whole sequences; it has no decode state");
        torch::NoGradGuard ng;
        auto teacher = softmax_attention(q, k, v, 0, sliding_window_);
        auto se = (student_->forward(q, k, v, nullptr).to(torch::kFloat32) - teacher.to(torch::kFloat32)).square();
        auto by_position = se.sum({0, 1, 3}).to(torch::kCPU, torch::kFloat64);  // (T)
        auto by_head = se.sum({0, 2, 3}).to(torch::kCPU, torch::kFloat64);      // (H)
        position_sum = position_sum.defined() ? position_sum + by_position : by_position;
        head_sum = head_sum.defined() ? head_sum + by_head : by_head;
        rows += q.size(0);
        head_dim = q.size(3);
        return teacher;
    }
    std::unique_ptr<AttentionState> new_state() const override {
        fail("position error runs on whole sequences; it has no decode state");
    }
    std::string kind() const override { return "position-error"; }

    torch::Tensor position_sum, head_sum;
    int64_t rows = 0, head_dim = 0;

  private:
    std::shared_ptr<HybridAttentionImpl> student_;
    int64_t sliding_window_;
};

std::vector<double> to_vector(const torch::Tensor& t) {
    auto c = t.contiguous();
    return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

PositionError position_error(LlamaModel& student, const torch::Tensor& rows, int64_t batch) {
    if (rows.dim() != 2 || rows.size(0) == 0 || rows.size(1) == 0)
        fail("position error: rows must be (N, T) with N, T > 0, got ", rows.sizes());
    if (batch < 1) fail("position error: batch must be at least 1, got ", batch);
    PositionError e;
    e.rows = rows.size(0), e.positions = rows.size(1), e.heads = student->config().num_attention_heads;

    std::vector<std::shared_ptr<AttentionCoreImpl>> saved;
    std::vector<std::shared_ptr<PositionErrorCore>> wrapped;
    for (int64_t l = 0; l < student->num_layers(); ++l) {
        auto core = student->layer(l)->self_attn->core();
        auto hybrid = std::dynamic_pointer_cast<HybridAttentionImpl>(core);
        if (!hybrid) continue;
        if (wrapped.empty()) {
            e.window = hybrid->options().window().size;
            e.variant = window_kind_name(hybrid->options().window().kind);
            auto lin = torch::ones({e.positions, e.positions}, torch::kBool).tril() &
                       hybrid_window_mask(e.positions, hybrid->options().window()).logical_not();
            auto counts = lin.sum(1).to(torch::kLong).contiguous();
            e.linear_keys.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + e.positions);
        }
        auto w = std::make_shared<PositionErrorCore>(hybrid, student->config().sliding_window);
        student->layer(l)->self_attn->set_core(w);
        saved.push_back(core);
        wrapped.push_back(w);
        e.layers.push_back(l);
    }
    auto restore = [&] {
        for (size_t i = 0; i < saved.size(); ++i) student->layer(e.layers[i])->self_attn->set_core(saved[i]);
    };
    if (wrapped.empty()) fail("position error: the model has no linearized (hybrid) layers");
    try {
        torch::NoGradGuard ng;
        for (int64_t s = 0; s < rows.size(0); s += batch)
            student->hidden(rows.narrow(0, s, std::min(batch, rows.size(0) - s)));
    } catch (...) {
        restore();
        throw;
    }
    restore();

    for (auto& w : wrapped) {
        const double per_position = double(w->rows * e.heads * w->head_dim);
        const double per_head = double(w->rows * e.positions * w->head_dim);
        e.mse.push_back(to_vector(w->position_sum / per_position));
        e.head_mse.push_back(to_vector(w->head_sum / per_head));
        double all = 0;
        for (double m : e.mse.back()) all += m;
        e.layer_mse.push_back(all / double(e.positions));
        // Every layer has the same positions: the mean over layers of their window means.
        const WindowMeans m = window_means(e.mse.back(), e.linear_keys);
        e.inside_mse += m.inside / double(wrapped.size());
        e.beyond_mse += m.beyond / double(wrapped.size());
    }
    for (int64_t t = 0; t < e.positions; ++t)
        if (e.linear_keys[size_t(t)] > 0) {
            e.window_edge = t;
            break;
        }
    return e;
}

}  // namespace lincat
