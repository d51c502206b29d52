// lincat ablate's variant specs: parsed into field assignments over the stages' own tables.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"
#include "train/ablation_spec.h"
#include "train/stage2_policy.h"

using namespace lincat;
using lincat::test::expect_error;

TEST(AblationSpec, VariantsAssignStageOneAndStageTwoFields) {
    auto v = parse_ablation_variants(
        " lolcats ; window=16 variant=sw; keep_softmax=4,5 stage2_lr=1e-3 stage2_lora_rank=4;"
        "feature_dim=32 stage2=off ");
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v[0].name, "lolcats");
    EXPECT_TRUE(v[0].stage2.empty() && v[0].run_stage2);
    DistillConfig base;
    // 'lolcats' is LoLCATs' recipe over Lincat's defaults; 'default' changes nothing.
    DistillConfig l = ablation_distill_config(v[0], base, 6);
    EXPECT_EQ(l.linearize.feature_dim, 64);
    EXPECT_EQ(l.linearize.gate, GateKind::None);
    EXPECT_EQ(l.softmax_share, 0.0);
    EXPECT_EQ(l.linearize.window, base.linearize.window);
    EXPECT_EQ(ablation_distill_config(parse_ablation_variants("default")[0], base, 6), base);
    EXPECT_EQ(
        ablation_distill_config(parse_ablation_variants("lolcats feature_dim=32")[0], base, 6).linearize.feature_dim,
        32);  // keys after it still apply

    DistillConfig w = ablation_distill_config(v[1], base, 6);
    EXPECT_EQ(w.linearize.window.size, 16);
    EXPECT_EQ(w.linearize.window.kind, WindowKind::Sliding);
    EXPECT_EQ(w.data, base.data);

    DistillConfig k = ablation_distill_config(v[2], base, 6);
    EXPECT_EQ(k.linearize.layers, (std::vector<int64_t>{0, 1, 2, 3}));
    EXPECT_EQ(k.softmax_share, 0.0);  // named softmax layers stay as named
    EXPECT_EQ(
        ablation_distill_config(parse_ablation_variants("keep_softmax=5 softmax_share=0.2")[0], base, 6).softmax_share,
        0.2);
    EXPECT_EQ(ablation_distill_config(v[1], base, 6).softmax_share, base.softmax_share);
    FinetuneConfig f = ablation_finetune_config(v[2], FinetuneConfig{});
    EXPECT_DOUBLE_EQ(f.schedule.lr, 1e-3);
    EXPECT_EQ(f.lora.rank, 4);

    EXPECT_EQ(ablation_distill_config(parse_ablation_variants("keep_softmax=1,2,3,4,5")[0], base, 6).linearize.layers,
              (std::vector<int64_t>{0}));
    EXPECT_EQ(ablation_distill_config(parse_ablation_variants("layers=2")[0], base, 6).linearize.layers,
              (std::vector<int64_t>{2}));
    EXPECT_EQ(layers_keeping_softmax("5", 6, "x"), (std::vector<int64_t>{0, 1, 2, 3, 4}));
    EXPECT_FALSE(v[3].run_stage2);
    EXPECT_EQ(ablation_distill_config(v[3], base, 6).linearize.feature_dim, 32);
}

TEST(AblationSpec, WhatWouldChangeTheBudgetOrIsNotAnOptionIsRefused) {
    DistillConfig base;
    auto one = [](const std::string& s) { return parse_ablation_variants(s).front(); };
    expect_error([&] { ablation_distill_config(one("windw=16"), base, 6); }, {"variant 'windw=16'", "'windw'"});
    expect_error([&] { ablation_distill_config(one("steps=10"), base, 6); }, {"'steps'"});
    expect_error([&] { ablation_distill_config(one("teacher_sequences=8"), base, 6); }, {"'teacher_sequences'"});
    expect_error([&] { ablation_distill_config(one("window=big"), base, 6); }, {"variant 'window=big'", "window"});
    expect_error([&] { ablation_distill_config(one("keep_softmax=6"), base, 6); }, {"keep_softmax layer 6"});
    expect_error([&] { ablation_distill_config(one("keep_softmax=0,1,2,3,4,5"), base, 6); }, {"nothing is linearized"});
    expect_error([&] { ablation_finetune_config(one("stage2_stage1_run=3"), FinetuneConfig{}); }, {"'stage1_run'"});
    expect_error([] { parse_ablation_variants("window16"); }, {"'window16'", "key=value"});
    expect_error([] { parse_ablation_variants("a=1; a=1"); }, {"given twice"});
    expect_error([] { parse_ablation_variants(" ; "); }, {"no variant"});
    expect_error([] { parse_ablation_variants("stage2=maybe"); }, {"stage2=maybe"});
}

// linearize's stage-2 policy (train/stage2_policy.h), which the ablation table measured.
TEST(Stage2Policy, AutoSkipsStageTwoOnlyWhenStageOneIsCloseToTheTeacher) {
    EXPECT_EQ(parse_stage2_mode("auto", "x"), Stage2Mode::Auto);
    EXPECT_EQ(parse_stage2_mode("on", "x"), Stage2Mode::On);
    EXPECT_EQ(parse_stage2_mode("off", "x"), Stage2Mode::Off);
    expect_error([] { parse_stage2_mode("sometimes", "linearize --stage2"); }, {"linearize --stage2", "'sometimes'"});
    const double t = 3.131;
    // Just under the gap: skipped, with the figure and how to force it in the reason.
    const std::string skip = stage2_skip_reason(Stage2Mode::Auto, t, t * (1 + kStage2MinGap * 0.99));
    EXPECT_NE(skip.find("+2.97%"), std::string::npos) << skip;
    EXPECT_NE(skip.find("--stage2 on"), std::string::npos) << skip;
    EXPECT_EQ(stage2_skip_reason(Stage2Mode::Auto, t, t * (1 + kStage2MinGap * 1.01)), "");  // far: it runs
    EXPECT_EQ(stage2_skip_reason(Stage2Mode::On, t, t), "");                                 // forced
    EXPECT_NE(stage2_skip_reason(Stage2Mode::Off, t, t * 2).find("--stage2 off"), std::string::npos);
    EXPECT_EQ(stage2_skip_reason(Stage2Mode::Auto, t, NAN), "");  // no figure to judge by: it runs
}
