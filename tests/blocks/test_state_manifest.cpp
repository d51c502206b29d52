// The torch-free side of block-wise stage 1: block layout, the state-dump manifest parser (every
// field checked, paths confined), the plan JSON round trip and the Slurm scripts from a plan.
#include <gtest/gtest.h>

#include "blocks/slurm.h"
#include "blocks/state_manifest.h"
#include "plan/planner.h"
#include "test_util.h"
#include "util/json.h"

using namespace lincat;
using lincat::test::expect_error;

namespace {

StateManifest small_manifest() {
    StateManifest m;
    m.base_model_hash = std::string(64, 'a');
    m.num_layers = 6, m.hidden = 8, m.k = 4, m.seq_len = 4, m.dtype = DType::F32;
    m.train_rows = 5, m.eval_rows = 2;
    m.tokens_file = "tokens.safetensors", m.tokens_sha256 = std::string(64, 'b');
    m.data_json = R"({"seq_len": 4})";
    m.blocks = make_blocks(6, 4);
    for (auto& b : m.blocks) {
        m.shards.push_back({b.index, "train", 0, 3, "block-00" + std::to_string(b.index) + "/train-0.safetensors",
                            m.shard_bytes(3), std::string(64, 'c')});
        m.shards.push_back({b.index, "train", 3, 2, "block-00" + std::to_string(b.index) + "/train-3.safetensors",
                            m.shard_bytes(2), std::string(64, 'd')});
        m.shards.push_back({b.index, "eval", 0, 2, "block-00" + std::to_string(b.index) + "/eval-0.safetensors",
                            m.shard_bytes(2), std::string(64, 'e')});
    }
    return m;
}

// The manifest's JSON with one edit applied.
std::string edited(const std::function<void(json&)>& edit) {
    json j = json::parse(state_manifest_to_json(small_manifest()));
    edit(j);
    return j.dump();
}

}  // namespace

TEST(Blocks, LayoutOfKConsecutiveLayers) {
    auto b = make_blocks(126, 9);
    EXPECT_EQ(b.size(), 14u);  // the paper's 405B split
    auto c = make_blocks(6, 4);
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[1].first_layer, 4);
    EXPECT_EQ(c[1].layers, 2);  // the last block is shorter
    expect_error([] { make_blocks(6, 0); }, {"k = 0", "[1, 6]"});
    expect_error([] { make_blocks(6, 7); }, {"k = 7", "6 layers"});
}

TEST(StateManifest, RoundTripsAndListsShardsInOrder) {
    StateManifest m = parse_state_manifest(state_manifest_to_json(small_manifest()), "manifest.json");
    EXPECT_EQ(m.blocks.size(), 2u);
    EXPECT_EQ(m.shards.size(), 6u);
    auto s = m.block_shards(1, "train");
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[1].row_begin, 3);
    EXPECT_EQ(m.total_bytes(), 2u * 7u * 4u * 8u * 4u);  // 2 blocks x 7 rows x T x C x 4 bytes
    EXPECT_EQ(json::parse(m.data_json)["seq_len"], 4);
}

TEST(StateManifest, RefusesEveryKindOfDamage) {
    auto bad = [](const std::function<void(json&)>& edit, std::initializer_list<std::string> needles) {
        expect_error([&] { parse_state_manifest(edited(edit), "m.json"); }, needles);
    };
    bad([](json& j) { j["blocks"][0]["shards"][0]["file"] = "../../etc/passwd"; }, {"m.json", "'..'"});
    bad([](json& j) { j["blocks"][0]["shards"][0]["file"] = "/etc/passwd"; }, {"relative"});
    bad([](json& j) { j["tokens"]["file"] = "a//b"; }, {"tokens.file"});
    bad([](json& j) { j["blocks"][0]["shards"][1]["row_begin"] = 2; }, {"gap or overlap"});
    bad([](json& j) { j["blocks"][0]["shards"][1]["rows"] = 3; }, {"run past"});
    bad([](json& j) { j["blocks"][0]["shards"][0]["bytes"] = 1; }, {"bytes 1"});
    bad([](json& j) { j["blocks"][0]["shards"][0]["bytes"] = -1; }, {"bytes"});
    bad([](json& j) { j["blocks"][0]["shards"][0]["sha256"] = "xyz"; }, {"sha256"});
    bad([](json& j) { j["blocks"].erase(1); }, {"1 blocks listed", "gives 2"});
    bad([](json& j) { j["blocks"][1]["first_layer"] = 3; }, {"blocks[1]", "[4, 6)"});
    bad([](json& j) { j["k"] = 0; }, {"k = 0"});
    bad([](json& j) { j["hidden"] = int64_t(1) << 40; }, {"hidden"});
    bad([](json& j) { j["seq_len"] = "4"; }, {"seq_len"});
    bad([](json& j) { j["dtype"] = "I64"; }, {"dtype 'I64'"});
    bad([](json& j) { j["version"] = 2; }, {"version"});
    bad([](json& j) { j["blocks"][0]["shards"].erase(2); }, {"cover 5 train and 0 eval"});
    bad([](json& j) { std::swap(j["blocks"][0]["shards"][0], j["blocks"][0]["shards"][2]); }, {"before eval"});
    expect_error([] { parse_state_manifest("[1,2", "m.json"); }, {"m.json"});
    expect_error([] { parse_state_manifest(std::string(kMaxManifestBytes + 1, ' '), "m.json"); }, {"larger than"});
}

