// Block-wise stage 1 on stories15M, small: the state dump (resumable, checked against the disk,
// repaired when damaged), block training from saved states (one block reproduces joint training),
// stitching, and the errors for bad k, corrupt or missing shards and a full disk.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "blocks/block_distill.h"
#include "blocks/block_states.h"
#include "blocks/state_dump.h"
#include "blocks/stitch.h"
#include "model/fingerprint.h"
#include "model/weights.h"
#include "plan/planner.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "util/file.h"
#include "util/json.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::expect_error;
using lincat::test::FileSizeLimit;
using lincat::test::TempDir;
namespace fs = std::filesystem;

namespace {

DataSpec small_data() {
    DataSpec d;
    d.seq_len = 64;
    d.teacher_sequences = 24;  // 22 train + 2 eval rows
    return d;
}

StateDumpConfig dump_config(int64_t k, const std::string& out) {
    StateDumpConfig c;
    c.k = k;
    c.data = small_data();
    c.shard_rows = 8;
    c.out_dir = out;
    return c;
}

DistillConfig train_config(int64_t steps) {
    DistillConfig c;
    c.data = small_data();
    c.schedule.batch_size = 2;
    c.schedule.steps = steps;
    c.schedule.eval_every = 4;
    c.schedule.checkpoint_every = 4;
    c.linearize.window.size = 16;
    return c;
}

double max_diff(const std::string& file_a, const std::string& file_b) {
    WeightStore a = WeightStore::open_file(file_a), b = WeightStore::open_file(file_b);
    double worst = 0;
    for (auto& name : a.names()) {
        if (!b.has(name)) return INFINITY;
        worst = std::max(worst, (a.get(name) - b.get(name)).abs().max().item<double>());
    }
    return a.names().size() == b.names().size() ? worst : INFINITY;
}

}  // namespace

TEST(StateDump, WritesTheStateEnteringEachBlock) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    StateDumpOutcome o = dump_states(ws, model_dir, dump_config(4, d.file("states")), {});
    EXPECT_EQ(o.status, RunStatus::Completed);
    const StateManifest& m = o.manifest;
    ASSERT_EQ(m.blocks.size(), 2u);  // layers 0-3 and 4-5
    EXPECT_EQ(m.train_rows + m.eval_rows, 24);
    // Disk use is exactly the planner's figure: 4 bytes x 24 x 64 tokens x 288 hidden x 2 blocks.
    EXPECT_EQ(o.bytes, uint64_t(4 * 24 * 64 * 288 * 2));
    EXPECT_EQ(o.needed_bytes, o.bytes);
    EXPECT_EQ(ws.run(o.run).status, RunStatus::Completed);
    EXPECT_FALSE(fs::exists(d.file("states/progress.jsonl")));  // the journal goes once the manifest is written

    // Block 1's saved input is what the teacher's first four layers make of the tokens.
    BlockStates s = BlockStates::open(d.file("states"), 1);
    LlamaModel teacher = load_llama(model_dir);
    torch::NoGradGuard ng;
    auto rows = torch::tensor({0, 9, 20});
    auto expected = teacher->run_layers(teacher->embed(s.tokens("train").index_select(0, rows)), 0, 4);
    EXPECT_LT((s.rows("train", rows) - expected).abs().max().item<double>(), 1e-5);  // batch-size rounding only
    // A second run finds it whole and writes nothing.
    StateDumpOutcome again = dump_states(ws, model_dir, dump_config(4, d.file("states")), {});
    EXPECT_TRUE(again.already_complete);
    EXPECT_EQ(again.status, RunStatus::Completed);
    EXPECT_EQ(again.shards_written, 0);
    // Other settings may not mix into the same folder.
    expect_error([&] { dump_states(ws, model_dir, dump_config(3, d.file("states")), {}); }, {"another k"});
}

TEST(StateDump, RefusesBadKAndShortDiskBeforeWriting) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    expect_error([&] { dump_states(ws, model_dir, dump_config(0, d.file("s0")), {}); }, {"k = 0", "6 layers"});
    expect_error([&] { dump_states(ws, model_dir, dump_config(7, d.file("s7")), {}); }, {"k = 7"});
    setenv("LINCAT_FREE_DISK_BYTES", "100000", 1);  // a 100 kB disk
    expect_error([&] { dump_states(ws, model_dir, dump_config(2, d.file("s2")), {}); },
                 {"needs 5.3 MB", "3 blocks", "only 100.0 kB free", "--dtype bf16"});
    unsetenv("LINCAT_FREE_DISK_BYTES");
    EXPECT_FALSE(fs::exists(d.file("s2")));
    EXPECT_TRUE(ws.runs().empty());  // nothing recorded for refused dumps
}

