#include "plan/plan_measured.h"
#include "plan/planner.h"
#include "store/workspace.h"

#include "test_util.h"
#include "util/json.h"

using namespace lincat;
using lincat::test::expect_error;

TEST(Planner, Llama405BDiskMatchesThePaper) {
    PlanInput in;
    in.model = plan_preset("llama-3.1-405b");
    in.tokens = 50'000'000;
    EXPECT_NEAR(double(in.model.parameters()) / 1e9, 405.9, 0.5);
    PlanRow k1 = plan_row(in, 1), k9 = plan_row(in, 9);
    EXPECT_EQ(k1.blocks, 126);
    EXPECT_NEAR(k1.disk_bytes / 1e12, 206.4, 0.1);  // "about 200 TB"
    EXPECT_EQ(k9.blocks, 14);
    EXPECT_NEAR(k9.disk_bytes / 1e12, 22.9, 0.1);  // "about 22 TB"
    // A block of 9 frozen 405B layers in bf16 is ~57 GB: it fits an 80 GB GPU.
    EXPECT_NEAR(k9.weights_bytes / 1e9, 57.4, 0.5);
    EXPECT_TRUE(k9.fits_gpu);
    EXPECT_FALSE(plan_row(in, 20).fits_gpu);  // 20 layers = 127 GB of weights
}

TEST(Planner, RecommendationRespectsLimits) {
    PlanInput in;
    in.model = plan_preset("llama-3.1-405b");
    in.disk_limit_bytes = 30e12;
    Plan p = make_plan(in);
    ASSERT_GT(p.recommended_k, 0);
    const PlanRow& r = p.rows[size_t(p.recommended_k - 1)];
    EXPECT_TRUE(r.fits_gpu);
    EXPECT_LE(r.disk_bytes, 30e12);
    double fastest = INFINITY;
    for (auto& row : p.rows)
        if (row.fits) fastest = std::min(fastest, row.hours_wall);
    EXPECT_LE(r.hours_wall, 1.05 * fastest);  // within 5% of the fastest, and the cheapest of those
    for (auto& row : p.rows)
        if (row.fits && row.hours_wall <= 1.05 * fastest) EXPECT_GE(row.cost, r.cost);
    in.gpu_bytes = 1e9;  // nothing fits
    Plan none = make_plan(in);
    EXPECT_EQ(none.recommended_k, 0);
    EXPECT_NE(none.reason.find("no k fits"), std::string::npos);
}

TEST(Planner, JsonHasTheDocumentedKeys) {
    PlanInput in;
    in.model = plan_preset("stories15m");
    json j = parse_json(plan_to_json(make_plan(in)), "plan");
    ASSERT_EQ(j["rows"].size(), 6u);
    for (const char* key : {"k", "blocks", "disk_bytes", "gpu_bytes_per_block", "hours_wall", "fits"})
        EXPECT_TRUE(j["rows"][0].contains(key)) << key;
    EXPECT_TRUE(j.contains("recommended_k"));
}

TEST(Planner, BadInputs) {
    PlanInput in;
    in.model = plan_preset("llama-3.1-70b");
    expect_error([&] { plan_row(in, 0); }, {"k = 0", "outside [1, 80]"});
    expect_error([&] { plan_row(in, 81); }, {"k = 81"});
    expect_error([] { plan_preset("gpt-5"); }, {"unknown preset 'gpt-5'", "llama-3.1-405b"});
    in.tokens = 0;
    expect_error([&] { plan_row(in, 1); }, {"must be positive"});
}

