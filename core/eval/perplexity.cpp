#include "eval/perplexity.h"

#include <cmath>

#include "util/error.h"

namespace lincat {

double PerplexityResult::perplexity() const {
    return tokens_scored > 0 ? std::exp(nll_sum / double(tokens_scored)) : std::nan("");
}

PerplexityResult perplexity(LlamaModel& model, const std::vector<int32_t>& tokens, int64_t seq_len, int64_t stride) {
    if (seq_len < 2) fail("perplexity: sequence length must be at least 2, got ", seq_len);
    if (stride < 1 || stride > seq_len) fail("perplexity: stride must be in [1, seq_len], got ", stride);
    if (tokens.size() < 2) fail("perplexity: need at least 2 tokens, got ", tokens.size());
    torch::NoGradGuard no_grad;
    auto device = model->parameters().front().device();
    auto all = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end()), torch::kLong);
    const int64_t n = all.size(0);
    PerplexityResult r;
    int64_t scored_until = 1;  // tokens [1, scored_until) have been scored
    for (int64_t begin = 0; scored_until < n; begin += stride) {
        const int64_t end = std::min(begin + seq_len, n);
        auto window = all.slice(0, begin, end).view({1, -1}).to(device);
        auto logp = torch::log_softmax(model->forward(window)[0], -1);  // (T, V)
        // Score targets at positions [max(scored_until, begin + 1), end).
        const int64_t first = std::max(scored_until, begin + 1);
        if (first < end) {
            auto targets = all.slice(0, first, end).to(device);
            auto picked = logp.slice(0, first - begin - 1, end - begin - 1).gather(1, targets.view({-1, 1}));
            r.nll_sum -= picked.sum().item<double>();
            r.tokens_scored += end - first;
            scored_until = end;
        }
        ++r.windows;
        if (end == n) break;
    }
    return r;
}

double sequences_nll(LlamaModel& model, const torch::Tensor& rows, int64_t batch) {
    torch::NoGradGuard ng;
    double nll = 0;
    int64_t count = 0;
    for (int64_t s = 0; s < rows.size(0); s += batch) {
        auto x = rows.narrow(0, s, std::min(batch, rows.size(0) - s));
        auto logits = model->forward(x.narrow(1, 0, x.size(1) - 1));
        auto target = x.narrow(1, 1, x.size(1) - 1).to(logits.device());
        nll += torch::nn::functional::cross_entropy(
                   logits.reshape({-1, logits.size(-1)}), target.reshape(-1),
                   torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                   .item<double>();
        count += target.numel();
    }
    return nll / double(count);
}

}  // namespace lincat