TEST(StateDump, ResumesAfterCancelAndRepairsDamage) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    const std::string dir = d.file("states");
    std::atomic<bool> cancel{false};
    StateDumpOutcome first = dump_states(
        ws, model_dir, dump_config(3, dir), [&](const StateDumpProgress& p) { cancel = p.rows_done >= 8; }, &cancel);
    EXPECT_EQ(first.status, RunStatus::Cancelled);
    EXPECT_EQ(first.shards_written, 1);  // the stream goes block by block: block 0's first 8 rows
    EXPECT_FALSE(fs::exists(dir + "/manifest.json"));
    expect_error([&] { BlockStates::open(dir, 0); }, {"manifest.json", "not dumped yet"});

    StateDumpOutcome second = dump_states(ws, model_dir, dump_config(3, dir), {});
    EXPECT_EQ(second.status, RunStatus::Completed);
    EXPECT_EQ(second.run, first.run);  // the same run, continued
    EXPECT_EQ(second.shards_kept, 1);
    EXPECT_EQ(second.shards_written, int64_t(second.manifest.shards.size()) - 1);

    // A flipped byte in a shard: opening the block names the file and the checksum.
    const StateShard victim = second.manifest.block_shards(1, "train")[1];
    {
        std::string bytes = read_file(dir + "/" + victim.file);
        bytes[bytes.size() - 3] ^= 0x40;
        write_file_atomic(dir + "/" + victim.file, bytes);
    }
    expect_error([&] { BlockStates::open(dir, 1); }, {victim.file, "sha256", "corrupt"});
    BlockStates::open(dir, 0);  // the other block is untouched
    // A missing shard file is named too; rerunning the dump redoes exactly the damaged ones.
    const StateShard gone = second.manifest.block_shards(0, "eval")[0];
    fs::remove(dir + "/" + gone.file);
    expect_error([&] { BlockStates::open(dir, 0); }, {gone.file, "missing"});
    StateDumpOutcome repaired = dump_states(ws, model_dir, dump_config(3, dir), {});
    EXPECT_EQ(repaired.status, RunStatus::Completed);
    EXPECT_EQ(repaired.shards_written, 2);
    BlockStates::open(dir, 0), BlockStates::open(dir, 1);
    expect_error([&] { BlockStates::open(dir, 2); }, {"block 2 does not exist", "2 blocks"});
}

TEST(StateDump, DiskFullLeavesNoPartialShardAndResumes) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    const std::string dir = d.file("states");
    StateDumpConfig c = dump_config(3, dir);
    c.shard_rows = 16;  // 16 x 64 x 288 x 4 bytes = 1.2 MB per shard
    {
        LlamaModel teacher = load_llama(model_dir);  // teacher samples cached before the limit
        load_token_data(c.data, teacher, Tokenizer::load_dir(model_dir), ws.dir() + "/data",
                        model_fingerprint(model_dir));
    }
    {
        FileSizeLimit limit(600 << 10);  // no file may pass 600 kB: the first shard cannot be written
        expect_error([&] { dump_states(ws, model_dir, c, {}); }, {"dump-states", "block-000/train-000000", "rerun"});
    }
    for (auto& e : fs::recursive_directory_iterator(dir))
        EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "leftover " << e.path();
    EXPECT_FALSE(fs::exists(dir + "/block-000/train-000000.safetensors"));
    auto runs = ws.runs();
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].status, RunStatus::Failed);
    StateDumpOutcome o = dump_states(ws, model_dir, c, {});
    EXPECT_EQ(o.status, RunStatus::Completed);
    EXPECT_EQ(o.run, runs[0].id);
}

// With one block (k = L), block training is joint stage 1: same init, same rows in the same
// order, the same arithmetic. Tolerance 1e-6 (we see exact equality; the bound leaves room for
// a BLAS that blocks a batch differently).
TEST(BlockDistill, OneBlockReproducesJointTraining) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    DistillConfig c = train_config(8);
    DistillOutcome joint = distill(ws, model_dir, c, std::nullopt, {});
    dump_states(ws, model_dir, dump_config(6, d.file("states")), {});
    DistillOutcome block = distill_block(ws, model_dir, d.file("states"), 0, c, std::nullopt, {});
    EXPECT_EQ(block.status, RunStatus::Completed);
    EXPECT_EQ(ws.run(block.run).kind, RunKind::DistillBlock);
    EXPECT_EQ(block.layers, joint.layers);
    for (const char* ck : {"/step-4", "/step-8", "/best"}) {
        std::string a = ws.dir() + "/checkpoints/run-" + std::to_string(joint.run) + ck + "/linear.safetensors";
        std::string b = ws.dir() + "/checkpoints/run-" + std::to_string(block.run) + ck + "/linear.safetensors";
        EXPECT_LE(max_diff(a, b), 1e-6) << ck;
    }
    auto ja = ws.steps(joint.run, "train"), jb = ws.steps(block.run, "train");
    ASSERT_EQ(ja.size(), jb.size());
    for (size_t i = 0; i < ja.size(); ++i) EXPECT_NEAR(ja[i].loss, jb[i].loss, 1e-6 * std::fabs(ja[i].loss));
}