TEST(PlanJson, RoundTripsEveryRow) {
    PlanInput in;
    in.model = plan_preset("llama-3.1-405b");
    Plan p = make_plan(in);
    Plan q = plan_from_json(plan_to_json(p), "plan.json");
    EXPECT_EQ(q.recommended_k, p.recommended_k);
    EXPECT_EQ(q.input.model.layers, 126);
    EXPECT_EQ(q.input.model.hidden, 16384);
    ASSERT_EQ(q.rows.size(), p.rows.size());
    ASSERT_NE(q.row(9), nullptr);
    EXPECT_NEAR(q.row(9)->disk_bytes, p.row(9)->disk_bytes, 1.0);
    EXPECT_EQ(q.row(9)->blocks, 14);
}

TEST(PlanJson, RefusesBadPlans) {
    PlanInput in;
    in.model = plan_preset("stories15m");
    json j = json::parse(plan_to_json(make_plan(in)));
    auto bad = [&](const std::function<void(json&)>& edit, std::initializer_list<std::string> needles) {
        json e = j;
        edit(e);
        expect_error([&] { plan_from_json(e.dump(), "p.json"); }, needles);
    };
    bad([](json& e) { e["rows"][2]["blocks"] = 5; }, {"rows[2]", "ceil(6 / 3)"});
    bad([](json& e) { e["rows"][0]["disk_bytes"] = -1; }, {"disk_bytes"});
    bad([](json& e) { e["input"]["utilization"] = 2; }, {"utilization"});
    bad([](json& e) { e["model_shape"]["layers"] = 0; }, {"layers"});
    bad([](json& e) { e["rows"][1] = e["rows"][0]; }, {"listed twice"});
    bad([](json& e) { e["recommended_k"] = 99; }, {"recommended_k"});
    bad([](json& e) { e.erase("model_shape"); }, {"model_shape"});
    expect_error([] { plan_from_json("{}", "p.json"); }, {"p.json"});
}

TEST(Slurm, ScriptsChainDumpBlocksAndStitch) {
    PlanInput in;
    in.model = plan_preset("llama-3.1-405b");
    Plan p = make_plan(in);
    SlurmOptions o;
    o.lincat = "/opt/lincat/bin/lincat", o.model_dir = "/models/405b", o.workspace = "/shared/ws";
    o.k = 9, o.partition = "gpu";
    SlurmScripts s = slurm_scripts(p, o);
    EXPECT_EQ(s.blocks, 14);
    std::map<std::string, std::string> f(s.files.begin(), s.files.end());
    // One dump job per block, chained; each block trains after its own dump job; stitch after all.
    EXPECT_EQ(f.count("blocks.sbatch"), 0u);
    EXPECT_NE(f["block.sbatch"].find("--block \"$BLOCK\""), std::string::npos);
    EXPECT_NE(f["block.sbatch"].find("--states '/shared/ws/states/k9'"), std::string::npos);
    EXPECT_NE(f["block.sbatch"].find("#SBATCH --gpus-per-task=1"), std::string::npos);
    EXPECT_NE(f["block.sbatch"].find("#SBATCH --partition=gpu"), std::string::npos);
    EXPECT_NE(f["dump.sbatch"].find("dump-states --model '/models/405b' --workspace '/shared/ws' --k 9"),
              std::string::npos);
    EXPECT_NE(f["dump.sbatch"].find("--block \"$BLOCK\""), std::string::npos);
    // A dump job holds one block of 9 layers (~57 GB in bf16), not the 810 GB model.
    const PlanRow& k9 = *p.row(9);
    EXPECT_LT(k9.dump_gpu_bytes, 80e9);
    EXPECT_GT(k9.dump_gpu_bytes, k9.weights_bytes);
    EXPECT_NE(f["submit.sh"].find("for b in $(seq 0 13)"), std::string::npos);
    EXPECT_NE(f["submit.sh"].find("dep=\"--dependency=afterok:$prev\""), std::string::npos);
    EXPECT_NE(f["submit.sh"].find("--dependency=afterok:$prev block.sbatch"), std::string::npos);
    EXPECT_NE(f["submit.sh"].find("--dependency=afterok$trained stitch.sbatch"), std::string::npos);
    EXPECT_TRUE(s.warnings.empty());  // k = 9 fits 8 x 80 GB
    o.k = 14;                         // 98 GB per block: does not
    EXPECT_EQ(slurm_scripts(p, o).warnings.size(), 1u);
    o.k = 9;
    EXPECT_EQ(slurm_time(0.01), "0-00:10:00");  // at least 10 minutes
    EXPECT_EQ(slurm_time(30.5), "1-06:30:00");
    o.k = 0;
    Plan none = p;
    none.recommended_k = 0;
    expect_error([&] { slurm_scripts(none, o); }, {"recommends no k"});
    o.k = 127;
    expect_error([&] { slurm_scripts(p, o); }, {"k = 127"});
}
