// Softmax layers handed back after stage 1 (train/softmax_choice.h): the count rule, and the
// choice checked against models built independently of it (load_linearized + the teacher's
// own cores from a second load), on the same rows.
#include "train/softmax_choice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "eval/perplexity.h"
#include "model/weights.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/distill.h"
#include "train/linearized_model.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::TempDir;

namespace {

// A few steps of stage 1 on short rows; window 16 is shorter than the rows, or every layer
// would be exact and every choice a tie.
DistillConfig small_config(int64_t steps) {
    DistillConfig c;
    c.data.seq_len = 64;
    c.data.teacher_sequences = 24;
    c.schedule.batch_size = 2;
    c.schedule.steps = steps;
    c.schedule.eval_every = steps / 2;
    c.schedule.checkpoint_every = steps / 2;
    c.linearize.window.size = 16;
    return c;
}

}  // namespace

TEST(SoftmaxChoice, LayerCountRoundsUpAndLeavesALinearLayer) {
    EXPECT_EQ(softmax_layer_count(0.125, 6), 1);
    EXPECT_EQ(softmax_layer_count(0.125, 8), 1);  // exactly one in eight, not two by rounding
    EXPECT_EQ(softmax_layer_count(0.125, 16), 2);
    EXPECT_EQ(softmax_layer_count(0.125, 32), 4);
    EXPECT_EQ(softmax_layer_count(0.125, 126), 16);
    EXPECT_EQ(softmax_layer_count(0.0, 32), 0);
    EXPECT_EQ(softmax_layer_count(0.99, 6), 5);  // something always stays linear
    EXPECT_EQ(softmax_layer_count(0.5, 1), 0);
}

TEST(SoftmaxChoice, KeepsTheLayersWhoseSoftmaxLowersLossMostAndSavesTheRest) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string dir = lincat::test::default_model_dir();
    DistillConfig c = small_config(6);
    c.softmax_share = 0;  // all linear: the choice below is made by hand
    BaseModel base = load_base_model(dir);
    DistillOutcome o = distill(ws, base, c, std::nullopt, {});
    ASSERT_EQ(o.status, RunStatus::Completed);
    ASSERT_TRUE(o.softmax_kept.empty());
    const std::string all_linear = o.checkpoint;
    const torch::Tensor rows = o.eval_rows;
    const std::string run_dir = std::filesystem::path(all_linear).parent_path().string();

    const double teacher_before = sequences_nll(base.model, rows);
    SoftmaxChoice choice = keep_best_softmax_layers(ws, o.run, run_dir, o.steps, base, all_linear, rows, 2);
    EXPECT_EQ(sequences_nll(base.model, rows), teacher_before);  // the base model is given back as it was
    EXPECT_EQ(choice.teacher_nll, teacher_before);
    // Distinct scores, or the order below would test ties.
    for (size_t i = 1; i < choice.layer_nll.size(); ++i) EXPECT_NE(choice.layer_nll[i], choice.layer_nll[0]);

    // Each layer's score against a model built without softmax_choice: the all-linear checkpoint
    // loaded afresh, one layer's core replaced by the teacher's from a separate load.
    LlamaModel teacher = load_llama(dir);
    ASSERT_EQ(choice.layers.size(), 6u);
    std::vector<double> nll;
    for (int64_t l = 0; l < 6; ++l) {
        LlamaModel m = load_linearized(dir, all_linear);
        m->layer(l)->self_attn->set_core(teacher->layer(l)->self_attn->core());
        nll.push_back(sequences_nll(m, rows));
        // Same weights, same arithmetic: equal to fp32 summation order (1e-9 in nats).
        EXPECT_NEAR(choice.layer_nll[size_t(l)], nll.back(), 1e-9) << "layer " << l;
    }
    LlamaModel linear = load_linearized(dir, all_linear);
    EXPECT_NEAR(choice.linear_nll, sequences_nll(linear, rows), 1e-9);
    std::vector<int64_t> order(6);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return nll[size_t(a)] < nll[size_t(b)]; });
    std::vector<int64_t> best = {order[0], order[1]};
    std::sort(best.begin(), best.end());
    EXPECT_EQ(choice.kept, best);

    // The new checkpoint: recorded as the run's best, without the kept layers' tensors, and it
    // loads into the model with exactly those layers softmax.
    EXPECT_EQ(ws.best_checkpoint(o.run)->path, choice.checkpoint);
    LinearizeOptions saved = checkpoint_linearization(choice.checkpoint, nullptr);
    std::vector<int64_t> rest;
    for (int64_t l = 0; l < 6; ++l)
        if (!std::count(best.begin(), best.end(), l)) rest.push_back(l);
    EXPECT_EQ(saved.layers, rest);
    WeightStore w = WeightStore::open_file(choice.checkpoint + "/linear.safetensors");
    for (auto& name : w.names())
        for (int64_t k : best)
            EXPECT_EQ(name.find("model.layers." + std::to_string(k) + "."), std::string::npos) << name;
    LlamaModel both = load_linearized(dir, all_linear);
    for (int64_t k : best) both->layer(k)->self_attn->set_core(teacher->layer(k)->self_attn->core());
    LlamaModel loaded = load_linearized(dir, choice.checkpoint);
    EXPECT_NEAR(sequences_nll(loaded, rows), sequences_nll(both, rows), 1e-9);

    EXPECT_THROW(keep_best_softmax_layers(ws, o.run, run_dir, o.steps, base, all_linear, rows, 6),
                 std::exception);  // every layer softmax is no linearization
}

// A run killed after its choice was recorded but before it was marked completed chooses again
// from training's best checkpoint (all layers), not from the one that already left a layer out.
TEST(SoftmaxChoice, AResumedRunChoosesFromTrainingsBestCheckpoint) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    DistillConfig c = small_config(4);
    BaseModel base = load_base_model(lincat::test::default_model_dir());
    DistillOutcome first = distill(ws, base, c, std::nullopt, {});
    ASSERT_EQ(first.softmax_kept.size(), 1u);
    ws.set_run_status(first.run, RunStatus::Running);  // as if killed before "completed"
    DistillOutcome again = distill(ws, base, c, first.run, {});
    ASSERT_EQ(again.status, RunStatus::Completed);
    EXPECT_EQ(again.softmax_kept, first.softmax_kept);
    EXPECT_EQ(checkpoint_linearization(again.checkpoint, nullptr).layers.size(), 5u);  // not 4
}