TEST(BlockDistill, TwoBlocksTrainResumeAndStitch) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    const std::string states = d.file("states");
    dump_states(ws, model_dir, dump_config(3, states), {});
    DistillConfig c = train_config(8);
    expect_error([&] { stitch_blocks(ws, model_dir, states, {}); }, {"block 0", "no completed run"});

    // Block 0 is cancelled half way and resumed; block 1 runs straight.
    std::atomic<bool> cancel{false};
    DistillOutcome b0 = distill_block(
        ws, model_dir, states, 0, c, std::nullopt, [&](const TrainProgress& p) { cancel = p.step >= 4; }, &cancel);
    EXPECT_EQ(b0.status, RunStatus::Cancelled);
    b0 = distill_block(ws, model_dir, states, 0, c, b0.run, {});
    EXPECT_EQ(b0.status, RunStatus::Completed);
    EXPECT_EQ(ws.steps(b0.run, "train").size(), 8u);  // each step recorded once
    DistillOutcome b1 = distill_block(ws, model_dir, states, 1, c, std::nullopt, {});
    EXPECT_EQ(b0.layers, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(b1.layers, (std::vector<int64_t>{3, 4, 5}));
    for (size_t i = 0; i < 3; ++i) EXPECT_LT(b1.layer_mse_final[i], b1.layer_mse_initial[i]) << "layer " << 3 + i;

    StitchOutcome s = stitch_blocks(ws, model_dir, states, {});
    EXPECT_EQ(s.block_runs, (std::vector<int64_t>{b0.run, b1.run}));
    RunRecord r = ws.run(s.run);
    EXPECT_EQ(r.kind, RunKind::Distill);  // stage 2 and eval take it like a joint run
    EXPECT_EQ(r.status, RunStatus::Completed);
    EXPECT_EQ(ws.best_checkpoint(s.run)->path, s.checkpoint);
    // The stitched checkpoint holds each block's tensors unchanged.
    WeightStore st = WeightStore::open_file(s.checkpoint + "/linear.safetensors");
    for (auto* o : {&b0, &b1}) {
        WeightStore w = WeightStore::open_file(o->checkpoint + "/linear.safetensors");
        for (auto& name : w.names()) EXPECT_TRUE(torch::equal(w.get(name), st.get(name))) << name;
    }
    EXPECT_EQ(s.comparison.layers.size(), 6u);
    EXPECT_GT(s.comparison.teacher_ppl, 1.0);
    // 8 tiny steps on 24 rows: close, not equal (1.49x the teacher on fp32 teacher samples, 1.58x
    // on bf16 ones); the tensor checks above catch a stitch that mixed blocks up.
    EXPECT_LT(s.comparison.student_ppl, s.comparison.teacher_ppl * 1.75);
    expect_error([&] { stitch_blocks(ws, model_dir, states, {b0.run, b0.run}); }, {"both train block 0"});
    expect_error([&] { stitch_blocks(ws, model_dir, states, {s.run}); }, {"not distill-block"});
}

// A block job's model holds its own layers only; what it does not hold fails by name.
TEST(ModelPart, BlockModelHoldsOnlyItsLayersAndComputesTheSame) {
    init_torch_threads();
    const std::string model_dir = lincat::test::default_model_dir();
    LlamaModel full = load_llama(model_dir);
    LlamaModel part = load_llama_part(model_dir, ModelPart::layers(2, 4));
    EXPECT_EQ(part->layer(0)->self_attn->q_proj->weight.numel(), 0);
    EXPECT_EQ(part->layer(5)->mlp->down_proj->weight.numel(), 0);
    EXPECT_EQ(part->model->embed_tokens->weight.numel(), 0);
    EXPECT_GT(part->layer(3)->mlp->down_proj->weight.numel(), 0);
    int64_t held = 0, whole = 0;
    for (auto& p : part->parameters()) held += p.numel();
    for (auto& p : full->parameters()) whole += p.numel();
    // 2 of 6 layers, no embeddings: 2.0M of stories15M's 15.2M parameters.
    EXPECT_EQ(held, 2 * plan_model_from_config(full->config(), "").layer_parameters());
    EXPECT_LT(held * 7, whole);
    torch::NoGradGuard ng;
    auto x = full->embed(torch::randint(0, 32000, {2, 40}, torch::kLong));
    EXPECT_TRUE(torch::equal(part->run_layers(x, 2, 4), full->run_layers(x, 2, 4)));
    expect_error([&] { part->run_layers(x, 0, 3); }, {"layers 0..2", "not loaded", "layers 2..3"});
    expect_error([&] { part->embed(torch::zeros({1, 4}, torch::kLong)); }, {"embedding table", "not loaded"});
    expect_error([&] { part->forward(torch::zeros({1, 4}, torch::kLong)); }, {"the whole model"});
    expect_error([&] { load_llama_part(model_dir, ModelPart::layers(4, 9)); }, {"[4, 9)", "[0, 6]"});
}