// The streaming pipeline's time and money: dump job b runs block b-1's layers (the last block's
// never run in the dump), each block trains once its input exists, cost = GPU-hours x price +
// disk TB x price. With a GPU per block, the wall time is the dump chain plus one block's training.
TEST(Planner, StreamingScheduleDumpMemoryAndCost) {
    PlanInput in;
    in.model = plan_preset("llama-3.1-405b");
    in.gpus = 16;
    PlanRow r = plan_row(in, 9);
    const double rate = in.gpu_flops * in.utilization;
    const double dump_job = 9 * dump_flops_per_layer_token(in.model) * double(in.tokens) / rate / 3600;
    EXPECT_NEAR(r.dump_hours, 13 * dump_job, 1e-9 * r.dump_hours);  // 14 blocks: 13 dump jobs run layers
    EXPECT_NEAR(r.hours_wall, r.dump_hours + r.block_hours, 1e-9 * r.hours_wall);
    EXPECT_NEAR(r.gpu_hours, r.dump_hours + 14 * r.block_hours, 1e-9 * r.gpu_hours);
    EXPECT_NEAR(r.cost, r.gpu_hours * 3.0 + r.disk_bytes / 1e12 * 25.0, 1e-9 * r.cost);
    // One block of 9 layers (57 GB) plus a micro-batch: a dump job fits one 80 GB GPU.
    EXPECT_GT(r.dump_gpu_bytes, r.weights_bytes);
    EXPECT_LT(r.dump_gpu_bytes, 80e9);
    in.gpus = 1;  // one GPU: the dump chain first, then every block in turn
    PlanRow one = plan_row(in, 9);
    EXPECT_NEAR(one.hours_wall, one.dump_hours + 14 * one.block_hours, 1e-9 * one.hours_wall);
    // Saved-state bytes and weight bytes are separate inputs.
    in.bytes_per_value = 4;
    EXPECT_DOUBLE_EQ(plan_row(in, 9).weights_bytes, r.weights_bytes);
    EXPECT_DOUBLE_EQ(plan_row(in, 9).disk_bytes, 2 * r.disk_bytes);
    in.gpu_hour_price = -1;
    expect_error([&] { plan_row(in, 9); }, {"prices not negative"});
}

TEST(Planner, JsonKeepsPricesCalibrationAndReadsOldPlans) {
    PlanInput in;
    in.model = plan_preset("stories15m");
    in.gpu_hour_price = 1.5, in.disk_tb_price = 7, in.block_flops_measured = 2e9, in.weight_bytes_per_value = 4;
    Plan back = plan_from_json(plan_to_json(make_plan(in)), "plan.json");
    EXPECT_EQ(back.input.gpu_hour_price, 1.5);
    EXPECT_EQ(back.input.disk_tb_price, 7);
    EXPECT_EQ(back.input.block_flops_measured, 2e9);
    EXPECT_EQ(back.input.weight_bytes_per_value, 4);
    EXPECT_NEAR(back.rows[2].cost, make_plan(in).rows[2].cost, 1e-9);
    json old = parse_json(plan_to_json(make_plan(PlanInput{plan_preset("stories15m")})), "plan");
    old["input"].erase("weight_bytes_per_value");
    old["input"]["bytes_per_value"] = 4;
    EXPECT_EQ(plan_from_json(old.dump(), "old.json").input.weight_bytes_per_value, 4);  // one figure for both
}

