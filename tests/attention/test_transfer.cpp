// Attention transfer's fast path (one score matrix for teacher and student, no repeat_kv
// copies) against its slow reference (the softmax teacher, then the student's own chunked
// forward on repeated keys): outputs, the per-layer MSE and its gradients w.r.t. every
// trainable tensor, at odd lengths, with GQA, for each window kind.
#include "attention/transfer.h"

#include "attention/hybrid_inputs.h"
#include "attention/linearize.h"
#include "attention/softmax.h"
#include "model/config.h"
#include "test_util.h"

using namespace lincat;
using lincat::test::max_abs_diff;

namespace {

struct Case {
    int64_t T;
    WindowSpec window;
    int64_t sliding_window;  // the teacher's (Mistral-style) window, 0 = full causal
};

std::shared_ptr<HybridAttentionImpl> make_student(int64_t H, int64_t d, const WindowSpec& w, FeatureMapKind kind) {
    torch::manual_seed(5);
    auto s = std::make_shared<HybridAttentionImpl>(
        HybridOptions(H, d).window(w).feature_dim(6).feature_map(kind).affine(true));
    torch::NoGradGuard ng;
    s->window_factors.copy_(torch::linspace(-2, 1, H));  // different gamma per head
    return s;
}

// The reference: what TransferAttention computed before the shared-scores form.
struct Reference {
    torch::Tensor teacher, student;
};
Reference reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, HybridAttentionImpl& s,
                    int64_t sliding_window) {
    Reference r;
    {
        torch::NoGradGuard ng;
        r.teacher = softmax_attention(q, k, v, 0, sliding_window);
    }
    r.student = s.forward(q, k, v, nullptr);
    return r;
}

std::vector<torch::Tensor> grads_of(const torch::Tensor& loss, HybridAttentionImpl& s) {
    auto params = s.parameters();
    // allow_unused: below two windows the linear part, and with it the feature maps, is not used.
    auto g = torch::autograd::grad({loss}, params, {}, /*retain_graph=*/c10::nullopt, /*create_graph=*/false,
                                   /*allow_unused=*/true);
    for (size_t i = 0; i < g.size(); ++i)
        if (!g[i].defined()) g[i] = torch::zeros_like(params[i]);
    return g;
}

}  // namespace

TEST(TransferSharedScores, MatchesTheReferenceForwardAndBackward) {
    const int64_t B = 2, H = 4, Hkv = 2, d = 8;
    const std::vector<Case> cases = {
        {37, {WindowKind::Terraced, 8, BlockAlign::Start}, 0},
        {37, {WindowKind::Terraced, 8, BlockAlign::End}, 0},
        {64, {WindowKind::Terraced, 16, BlockAlign::Start}, 0},
        {53, {WindowKind::Sliding, 7, BlockAlign::Start}, 0},
        {41, {WindowKind::Terraced, 8, BlockAlign::Start}, 20},
        {5, {WindowKind::Terraced, 16, BlockAlign::Start}, 0},  // shorter than one window
    };
    for (auto kind : {FeatureMapKind::SoftmaxDim, FeatureMapKind::Relu}) {
        for (const Case& c : cases) {
            SCOPED_TRACE("T " + std::to_string(c.T) + " " + window_kind_name(c.window.kind) + " " +
                         std::to_string(c.window.size) + " " + block_align_name(c.window.align) + " teacher window " +
                         std::to_string(c.sliding_window) + " map " + feature_map_kind_name(kind));
            torch::manual_seed(c.T);
            auto q = torch::randn({B, H, c.T, d}), k = torch::randn({B, Hkv, c.T, d}),
                 v = torch::randn({B, Hkv, c.T, d});
            auto student = make_student(H, d, c.window, kind);
            Reference ref = reference(q, k, v, *student, c.sliding_window);
            TransferOutputs fast = transfer_outputs_shared_scores(q, k, v, *student, c.sliding_window);
            // fp32 throughout; outputs are O(1): differences are summation order only.
            EXPECT_LT(max_abs_diff(fast.teacher, ref.teacher), 2e-6);
            EXPECT_LT(max_abs_diff(fast.student, ref.student), 2e-5);
            EXPECT_FALSE(fast.teacher.requires_grad());

            auto loss_ref = torch::mse_loss(ref.student, ref.teacher);
            auto loss_fast = torch::mse_loss(fast.student, fast.teacher);
            EXPECT_NEAR(loss_fast.item<double>(), loss_ref.item<double>(), 1e-6 + 1e-5 * loss_ref.item<double>());
            auto g_ref = grads_of(loss_ref, *student), g_fast = grads_of(loss_fast, *student);
            ASSERT_EQ(g_ref.size(), g_fast.size());
            for (size_t i = 0; i < g_ref.size(); ++i) {
                const double scale = g_ref[i].abs().max().item<double>();
                // Shorter than two windows nothing is linear, and nothing trainable has a gradient.
                if (c.T > 2 * c.window.size) EXPECT_GT(scale, 0.0) << "parameter " << i << " gets no gradient";
                // Relative to the largest entry: gradients are sums over B H T^2 products.
                EXPECT_LT(max_abs_diff(g_fast[i], g_ref[i]), 1e-4 * scale + 1e-9) << "parameter " << i;
            }
        }
    }
}

