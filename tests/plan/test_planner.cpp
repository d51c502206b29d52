#include "plan/planner.h"

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
    for (auto& row : p.rows)
        if (row.fits) EXPECT_GE(row.hours_wall, r.hours_wall - 1e-9);
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
