#include "eval/perplexity.h"

#include "model/tokenizer.h"
#include "test_util.h"
#include "util/threads.h"

using namespace lincat;

static ModelConfig tiny() {
    return parse_model_config(R"({"model_type": "llama", "vocab_size": 50, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 64})",
                              "tiny");
}

TEST(Perplexity, NonOverlappingWindowsMatchDirectComputation) {
    torch::manual_seed(0);
    LlamaModel m(tiny());
    std::vector<int32_t> ids;
    for (int i = 0; i < 40; ++i) ids.push_back((i * 7) % 50);
    // seq_len 40 = one window: the perplexity is exp(mean NLL of tokens 1..39).
    auto r = perplexity(m, ids, 40, 40);
    torch::NoGradGuard ng;
    auto t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()));
    auto logp = torch::log_softmax(m->forward(t.view({1, -1}))[0], -1);
    double nll = -logp.slice(0, 0, 39).gather(1, t.slice(0, 1).view({-1, 1})).mean().item<double>();
    EXPECT_EQ(r.tokens_scored, 39);
    EXPECT_NEAR(r.perplexity(), std::exp(nll), 1e-3);
}

TEST(Perplexity, EveryTokenScoredOnceWithStride) {
    LlamaModel m(tiny());
    std::vector<int32_t> ids(101, 3);
    auto r = perplexity(m, ids, 32, 8);
    EXPECT_EQ(r.tokens_scored, 100);
    EXPECT_EQ(r.windows, 10);  // begins 0, 8, ..., 72 (whose window reaches the end)
    EXPECT_THROW(perplexity(m, ids, 32, 0), std::runtime_error);
    EXPECT_THROW(perplexity(m, {1}, 32, 8), std::runtime_error);
}

TEST(Perplexity, Stories15MOnHeldOutStoryIsLow) {
    init_torch_threads();
    std::string dir = lincat::test::default_model_dir();
    LlamaModel m = load_llama(dir);
    Tokenizer tok = Tokenizer::load_dir(dir);
    auto ids = tok.encode(
        "Once upon a time, there was a little dog named Max. Max liked to run in the park with his friend, a "
        "girl named Sue. One day, Max saw a big red ball under a tree. He ran to the ball and pushed it with "
        "his nose. Sue laughed and threw the ball far away. Max ran and ran until he got the ball. They played "
        "all day and were very happy.",
        true);
    auto r = perplexity(m, ids, 256, 128);
    // A TinyStories model on TinyStories-like text: single-digit perplexity; a broken
    // runtime (wrong RoPE, wrong norm) gives hundreds.
    EXPECT_LT(r.perplexity(), 8.0);
    EXPECT_GT(r.perplexity(), 1.0);
    std::printf("stories15M perplexity on the held-out story: %.3f over %lld tokens\n", r.perplexity(),
                (long long)r.tokens_scored);
}