TEST(TransferSharedScores, LayerUsesItAndEvalModeBuildsNoGraph) {
    const int64_t H = 4, d = 8, T = 33;
    torch::manual_seed(2);
    auto q = torch::randn({1, H, T, d}), k = torch::randn({1, 1, T, d}), v = torch::randn({1, 1, T, d});
    auto student = make_student(H, d, {WindowKind::Terraced, 8, BlockAlign::Start}, FeatureMapKind::SoftmaxDim);
    TransferAttentionImpl fast(student, 0), slow(student, 0);
    EXPECT_FALSE(slow.shared_scores);  // the default: the chunked student
    fast.shared_scores = true;
    torch::NoGradGuard ng;  // as in training: the model around the layer runs without grad
    auto y_fast = fast.forward(q, k, v, nullptr), y_slow = slow.forward(q, k, v, nullptr);
    EXPECT_LT(max_abs_diff(y_fast, y_slow), 2e-6);
    EXPECT_NEAR(fast.last_mse.item<double>(), slow.last_mse.item<double>(), 1e-6);
    EXPECT_TRUE(fast.last_mse.requires_grad());  // training mode: the student's graph is built
    fast.eval();
    fast.forward(q, k, v, nullptr);
    EXPECT_FALSE(fast.last_mse.requires_grad());
    slow.eval();
    slow.forward(q, k, v, nullptr);
    EXPECT_FALSE(slow.last_mse.requires_grad());
}

TEST(FeatureMapGrouped, EqualsTheMapOnRepeatedKeys) {
    const int64_t H = 6, Hkv = 2, d = 5;
    for (auto kind :
         {FeatureMapKind::SoftmaxDim, FeatureMapKind::Relu, FeatureMapKind::OnePlusElu, FeatureMapKind::ExpDim}) {
        torch::manual_seed(1);
        FeatureMap fm(FeatureMapOptions(H, d).feature_dim(4).kind(kind));
        auto x = torch::randn({2, Hkv, 9, d});
        auto grouped = fm->forward_grouped(x, H / Hkv);
        auto repeated = fm->forward(x.repeat_interleave(H / Hkv, 1));
        EXPECT_LT(max_abs_diff(grouped, repeated), 1e-6) << feature_map_kind_name(kind);
    }
    FeatureMap fm(FeatureMapOptions(H, d));
    lincat::test::expect_error([&] { fm->forward_grouped(torch::randn({1, 4, 3, d}), 3); }, {"feature map", "3"});
}

// Stage 1's teacher pass stops at the last student's attention: every student sees the same
// teacher activations, and gets the same loss, as under the whole forward.
TEST(RunThroughAttention, GivesTheStudentsWhatTheWholeForwardGives) {
    torch::manual_seed(21);
    LlamaModel model(parse_model_config(R"({"model_type": "llama", "vocab_size": 80, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 64})",
                                        "tiny"));
    {
        torch::NoGradGuard ng;
        for (auto& p : model->named_parameters())
            if (p.key().find("norm") == std::string::npos) p.value().normal_(0, 0.3);
    }
    LinearizeOptions o;
    o.window.size = 4;
    o.feature_dim = 8;
    o.layers = {0, 2};  // layer 3 and the MLP of layer 2 feed no target
    linearize(model, o);
    TransferLayers transfer = wrap_for_transfer(model, false);
    ASSERT_EQ(transfer.layers, (std::vector<int64_t>{0, 2}));
    auto tokens = torch::randint(0, 80, {2, 20});
    torch::NoGradGuard ng;
    model->hidden(tokens);
    std::vector<torch::Tensor> whole;
    for (auto& c : transfer.cores) whole.push_back(c->last_mse.clone());
    for (auto& c : transfer.cores) c->last_mse = torch::Tensor();
    model->run_through_attention(tokens, transfer.layers.back());
    for (size_t i = 0; i < whole.size(); ++i) {
        ASSERT_TRUE(transfer.cores[i]->last_mse.defined()) << "layer " << transfer.layers[i];
        EXPECT_TRUE(torch::equal(transfer.cores[i]->last_mse, whole[i])) << "layer " << transfer.layers[i];
    }
    lincat::test::expect_error([&] { model->run_through_attention(tokens, 4); }, {"run_through_attention", "layer 4"});
    lincat::test::expect_error([&] { model->run_through_attention(tokens.flatten(), 2); }, {"(batch, time)"});
    lincat::test::expect_error([&] { model->run_through_attention(tokens + 80, 2); }, {"out of range"});
}
