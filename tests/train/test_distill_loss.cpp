// Stage 2's fused loss (row chunks from hidden states, gradient computed in the same pass)
// against its reference from whole logits: value and gradient, KD, cross-entropy and both,
// every chunking; and a whole stage-2 step on a small model, fused vs reference.
#include "train/distill_loss.h"

#include "attention/linearize.h"
#include "model/config.h"
#include "model/llama.h"
#include "model/lora_model.h"
#include "test_util.h"
#include "train/finetune.h"

using namespace lincat;
using lincat::test::expect_error;

namespace {

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

LlamaModel small_model() {
    LlamaModel m(parse_model_config(R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2})",
                                    "small"));
    torch::manual_seed(4);
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
        if (p.key().find("norm") == std::string::npos) p.value().normal_(0, 0.3);
    for (auto& p : m->parameters()) p.set_requires_grad(false);
    m->eval();
    return m;
}

}  // namespace

TEST(DistillLoss, FusedEqualsReferenceValueAndGradient) {
    const int64_t N = 23, C = 16, V = 50;
    torch::manual_seed(1);
    auto head = torch::randn({V, C});
    auto h_teacher = torch::randn({N, C});
    auto targets = torch::randint(V, {N}, torch::kLong);
    for (auto [kd, xent] : std::vector<std::pair<double, double>>{{1, 0}, {0, 1}, {0.7, 0.3}}) {
        auto h_ref = torch::randn({N, C}, torch::requires_grad());
        auto loss_ref = reference_distill_loss(torch::matmul(h_ref, head.t()), torch::matmul(h_teacher, head.t()),
                                               targets, kd, xent);
        auto g_ref = torch::autograd::grad({loss_ref}, {h_ref})[0];
        for (int64_t chunk : {int64_t(1), int64_t(7), int64_t(0)}) {
            SCOPED_TRACE("kd " + std::to_string(kd) + " xent " + std::to_string(xent) + " chunk " +
                         std::to_string(chunk));
            auto h = h_ref.detach().clone().requires_grad_(true);
            auto loss = fused_distill_loss(h, h_teacher, head, targets, kd, xent, chunk);
            auto g = torch::autograd::grad({loss}, {h})[0];
            // fp32 logits of a few units: the two differ by summation order only.
            EXPECT_NEAR(loss.item<double>(), loss_ref.item<double>(), 1e-5);
            EXPECT_LT(max_diff(g, g_ref), 1e-6);
            EXPECT_GT(g.abs().max().item<double>(), 1e-4);  // a gradient worth comparing
        }
    }
    // KL of a distribution with itself is 0 and so is its gradient.
    auto h = h_teacher.clone().requires_grad_(true);
    auto self_kl = fused_distill_loss(h, h_teacher, head, {}, 1, 0);
    EXPECT_NEAR(self_kl.item<double>(), 0.0, 1e-6);
    EXPECT_LT(torch::autograd::grad({self_kl}, {h})[0].abs().max().item<double>(), 1e-6);
}

TEST(DistillLoss, BadInputsAreClearErrors) {
    auto h = torch::randn({4, 8});
    expect_error([&] { fused_distill_loss(h, h, torch::randn({10, 7}), {}, 1, 0); }, {"distill loss", "head"});
    expect_error([&] { fused_distill_loss(h, h, torch::randn({10, 8}), {}, 0, 1); }, {"one target per row"});
    expect_error(
        [&] {
            fused_distill_loss(h, h, torch::randn({10, 8}, torch::requires_grad()), {}, 1, 0);
        },
        {"frozen head"});
    expect_error([&] { fused_distill_loss(h, h, torch::randn({10, 8}), {}, 0, 0); }, {"factors"});
}

TEST(DistillLoss, Stage2StepFusedEqualsReference) {
    LlamaModel teacher = small_model();
    LlamaModel student = small_model();
    LinearizeOptions lin;
    lin.window.size = 8;
    lin.feature_dim = 8;
    torch::manual_seed(2);
    linearize(student, lin);
    LoraOptions lora;
    attach_lora(student, lora);
    {
        torch::NoGradGuard ng;  // adapters that change the model, so every LoRA tensor gets a gradient
        for (auto& [name, t] : lora_tensors(student))
            if (name.find("lora_B") != std::string::npos) t.copy_(torch::randn(t.sizes()) * 0.1);
    }
    auto params = lora_parameters(student);
    for (auto& p : params) p.set_requires_grad(true);
    auto x = torch::randint(97, {3, 21}, torch::kLong);
    for (auto [kd, xent] : std::vector<std::pair<double, double>>{{1, 0}, {0.5, 0.5}}) {
        auto loss_ref = stage2_loss(student, teacher, x, kd, xent, /*fused=*/false);
        auto g_ref = torch::autograd::grad({loss_ref}, params);
        auto loss = stage2_loss(student, teacher, x, kd, xent, /*fused=*/true);
        auto g = torch::autograd::grad({loss}, params);
        EXPECT_NEAR(loss.item<double>(), loss_ref.item<double>(), 1e-5 + 1e-5 * loss_ref.item<double>());
        ASSERT_EQ(g.size(), g_ref.size());
        for (size_t i = 0; i < g.size(); ++i) {
            const double scale = g_ref[i].abs().max().item<double>();
            EXPECT_GT(scale, 0.0) << "LoRA tensor " << i << " gets no gradient";
            EXPECT_LT(max_diff(g[i], g_ref[i]), 1e-4 * scale + 1e-9) << "LoRA tensor " << i;
        }
    }
}
