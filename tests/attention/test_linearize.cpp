#include "attention/linearize.h"

#include "model/tokenizer.h"
#include "test_util.h"
#include "util/threads.h"

using namespace lincat;

TEST(Linearize, Stories15MDecodeMatchesPrefill) {
    init_torch_threads();
    std::string dir = lincat::test::default_model_dir();
    LlamaModel model = load_llama(dir);
    torch::manual_seed(0);
    LinearizeOptions o;
    o.window.size = 16;  // several windows inside a short story
    linearize(model, o);
    for (int64_t l = 0; l < 6; ++l) ASSERT_NE(hybrid_core(model, l), nullptr) << l;
    Tokenizer tok = Tokenizer::load_dir(dir);
    auto ids = tok.encode(
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.", true);
    auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1});
    torch::NoGradGuard ng;
    auto full = model->forward(tokens);
    ModelState state = model->new_state();
    std::vector<torch::Tensor> parts = {model->forward(tokens.slice(1, 0, 5), &state)};
    int64_t bytes_after_prefill = state.bytes();
    for (int64_t t = 5; t < tokens.size(1); ++t) parts.push_back(model->forward(tokens.slice(1, t, t + 1), &state));
    double diff = (torch::cat(parts, 1) - full).abs().max().item<double>();
    // Six fp32 layers of chunked vs recurrent arithmetic on logits of magnitude ~10.
    EXPECT_LT(diff, 1e-3) << "max |chunked prefill - recurrent decode| logits = " << diff;
    EXPECT_EQ(state.bytes(), bytes_after_prefill);  // constant-size state
}

TEST(Linearize, ChosenLayersOnly) {
    ModelConfig c =
        parse_model_config(R"({"model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 3, "num_attention_heads": 2})",
                           "tiny");
    LlamaModel m(c);
    LinearizeOptions o;
    o.layers = {1};
    linearize(m, o);
    EXPECT_EQ(hybrid_core(m, 0), nullptr);
    EXPECT_NE(hybrid_core(m, 1), nullptr);
    EXPECT_EQ(hybrid_core(m, 2), nullptr);
    // The new parameters carry stable checkpoint names.
    auto params = m->named_parameters();
    EXPECT_TRUE(params.contains("model.layers.1.self_attn.attn.feature_map_q.layer"));
    EXPECT_TRUE(params.contains("model.layers.1.self_attn.attn.window_factors"));
    o.layers = {3};
    lincat::test::expect_error([&] { linearize(m, o); }, {"layer 3 does not exist"});
}
