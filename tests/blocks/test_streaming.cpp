// Issue 16, measured: a synthetic deep model written here (48 layers of hidden 512, 8 heads,
// random weights; fp32 in 4 shards with an index, and bf16 in one file) goes through
// `lincat dump-states` and `lincat distill --block` as separate processes, and each process's
// peak resident memory (VmHWM, recorded by the job in the workspace) is compared with the whole
// model's weights and with the planner's prediction for the same shapes.
//
// Figures are the peak above the job's own baseline (its RSS after a warm-up of the kernels it
// uses: LibTorch, BLAS and the binary, about 170 MB here, which no model term predicts). The model computes in fp32 on
// the CPU whatever its file dtype, so "the full model" is its fp32 bytes in memory.
#include <cstdio>
#include <filesystem>

#include "model/config.h"
#include "model/weights.h"
#include "plan/planner.h"
#include "store/workspace.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kLayers = 48, kHidden = 512, kHeads = 8, kInter = 1024, kVocab = 32000, kSeq = 64, kK = 4;

// Writes config.json, the tokenizer (stories15M's: the vocabulary fits kVocab) and random weights.
void write_model(const std::string& dir, torch::Dtype dtype, int shards) {
    fs::create_directories(dir);
    json config = {{"architectures", {"LlamaForCausalLM"}},
                   {"model_type", "llama"},
                   {"hidden_size", kHidden},
                   {"intermediate_size", kInter},
                   {"num_hidden_layers", kLayers},
                   {"num_attention_heads", kHeads},
                   {"num_key_value_heads", kHeads},
                   {"head_dim", kHidden / kHeads},
                   {"vocab_size", kVocab},
                   {"max_position_embeddings", 256},
                   {"rms_norm_eps", 1e-5},
                   {"rope_theta", 10000.0},
                   {"tie_word_embeddings", true},
                   {"bos_token_id", 1},
                   {"eos_token_id", 2},
                   {"torch_dtype", dtype == torch::kBFloat16 ? "bfloat16" : "float32"}};
    write_file_atomic(dir + "/config.json", config.dump(1));
    fs::copy_file(lincat::test::default_model_dir() + "/tokenizer.json", dir + "/tokenizer.json");
    torch::manual_seed(16);
    // Scaled so 48 residual layers stay finite: each projection keeps its input's scale / 4.
    auto w = [&](int64_t out, int64_t in) { return (torch::randn({out, in}) / (4 * std::sqrt(double(in)))).to(dtype); };
    json weight_map = json::object();
    int64_t total = 0;
    const int64_t per_shard = (kLayers + shards - 1) / shards;
    for (int s = 0; s < shards; ++s) {
        std::vector<std::pair<std::string, torch::Tensor>> t;
        if (s == 0) {
            t.push_back({"model.embed_tokens.weight", (torch::randn({kVocab, kHidden}) * 0.5).to(dtype)});
            t.push_back({"model.norm.weight", torch::ones({kHidden}).to(dtype)});
        }
        for (int64_t l = s * per_shard; l < std::min(kLayers, (s + 1) * per_shard); ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            t.push_back({p + "input_layernorm.weight", torch::ones({kHidden}).to(dtype)});
            t.push_back({p + "post_attention_layernorm.weight", torch::ones({kHidden}).to(dtype)});
            for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"})
                t.push_back({p + "self_attn." + n + ".weight", w(kHidden, kHidden)});
            t.push_back({p + "mlp.gate_proj.weight", w(kInter, kHidden)});
            t.push_back({p + "mlp.up_proj.weight", w(kInter, kHidden)});
            t.push_back({p + "mlp.down_proj.weight", w(kHidden, kInter)});
        }
        char name[64];
        std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, shards);
        const std::string file = shards == 1 ? "model.safetensors" : name;
        for (auto& [n, v] : t) weight_map[n] = file, total += v.numel() * v.element_size();
        save_tensors(dir + "/" + file, t);
    }
    if (shards > 1)
        write_file_atomic(dir + "/model.safetensors.index.json",
                          json({{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}).dump(1));
}

std::string lincat_cmd(const std::string& args) {
    return std::string(LINCAT_BINARY_DIR) + "/lincat " + args + " 2>/dev/null";
}

json run_json(const std::string& args) {
    auto r = lincat::test::run_command(lincat_cmd(args));
    EXPECT_EQ(r.code, 0) << args << "\n" << r.out;
    size_t brace = r.out.rfind("\n{");
    return parse_json(brace == std::string::npos ? r.out : r.out.substr(brace + 1), args);
}