// Slurm's graph: one dump job per block, chained; a block trains from ready.json as soon as its
// input exists, and the stitch takes that run once the dump is whole. The chained dump writes the
// same bytes as a dump in one process.
TEST(StateDump, BlockJobsChainAndBlocksTrainAsTheirInputsAppear) {
    init_torch_threads();
    TempDir d;
    Workspace ws = Workspace::open(d.file("ws"));
    const std::string model_dir = lincat::test::default_model_dir();
    const std::string states = d.file("chained");
    auto job = [&](int64_t b) {
        StateDumpConfig c = dump_config(2, states);
        c.block = b;
        return dump_states(ws, model_dir, c, {});
    };
    expect_error([&] { job(1); }, {"no intact token file", "--block 0 first"});
    StateDumpOutcome j0 = job(0);
    EXPECT_EQ(j0.status, RunStatus::Running);  // two more blocks to dump
    EXPECT_EQ(j0.blocks_ready, 1);
    EXPECT_TRUE(fs::exists(states + "/ready.json"));
    EXPECT_FALSE(fs::exists(states + "/manifest.json"));
    expect_error([&] { job(2); }, {"block 1's", "not complete", "--block 1 first"});
    expect_error([&] { BlockStates::open(states, 1); }, {"ready.json", "block 1", "not complete"});

    DistillConfig c = train_config(4);
    DistillOutcome b0 = distill_block(ws, model_dir, states, 0, c, std::nullopt, {});  // while 1, 2 are pending
    EXPECT_EQ(b0.status, RunStatus::Completed);
    StateDumpOutcome j1 = job(1);
    EXPECT_EQ(j1.blocks_ready, 2);
    EXPECT_EQ(j1.shards_written, 4);  // 22 train rows in shards of 8, 8, 6; 2 eval rows in one
    StateDumpOutcome j2 = job(2);
    EXPECT_EQ(j2.status, RunStatus::Completed);
    EXPECT_TRUE(fs::exists(states + "/manifest.json"));
    EXPECT_FALSE(fs::exists(states + "/ready.json"));
    EXPECT_EQ(ws.run(j2.run).status, RunStatus::Completed);
    EXPECT_EQ(j0.run, j2.run);  // one dump run, three jobs
    json results = parse_json(*ws.run_results(j2.run), "results");
    ASSERT_EQ(results["jobs"].size(), 3u);
    for (auto& jj : results["jobs"]) {
        EXPECT_GT(jj["peak_rss_bytes"].get<int64_t>(), jj["baseline_rss_bytes"].get<int64_t>());
        EXPECT_EQ(jj["blocks"].size(), 1u);
    }
    EXPECT_GT(results["jobs"][1]["layer_tokens_per_second"].get<double>(), 0.0);  // block 1 ran layers 0-1

    // The same bytes as one process dumping every block.
    StateDumpOutcome one = dump_states(ws, model_dir, dump_config(2, d.file("one")), {});
    StateManifest chained = load_state_manifest(states);
    ASSERT_EQ(chained.shards.size(), one.manifest.shards.size());
    for (size_t i = 0; i < chained.shards.size(); ++i)
        EXPECT_EQ(chained.shards[i].sha256, one.manifest.shards[i].sha256) << chained.shards[i].file;

    DistillOutcome b1 = distill_block(ws, model_dir, states, 1, c, std::nullopt, {});
    DistillOutcome b2 = distill_block(ws, model_dir, states, 2, c, std::nullopt, {});
    StitchOutcome s = stitch_blocks(ws, model_dir, states, {});
    EXPECT_EQ(s.block_runs, (std::vector<int64_t>{b0.run, b1.run, b2.run}));  // b0 trained from ready.json
    json measured = parse_json(*ws.run_results(b1.run), "results")["measured"];
    EXPECT_EQ(measured["layers"].get<int64_t>(), 2);
    EXPECT_GT(measured["peak_rss_bytes"].get<int64_t>(), 0);
    EXPECT_GT(measured["achieved_flops"].get<double>(), 0.0);
}
