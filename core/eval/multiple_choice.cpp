#include "eval/multiple_choice.h"

#include <cmath>

#include "util/error.h"

namespace lincat {

std::vector<double> choice_logliks(LlamaModel& model, const Tokenizer& tok, const McItem& item) {
    torch::NoGradGuard ng;
    // As lm-evaluation-harness: trailing spaces of the context move to the continuation, the
    // continuation's tokens are those of (context + choice) past the context's own tokens.
    std::string context = item.context;
    std::string moved;
    while (!context.empty() && context.back() == ' ') moved += ' ', context.pop_back();
    const size_t ctx_len = tok.encode(context, true).size();
    std::vector<double> out;
    for (const std::string& choice : item.choices) {
        auto whole = tok.encode(context + moved + choice, true);
        if (whole.size() <= ctx_len) fail("multiple choice: choice '", choice, "' adds no tokens to its context");
        std::vector<int64_t> ids(whole.begin(), whole.end());
        auto x = torch::tensor(ids, torch::kLong).view({1, -1});
        auto logp = torch::log_softmax(model->forward(x.narrow(1, 0, x.size(1) - 1)), -1)[0].cpu();  // (n-1, V)
        double sum = 0;
        for (size_t i = ctx_len; i < whole.size(); ++i) sum += logp[int64_t(i) - 1][whole[i]].item<double>();
        out.push_back(sum);
    }
    return out;
}

McScore score_mc(LlamaModel& model, const Tokenizer& tok, const McTask& task) {
    McScore s;
    s.n = int64_t(task.items.size());
    for (auto& item : task.items) {
        auto ll = choice_logliks(model, tok, item);
        size_t best = 0, best_norm = 0;
        for (size_t i = 1; i < ll.size(); ++i) {
            if (ll[i] > ll[best]) best = i;
            if (ll[i] / double(item.choices[i].size()) > ll[best_norm] / double(item.choices[best_norm].size()))
                best_norm = i;
        }
        s.acc += best == size_t(item.gold);
        s.acc_norm += best_norm == size_t(item.gold);
    }
    s.acc /= double(s.n);
    s.acc_norm /= double(s.n);
    // The harness's stderr of a mean of 0/1 scores: sample stddev / sqrt(n) = sqrt(p (1 - p) / (n - 1)).
    auto stderr_of = [&](double p) { return s.n > 1 ? std::sqrt(p * (1 - p) / double(s.n - 1)) : 0.0; };
    s.acc_stderr = stderr_of(s.acc);
    s.acc_norm_stderr = stderr_of(s.acc_norm);
    return s;
}

}  // namespace lincat
