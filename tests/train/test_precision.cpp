// The precision policy (util/precision.h), exercised in bf16 on the CPU as the GPU path runs
// it: the base model computes in bf16, every trainable tensor is an fp32 master, and AdamW
// updates of lr = 1e-4 move those masters where a bf16 weight could not move at all (its
// spacing from 1/16 up is at least 2^-11 = 4.9e-4, so any update under half of that rounds away).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "attention/linearize.h"
#include "attention/transfer.h"
#include "model/config.h"
#include "model/llama.h"
#include "model/lora_model.h"
#include "util/precision.h"

using namespace lincat;

namespace {

ModelConfig tiny() {
    return parse_model_config(R"({"model_type": "llama", "vocab_size": 96, "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64})",
                              "tiny");
}

LlamaModel bf16_model() {
    torch::manual_seed(17);
    LlamaModel model(tiny());
    {
        torch::NoGradGuard ng;  // a constructed model's weights are placeholders for loading
        for (auto& p : model->named_parameters())
            if (p.key().find("norm") == std::string::npos) p.value().normal_(0, 0.3);
    }
    model->to(torch::kBFloat16);
    for (auto& p : model->parameters()) {
        p.set_requires_grad(false);
        EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
    }
    return model;
}

// The share of `after`'s elements that moved from `before`, over those a bf16 weight could not
// move by `lr`-sized steps (|x| >= 1/16, where half its spacing is 2.4e-4). Fails the test when there are none to
// judge.
double moved_where_bf16_could_not(const torch::Tensor& before, const torch::Tensor& after) {
    auto judged = before.abs() >= 0.0625;
    EXPECT_GT(judged.sum().item<int64_t>(), 0);
    auto moved = (after - before).abs() > 0;
    return (moved & judged).sum().item<double>() / std::max<double>(1, judged.sum().item<double>());
}

}  // namespace

TEST(Precision, StageOneFeatureMapsAreFp32MastersUnderABf16ModelAndMoveWithLr1e4) {
    LlamaModel model = bf16_model();
    LinearizeOptions o;
    o.window.size = 4;  // the linear part runs from position 8 of 24
    o.feature_dim = 16;
    linearize(model, o);
    TransferLayers transfer = wrap_for_transfer(model, false);
    std::vector<torch::Tensor> params = transfer.parameters(), before;
    ASSERT_FALSE(params.empty());
    for (auto& p : params) {
        EXPECT_EQ(p.scalar_type(), kMasterDtype);
        before.push_back(p.detach().clone());
    }
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4).weight_decay(0));
    auto tokens = torch::randint(0, 96, {2, 24});
    for (int step = 0; step < 3; ++step) {
        opt.zero_grad();
        {
            torch::NoGradGuard ng;  // the teacher path, as stage 1 runs it; each student builds its graph
            model->forward(tokens);
        }
        std::vector<double> layer;
        torch::Tensor loss = transfer.loss(1.0, 0.0, layer);
        EXPECT_EQ(loss.scalar_type(), torch::kFloat32);
        for (auto& c : transfer.cores) EXPECT_EQ(c->last_mse.scalar_type(), torch::kFloat32);
        ASSERT_TRUE(std::isfinite(loss.item<double>()));
        loss.backward();
        opt.step();
    }
    double worst = 1;
    for (size_t i = 0; i < params.size(); ++i)
        if (params[i].dim() >= 2) worst = std::min(worst, moved_where_bf16_could_not(before[i], params[i]));
    // bf16 masters: 0 (every such update rounds away). Measured with fp32 masters: 1.
    EXPECT_GT(worst, 0.9);
}

TEST(Precision, LoraAdaptersAreFp32MastersUnderABf16BaseAndMoveWithLr1e4) {
    LlamaModel model = bf16_model();
    LoraOptions lo;
    lo.rank = 4;
    attach_lora(model, lo);
    std::vector<torch::Tensor> params = lora_parameters(model), before;
    ASSERT_FALSE(params.empty());
    for (auto& p : params) {
        EXPECT_EQ(p.scalar_type(), kMasterDtype);
        before.push_back(p.detach().clone());
    }
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4).weight_decay(0));
    auto tokens = torch::randint(0, 96, {2, 16});
    for (int step = 0; step < 3; ++step) {  // B starts at 0: A's gradient appears from step 2
        opt.zero_grad();
        auto logits = model->forward(tokens);  // bf16 layers; the head's logits come out in fp32
        auto loss = logits.to(torch::kFloat32).pow(2).mean();
        loss.backward();
        opt.step();
    }
    double worst = 1;
    int judged = 0;
    for (size_t i = 0; i < params.size(); ++i)
        if (before[i].abs().max().item<double>() >= 0.0625) {  // the A matrices (B starts at zero)
            worst = std::min(worst, moved_where_bf16_could_not(before[i], params[i]));
            ++judged;
        }
    EXPECT_GT(judged, 0);
    EXPECT_GT(worst, 0.9);  // bf16 masters: about 0
}
