#include "eval/attention_map.h"

#include "attention/linearize.h"
#include "attention/softmax.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat {

namespace {

// Captures q and k of one layer.
struct QkTap : AttentionTap {
    int64_t layer;
    torch::Tensor q, k;
    explicit QkTap(int64_t l) : layer(l) {}
    void on_attention(int64_t l, const torch::Tensor& q_, const torch::Tensor& k_, const torch::Tensor&,
                      const torch::Tensor&) override {
        if (l == layer) q = q_.detach().to(torch::kFloat32), k = k_.detach().to(torch::kFloat32);
    }
};

std::vector<std::vector<double>> rows_of(const torch::Tensor& w) {  // (T, T)
    auto c = w.to(torch::kCPU, torch::kFloat64).contiguous();       // weights may sit on a GPU
    const int64_t T = c.size(0);
    const double* p = c.data_ptr<double>();
    std::vector<std::vector<double>> out;
    for (int64_t i = 0; i < T; ++i) out.emplace_back(p + i * T, p + (i + 1) * T);
    return out;
}

}  // namespace

AttentionMap attention_map(LlamaModel& teacher, LlamaModel& student, const Tokenizer& tok, const std::string& prompt,
                           int64_t layer, int64_t head, int64_t max_tokens) {
    const ModelConfig& c = teacher->config();
    if (layer < 0 || layer >= c.num_hidden_layers)
        fail("attention map: layer ", layer, " does not exist (the model has ", c.num_hidden_layers, " layers)");
    if (head < 0 || head >= c.num_attention_heads)
        fail("attention map: head ", head, " does not exist (the model has ", c.num_attention_heads, " heads)");
    std::vector<int32_t> ids = tok.encode(prompt, true);
    if (ids.empty() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    if (ids.empty()) fail("attention map: the prompt has no tokens");
    if (int64_t(ids.size()) > max_tokens) ids.resize(size_t(max_tokens));
    auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);

    AttentionMap m;
    m.layer = layer, m.head = head;
    for (auto id : ids) m.tokens.push_back(tok.piece(id));  // special tokens show their own text
    torch::NoGradGuard ng;
    QkTap t_tap(layer), s_tap(layer);
    teacher->set_tap(&t_tap);
    teacher->hidden(x);
    teacher->set_tap(nullptr);
    student->set_tap(&s_tap);
    student->hidden(x);
    student->set_tap(nullptr);
    torch::Tensor tw;
    softmax_attention(t_tap.q, t_tap.k, t_tap.k, 0, c.sliding_window, &tw);  // v unused for the weights
    m.teacher = rows_of(tw[0][head]);
    if (HybridAttentionImpl* h = hybrid_core(student, layer)) {
        m.student = rows_of(h->attention_weights(s_tap.q, s_tap.k)[0][head]);
        m.window = h->options().window().size;
        m.variant = window_kind_name(h->options().window().kind);
        m.gamma = h->gamma()[head].item<double>();
        m.window_mask = rows_of(hybrid_window_mask(int64_t(ids.size()), h->options().window()).to(torch::kFloat64));
    } else {
        torch::Tensor sw;
        softmax_attention(s_tap.q, s_tap.k, s_tap.k, 0, c.sliding_window, &sw);
        m.student = rows_of(sw[0][head]);
    }
    return m;
}

std::string attention_map_to_json(const AttentionMap& m) {
    return json({{"layer", m.layer},
                 {"head", m.head},
                 {"window", m.window},
                 {"variant", m.variant},
                 {"gamma", m.gamma},
                 {"tokens", m.tokens},
                 {"teacher", m.teacher},
                 {"student", m.student},
                 {"window_mask", m.window_mask}})
        .dump();
}

}  // namespace lincat