void measure(torch::Dtype dtype, int shards) {
    TempDir d;
    const std::string model = d.file("model"), ws = d.file("ws"), text = d.file("story.txt");
    write_model(model, dtype, shards);
    std::string story;
    for (int i = 0; i < 300; ++i)
        story += "Once upon a time there was a little girl named Lily. She loved to play in the park with her dog.\n\n";
    write_file_atomic(text, story);

    const ModelConfig mc = load_model_config(model + "/config.json");
    const PlanModel pm = plan_model_from_config(mc, "synthetic");
    const double full_bytes = 4.0 * double(pm.layers * pm.layer_parameters() + pm.vocab * pm.hidden + pm.hidden);
    const double block_bytes = 4.0 * double(kK * pm.layer_parameters());

    // The streaming dump: one block's layers at a time.
    json dump = run_json("dump-states --model " + model + " --workspace " + ws + " --k 4 --data " + text +
                         " --seq-len 64 --shard-rows 8 --micro-batch 4 --json");
    ASSERT_EQ(dump.value("status", ""), "completed");
    const double dump_peak = dump["peak_rss_bytes"].get<double>() - dump["baseline_rss_bytes"].get<double>();
    const double dump_tensors = [&] {
        Workspace w = Workspace::open(ws);
        json job = parse_json(*w.run_results(dump["run"].get<int64_t>()), "dump results")["jobs"][0];
        return job["peak_tensor_bytes"].get<double>();
    }();
    // Its buffers: the shard being written (fp32 rows and their copy for the file), the shard it
    // reads, a micro-batch's activations (planner's dump term less the weights), and the token rows.
    PlanInput in;
    in.model = pm;
    in.weight_bytes_per_value = 4, in.bytes_per_value = 4;
    in.seq_len = kSeq, in.micro_batch = 2, in.dump_micro_batch = 4, in.window = 16, in.feature_dim = 64;
    in.tokens = 1000 * kSeq;
    const PlanRow row = plan_row(in, kK);
    const double shard = 8.0 * kSeq * kHidden * 4;
    const double embed_bytes = 4.0 * double(kVocab * kHidden);
    const double dump_buffers = 3 * shard + (row.dump_gpu_bytes - std::max(block_bytes, embed_bytes));
    const double dump_bound = 2 * block_bytes + dump_buffers;

    // A block job of k = 4 layers (block 1: layers 4..7).
    json block = run_json("distill --model " + model + " --workspace " + ws + " --states " + ws +
                          "/states/k4 --block 1 --steps 4 --batch-size 2 --eval-every 2 --checkpoint-every 4"
                          " --window 16 --feature-dim 64 --gate none --json");  // the planner row's shape (in above)
    Workspace w = Workspace::open(ws);
    json measured;
    for (auto& r : w.runs())
        if (r.kind == RunKind::DistillBlock) measured = parse_json(*w.run_results(r.id), "results")["measured"];
    ASSERT_TRUE(measured.is_object());
    const double block_peak = measured["peak_rss_bytes"].get<double>() - measured["baseline_rss_bytes"].get<double>();
    const double predicted = row.gpu_bytes_per_block;

    std::printf("synthetic %s (%d shard%s): full model %.1f MB in fp32; k = 4 block %.1f MB of weights\n",
                dtype == torch::kBFloat16 ? "bf16" : "fp32", shards, shards > 1 ? "s" : "", full_bytes / 1e6,
                block_bytes / 1e6);
    std::printf(
        "  block job : peak %.1f MB above a %.1f MB baseline (tensors %.1f MB); planner %.1f MB (%+.1f%%); 1/3 of "
        "the model %.1f MB\n",
        block_peak / 1e6, measured["baseline_rss_bytes"].get<double>() / 1e6,
        measured["peak_tensor_bytes"].get<double>() / 1e6, predicted / 1e6, 100 * (block_peak / predicted - 1),
        full_bytes / 3e6);
    std::printf(
        "  dump      : peak %.1f MB above a %.1f MB baseline (tensors %.1f MB); bound 2 blocks + buffers %.1f MB; "
        "planner's dump job %.1f MB\n",
        dump_peak / 1e6, dump["baseline_rss_bytes"].get<double>() / 1e6, dump_tensors / 1e6, dump_bound / 1e6,
        row.dump_gpu_bytes / 1e6);
    // Measured here (fp32 / bf16 files): block job 0.15 and dump 0.13 of the whole model's bytes
    // (issue 16's goal: 1/3); the bound leaves 0.4 for another machine's allocator. Loading the
    // whole model costs 1.02 (lincat bench load), so either bound fails if a job loads more than its part.
    EXPECT_LT(block_peak, 0.4 * full_bytes);
    EXPECT_LT(dump_peak, 0.4 * full_bytes);
    // The planner's memory model: its terms are the tensors the job holds (measured -3%), and the
    // peak RSS above the job's start is within 25% of it (measured +19%: allocator slack and
    // LibTorch's per-thread state over the tensors).
    EXPECT_NEAR(measured["peak_tensor_bytes"].get<double>() / predicted, 1.0, 0.10);
    EXPECT_NEAR(block_peak / predicted, 1.0, 0.25);
    // The streaming dump holds one block (or the embeddings) and its buffers (measured 75 MB
    // against a bound of 93 MB, the planner's dump job 71 MB).
    EXPECT_LT(dump_peak, dump_bound);
    EXPECT_GT(block_peak, row.weights_bytes);  // it does hold its k layers
}

}  // namespace

TEST(Streaming, Fp32ShardedModelBlockJobAndDumpStayWithinTheirBlock) {
    measure(torch::kFloat32, 4);
}

TEST(Streaming, Bf16ModelBlockJobAndDumpStayWithinTheirBlock) {
    measure(torch::kBFloat16, 1);
}
