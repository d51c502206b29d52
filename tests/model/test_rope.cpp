#include "model/rope.h"

#include "attention/attention.h"
#include "model/llama.h"
#include "test_util.h"

using namespace lincat;

static ModelConfig llama31() {
    return parse_model_config(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 4096, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 32, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192}})",
                              "llama31");
}

TEST(Rope, Llama3ScalingBands) {
    ModelConfig c = llama31();
    auto scaled = rope_inv_freq(c);
    c.rope_scaling.type = "none";
    auto plain = rope_inv_freq(c);
    ASSERT_EQ(scaled.size(0), 64);
    for (int64_t i = 0; i < 64; ++i) {
        double f = plain[i].item<double>(), s = scaled[i].item<double>(), wavelen = 2 * M_PI / f;
        if (wavelen < 8192.0 / 4)
            EXPECT_DOUBLE_EQ(s, f) << i;  // high frequencies kept
        else if (wavelen > 8192.0)
            EXPECT_NEAR(s, f / 8, 1e-12) << i;  // low frequencies / factor
        else
            EXPECT_TRUE(s < f && s > f / 8) << i;  // smooth band in between
    }
    // HF's formula for Llama 3.1 (head_dim 128, theta 5e5) at index 31, inside the smooth band
    // (wavelength between 8192/4 and 8192).
    double f31 = plain[31].item<double>(), wl = 2 * M_PI / f31, smooth = (8192.0 / wl - 1.0) / 3.0;
    ASSERT_GT(smooth, 0.0);
    ASSERT_LT(smooth, 1.0);
    EXPECT_NEAR(scaled[31].item<double>(), (1 - smooth) * f31 / 8 + smooth * f31, 1e-9);
}

TEST(Rope, RotationPreservesNormAndRelativePosition) {
    ModelConfig c = llama31();
    c.head_dim = 16;
    Rope rope(c);
    torch::manual_seed(0);
    auto q = torch::randn({1, 1, 1, 16}), k = torch::randn({1, 1, 1, 16});
    // <R(m) q, R(n) k> depends on m - n only.
    auto dot = [&](int64_t m, int64_t n) { return (rope.apply(q, m) * rope.apply(k, n)).sum().item<double>(); };
    EXPECT_NEAR(dot(5, 2), dot(105, 102), 1e-4);
    EXPECT_NEAR(rope.apply(q, 77).norm().item<double>(), q.norm().item<double>(), 1e-5);
}

namespace {
struct CountingTap : AttentionTap {
    std::vector<int64_t> layers;
    void on_attention(int64_t layer, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                      const torch::Tensor& out) override {
        layers.push_back(layer);
        EXPECT_EQ(q.sizes(), out.sizes());
        EXPECT_EQ(k.sizes(), v.sizes());
    }
};
}  // namespace

TEST(AttentionTapHook, SeesEveryLayer) {
    ModelConfig c =
        parse_model_config(R"({"model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24,
        "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2})",
                           "tiny");
    LlamaModel m(c);
    CountingTap tap;
    m->set_tap(&tap);
    torch::NoGradGuard ng;
    m->forward(torch::tensor({{1, 2, 3}}));
    EXPECT_EQ(tap.layers, (std::vector<int64_t>{0, 1, 2}));
}
