#include "model/generate.h"

#include <chrono>

#include "util/error.h"

namespace lincat {

static int32_t sample(const torch::Tensor& logits, const GenerateOptions& o, torch::Generator& gen) {
    if (o.temperature <= 0) return int32_t(logits.argmax().item<int64_t>());
    auto probs = torch::softmax(logits / o.temperature, -1);
    if (o.top_p < 1.0) {
        auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
        auto cum = sorted.cumsum(-1);
        auto drop = (cum - sorted) > o.top_p;  // keep the smallest prefix reaching top_p
        sorted.masked_fill_(drop, 0);
        auto pick = torch::multinomial(sorted / sorted.sum(), 1, false, gen);
        return int32_t(idx[pick.item<int64_t>()].item<int64_t>());
    }
    return int32_t(torch::multinomial(probs, 1, false, gen).item<int64_t>());
}

GenerateResult generate(LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                        const std::function<bool(int32_t)>& on_token) {
    if (prompt.empty()) fail("generate: the prompt has no tokens (it should at least hold BOS)");
    if (o.temperature < 0) fail("generate: temperature must be >= 0");
    if (o.top_p <= 0 || o.top_p > 1) fail("generate: top_p must be in (0, 1]");
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    GenerateResult r;
    ModelState state = model->new_state();
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto device = model->parameters().front().device();
    auto input =
        torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), torch::kLong).view({1, -1}).to(device);
    auto logits = model->forward(input, &state).index({0, -1}).cpu();
    auto t1 = clock::now();
    r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    for (int64_t i = 0; i < o.max_new_tokens; ++i) {
        int32_t next = sample(logits, o, gen);
        if (o.stop_at_eos && (next == o.eos_id || next == o.bos_id)) break;
        r.tokens.push_back(next);
        if (on_token && !on_token(next)) break;
        if (i + 1 == o.max_new_tokens) break;
        auto step = torch::full({1, 1}, int64_t(next), torch::kLong).to(device);
        logits = model->forward(step, &state).index({0, -1}).cpu();
    }
    r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    r.state_bytes = state.bytes();
    return r;
}

}  // namespace lincat
