#include "model/generate.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace lincat {

double GenerateResult::tokens_per_second() const {
    size_t n = 0;
    for (auto& r : rows) n += r.size();
    return decode_seconds > 0 ? double(n) / decode_seconds : 0;
}

std::vector<int32_t> stop_tokens(const Tokenizer& tok) {
    std::vector<int32_t> ids = tok.eos_ids();
    if (tok.bos_id() >= 0 && std::find(ids.begin(), ids.end(), tok.bos_id()) == ids.end()) ids.push_back(tok.bos_id());
    return ids;
}

// logits (B, V) -> one token per row.
static std::vector<int32_t> sample(const torch::Tensor& logits, const GenerateOptions& o, torch::Generator& gen) {
    torch::Tensor picked;
    if (o.temperature <= 0) {
        picked = logits.argmax(-1);
    } else {
        auto probs = torch::softmax(logits / o.temperature, -1);
        if (o.top_p < 1.0) {
            auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
            auto cum = sorted.cumsum(-1);
            sorted.masked_fill_((cum - sorted) > o.top_p, 0);  // keep the smallest prefix reaching top_p
            auto pick = torch::multinomial(sorted / sorted.sum(-1, true), 1, false, gen);
            picked = idx.gather(-1, pick).squeeze(-1);
        } else {
            picked = torch::multinomial(probs, 1, false, gen).squeeze(-1);
        }
    }
    picked = picked.to(torch::kLong).contiguous();
    return std::vector<int32_t>(picked.data_ptr<int64_t>(), picked.data_ptr<int64_t>() + picked.numel());
}

GenerateResult generate(LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                        const std::function<bool(int32_t)>& on_token) {
    if (prompt.empty()) fail("generate: the prompt has no tokens (it should at least hold BOS)");
    if (o.temperature < 0) fail("generate: temperature must be >= 0");
    if (o.top_p <= 0 || o.top_p > 1) fail("generate: top_p must be in (0, 1]");
    if (o.batch < 1 || o.batch > 4096) fail("generate: batch must be in [1, 4096]");
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    GenerateResult r;
    r.rows.resize(size_t(o.batch));
    std::vector<bool> done(size_t(o.batch), false);
    ModelState state = model->new_state();
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto device = model->parameters().front().device();
    auto input = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), torch::kLong)
                     .view({1, -1})
                     .expand({o.batch, -1})
                     .contiguous()
                     .to(device);
    auto logits = model->forward(input, &state).select(1, -1).cpu();  // (B, V)
    auto t1 = clock::now();
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    for (int64_t i = 0; i < o.max_new_tokens; ++i) {
        std::vector<int32_t> next = sample(logits, o, gen);
        bool any = false;
        for (size_t b = 0; b < next.size(); ++b) {
            if (done[b]) continue;
            if (o.stop_at_eos && std::find(o.stop_ids.begin(), o.stop_ids.end(), next[b]) != o.stop_ids.end()) {
                done[b] = true;
                continue;
            }
            r.rows[b].push_back(next[b]);
            if (b == 0 && on_token && !on_token(next[b])) done[0] = true;
            any = any || !done[b];
        }
        if (!any || i + 1 == o.max_new_tokens) break;
        auto step = torch::tensor(std::vector<int64_t>(next.begin(), next.end()), torch::kLong).view({-1, 1});
        logits = model->forward(step.to(device), &state).select(1, 0).cpu();
        ++r.decode_steps;
    }
    r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    r.state_bytes = state.bytes();
    r.tokens = r.rows[0];
    return r;
}

}  // namespace lincat