TEST(Planner, MeasuredJobsComeBackFromTheWorkspaceAndCalibrate) {
    lincat::test::TempDir d;
    const PlanModel model = plan_preset("stories15m");
    {
        Workspace ws = Workspace::open(d.file("ws"));
        const std::string shape = plan_shape_key(model), other = plan_shape_key(plan_preset("mistral-7b"));
        int64_t a = ws.create_run("default", RunKind::DistillBlock, "{}", std::string(64, 'a'));
        ws.set_run_results(a, json({{"measured",
                                     {{"k", 3},
                                      {"peak_rss_bytes", 300},
                                      {"model_shape", shape},
                                      {"achieved_flops", 4e9},
                                      {"tokens_per_second", 900.0}}}})
                                  .dump());
        int64_t b = ws.create_run("default", RunKind::DistillBlock, "{}", std::string(64, 'a'));
        ws.set_run_results(
            b,
            json({{"measured", {{"k", 3}, {"peak_rss_bytes", 500}, {"model_shape", other}, {"achieved_flops", 1e12}}}})
                .dump());  // another model
        int64_t c = ws.create_run("default", RunKind::DumpStates, "{}", std::string(64, 'a'));
        ws.set_run_results(c, json({{"k", 3},
                                    {"seq_len", 64},
                                    {"jobs",
                                     {{{"peak_rss_bytes", 200}, {"model_shape", shape}, {"achieved_flops", 0.0}},
                                      {{"peak_rss_bytes", 250}, {"model_shape", shape}, {"achieved_flops", 6e9}}}}})
                                  .dump());
    }
    PlanMeasurements m = plan_measurements(d.file("ws"), model);
    ASSERT_EQ(m.jobs.size(), 3u);  // the other model's job is left out
    EXPECT_EQ(m.block_peak(3), 300);
    EXPECT_EQ(m.dump_peak(3), 250);
    EXPECT_EQ(m.block_peak(2), 0);
    EXPECT_EQ(m.block_flops(), 4e9);
    EXPECT_EQ(m.dump_flops(), 6e9);  // a job that ran no layers (block 0: embeddings) has no rate
    PlanInput in;
    in.model = model;
    PlanInput cal = calibrated(in, m);
    EXPECT_NEAR(plan_row(cal, 3).block_hours / plan_row(in, 3).block_hours, in.gpu_flops * in.utilization / 4e9, 1e-6);
    expect_error([&] { plan_measurements(d.file("nope"), model); }, {"nope", "not a workspace"});
}

TEST(Planner, MeasuredJobsArePredictedForTheirOwnShapesAndOutliersLeaveTheCalibration) {
    lincat::test::TempDir d;
    const PlanModel model = plan_preset("stories15m");
    {
        Workspace ws = Workspace::open(d.file("ws"));
        // Three block jobs at k = 2; the third ran on a machine shared with other work.
        for (double flops : {40e9, 50e9, 0.9e9}) {
            int64_t r = ws.create_run("default", RunKind::DistillBlock, "{}", std::string(64, 'a'));
            ws.set_run_results(r, json({{"measured",
                                         {{"k", 2},
                                          {"peak_rss_bytes", 250'000'000},
                                          {"baseline_rss_bytes", 170'000'000},
                                          {"peak_tensor_bytes", 60'000'000},
                                          {"micro_batch", 4},
                                          {"seq_len", 128},
                                          {"window", 16},
                                          {"feature_dim", 64},
                                          {"model_shape", plan_shape_key(model)},
                                          {"achieved_flops", flops}}}})
                                      .dump());
        }
    }
    PlanMeasurements m = plan_measurements(d.file("ws"), model);
    ASSERT_EQ(m.jobs.size(), 3u);
    EXPECT_FALSE(m.jobs[0].outlier);
    EXPECT_FALSE(m.jobs[1].outlier);
    EXPECT_TRUE(m.jobs[2].outlier);           // 0.9 GFLOP/s against a median of 40
    EXPECT_DOUBLE_EQ(m.block_flops(), 45e9);  // the mean of the other two
    EXPECT_EQ(m.block_peak(2), 80'000'000);   // above the job's start, not its whole RSS
    EXPECT_EQ(m.jobs[0].peak_tensor_bytes, 60'000'000);
    PlanInput in;
    in.model = model;
    in.weight_bytes_per_value = 4, in.micro_batch = 4, in.seq_len = 128, in.window = 16, in.feature_dim = 64;
    EXPECT_DOUBLE_EQ(predicted_job_bytes(m.jobs[0], model), plan_row(in, 2).gpu_bytes_per_block);
    MeasuredJob dump = m.jobs[0];
    dump.kind = "dump";
    in.dump_micro_batch = 4;
    EXPECT_DOUBLE_EQ(predicted_job_bytes(dump, model), plan_row(in, 2).dump_gpu_bytes);
    MeasuredJob unknown = m.jobs[0];
    unknown.window = 0;  // recorded before jobs wrote their window
    EXPECT_EQ(predicted_job_bytes(unknown, model), 0);
}
