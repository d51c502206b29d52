// Position error (eval/position_error.h): where the window ends is read off the mask the
// hybrid uses, checked here against the definition of each variant; inside the window the
// student is the teacher's softmax (MSE at fp32 rounding), beyond it the linear part differs;
// the per-position and per-head figures average to eval's layer MSE (compare_models, an
// independent path: TransferAttentionImpl's mse_loss).
#include "eval/position_error.h"

#include "attention/linearize.h"
#include "eval/compare.h"
#include "test_util.h"
#include "util/threads.h"

using namespace lincat;

namespace {

LlamaModel linearized_stories(WindowKind kind, int64_t window, std::vector<int64_t> layers = {}) {
    init_torch_threads();
    LlamaModel m = load_llama(lincat::test::default_model_dir());
    LinearizeOptions o;
    o.window.kind = kind, o.window.size = window, o.layers = std::move(layers);
    torch::manual_seed(0);
    linearize(m, o);
    return m;
}

torch::Tensor random_rows(int64_t n, int64_t t, int64_t vocab) {
    torch::manual_seed(1);
    return torch::randint(3, vocab, {n, t}, torch::kLong);
}

}  // namespace

TEST(PositionError, SlidingWindowErrorStartsWhereTheWindowEnds) {
    LlamaModel m = linearized_stories(WindowKind::Sliding, 16);
    auto rows = random_rows(3, 61, m->config().vocab_size);  // odd length, 3 rows in batches of 2
    PositionError e = position_error(m, rows, 2);
    ASSERT_EQ(e.layers.size(), size_t(m->config().num_hidden_layers));
    EXPECT_EQ(e.rows, 3);
    EXPECT_EQ(e.positions, 61);
    EXPECT_EQ(e.variant, "sw");
    EXPECT_EQ(e.window, 16);
    // A sliding window of w keys: query i's linear part holds keys 0 .. i - w.
    for (int64_t i = 0; i < 61; ++i) EXPECT_EQ(e.linear_keys[size_t(i)], std::max<int64_t>(0, i + 1 - 16)) << i;
    EXPECT_EQ(e.window_edge, 16);
    for (size_t l = 0; l < e.layers.size(); ++l) {
        double inside = 0, beyond = 0;
        for (int64_t i = 0; i < 16; ++i) inside = std::max(inside, e.mse[l][size_t(i)]);
        for (int64_t i = 16; i < 61; ++i) beyond += e.mse[l][size_t(i)] / 45;
        // Inside: the same softmax in both (fp32 rounding of outputs of size ~1: 1e-12).
        EXPECT_LT(inside, 1e-10) << "layer " << l;
        EXPECT_GT(beyond, 1e3 * std::max(inside, 1e-15)) << "layer " << l;
    }
    EXPECT_GT(e.beyond_mse, 1e3 * std::max(e.inside_mse, 1e-15));
}

TEST(PositionError, TerracedEdgeFollowsTheBlocksAndFiguresAverageToEvalsLayerMse) {
    LlamaModel m = linearized_stories(WindowKind::Terraced, 16, {1, 4});
    LlamaModel teacher = load_llama(lincat::test::default_model_dir());
    auto rows = random_rows(4, 64, m->config().vocab_size);
    PositionError e = position_error(m, rows, 3);
    EXPECT_EQ(e.layers, (std::vector<int64_t>{1, 4}));
    EXPECT_EQ(e.variant, "tk");
    // Start-aligned blocks of w: a query in block b sees blocks b-1 and b in the window, so
    // its linear part holds the (b - 1) * w keys before them.
    for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(e.linear_keys[size_t(i)], std::max<int64_t>(0, (i / 16 - 1) * 16)) << i;
    EXPECT_EQ(e.window_edge, 32);

    ModelComparison c = compare_models(teacher, m, rows, 4);
    ASSERT_EQ(c.layers, e.layers);
    for (size_t l = 0; l < e.layers.size(); ++l) {
        double by_position = 0, by_head = 0;
        for (double v : e.mse[l]) by_position += v / double(e.positions);
        for (double v : e.head_mse[l]) by_head += v / double(e.heads);
        // Different summation orders in fp32 (mse_loss) and fp64 (ours): 1e-5 relative.
        EXPECT_NEAR(by_position, c.layer_mse[l], 1e-5 * c.layer_mse[l]) << "layer " << e.layers[l];
        EXPECT_NEAR(by_head, c.layer_mse[l], 1e-5 * c.layer_mse[l]) << "layer " << e.layers[l];
        EXPECT_NEAR(e.layer_mse[l], c.layer_mse[l], 1e-5 * c.layer_mse[l]);
    }
    // The hybrid cores are back: the model decodes and runs as before.
    for (int64_t l : e.layers) EXPECT_EQ(m->layer(l)->self_attn->core()->kind(), "hybrid");
}

TEST(PositionError, RefusesWhatItCannotMeasureAndReadsItsJsonBack) {
    init_torch_threads();
    LlamaModel softmax = load_llama(lincat::test::default_model_dir());
    auto rows = random_rows(1, 8, softmax->config().vocab_size);
    lincat::test::expect_error([&] { position_error(softmax, rows); }, {"no linearized"});
    LlamaModel m = linearized_stories(WindowKind::Sliding, 4);
    lincat::test::expect_error([&] { position_error(m, rows.view({-1})); }, {"(N, T)"});
    lincat::test::expect_error([&] { position_error(m, rows, 0); }, {"batch"});

    PositionError e = position_error(m, rows);
    PositionError back = position_error_from_json(position_error_to_json(e), "cache.json");
    EXPECT_EQ(back.layers, e.layers);
    EXPECT_EQ(back.mse, e.mse);
    EXPECT_EQ(back.head_mse, e.head_mse);
    EXPECT_EQ(back.linear_keys, e.linear_keys);
    EXPECT_EQ(back.window_edge, e.window_edge);
    lincat::test::expect_error([] { position_error_from_json("[1]", "cache.json"); }, {"cache.json", "object"});
    lincat::test::expect_error([] { position_error_from_json(R"({"layers": [0]})", "cache.json"); },
                               {"cache.json", "position-error"});
}
