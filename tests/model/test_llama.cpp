#include "model/llama.h"

#include <cstdio>
#include <fstream>

#include "model/generate.h"
#include "model/tokenizer.h"
#include "model/weights.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"
#include "util/threads.h"

using namespace lincat;
using lincat::test::expect_error;
using lincat::test::TempDir;

namespace {

struct StoriesModel : ::testing::Test {
    static void SetUpTestSuite() {
        init_torch_threads();
        dir = lincat::test::default_model_dir();
        model = std::make_unique<LlamaModel>(load_llama(dir));
        tok = std::make_unique<Tokenizer>(Tokenizer::load_dir(dir));
    }
    static void TearDownTestSuite() { model.reset(), tok.reset(); }
    static inline std::string dir;
    static inline std::unique_ptr<LlamaModel> model;
    static inline std::unique_ptr<Tokenizer> tok;
};

const char* kReference =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. "
    "One day, she saw a big, red ball in the sky.";

}  // namespace

TEST_F(StoriesModel, GreedyFromBosReproducesReferenceStory) {
    GenerateOptions o;
    o.max_new_tokens = 48;
    auto r = generate(*model, {tok->bos_id()}, o);
    std::string text = tok->decode(r.tokens);
    EXPECT_EQ(text.substr(0, std::strlen(kReference)), kReference) << "got: " << text;
}

TEST_F(StoriesModel, KVCacheDecodeMatchesPrefill) {
    torch::NoGradGuard ng;
    auto ids = tok->encode(kReference, true);
    auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1});
    const int64_t T = tokens.size(1);
    auto full = (*model)->forward(tokens);  // (1, T, V)
    ModelState state = (*model)->new_state();
    const int64_t split = T / 3;
    std::vector<torch::Tensor> parts = {(*model)->forward(tokens.slice(1, 0, split), &state)};
    for (int64_t t = split; t < T; ++t) parts.push_back((*model)->forward(tokens.slice(1, t, t + 1), &state));
    auto stepped = torch::cat(parts, 1);
    // fp32 with a different summation order (one vs many matmul calls); logits are O(10).
    double diff = (full - stepped).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4) << "max |prefill - cached decode| = " << diff;
    EXPECT_EQ(state.position, T);
    EXPECT_EQ(state.bytes(), 6 * 2 * T * 288 * 4);  // 6 layers x (k, v) x T x 288 dims x fp32
}

TEST_F(StoriesModel, MatchesIndependentLlama2cReference) {
    // tests/reference/llama2c_reference.py runs llama2.c's own forward (pairwise RoPE, no
    // permutation) on the raw model.bin with Debian's python3-torch.
    std::string model_bin = cache_dir() + "/downloads/stories15M/model.bin";
    if (!std::filesystem::exists("/usr/bin/python3") ||
        std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "skipped: /usr/bin/python3 with torch (Debian python3-torch) is not installed";
    }
    ASSERT_TRUE(std::filesystem::exists(model_bin)) << model_bin << " missing; run packaging/setup.sh";
    auto ids = tok->encode("Tom and Sue went to the park. They saw a dog", true);
    std::string cmd =
        "/usr/bin/python3 " + std::string(LINCAT_TESTS_DIR) + "/reference/llama2c_reference.py " + model_bin;
    for (auto id : ids) cmd += " " + std::to_string(id);
    auto result = lincat::test::run_command(cmd);
    ASSERT_EQ(result.code, 0) << "reference script failed: " << cmd;
    auto ref = parse_json(result.out, "reference")["logits"].get<std::vector<std::vector<float>>>();
    ASSERT_EQ(ref.size(), ids.size());
    torch::NoGradGuard ng;
    auto logits = (*model)->forward(torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1}))[0];
    double worst = 0;
    for (size_t t = 0; t < ref.size(); ++t) {
        auto r = torch::tensor(ref[t]);
        worst = std::max(worst, (logits[int64_t(t)] - r).abs().max().item<double>());
        EXPECT_EQ(logits[int64_t(t)].argmax().item<int64_t>(), r.argmax().item<int64_t>()) << "position " << t;
    }
    // Both fp32; different op orders. 1e-3 on logits of magnitude ~10-20.
    EXPECT_LT(worst, 1e-3) << "max |ours - reference| = " << worst;
    std::printf("max |logit - llama2.c reference| = %.3g over %zu positions\n", worst, ref.size());
}

TEST_F(StoriesModel, Bf16AgreesWithFp32) {
    torch::NoGradGuard ng;
    LlamaModel bf = load_llama(dir, torch::kBFloat16);
    auto ids = tok->encode(kReference, true);
    auto tokens = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1});
    auto a = (*model)->forward(tokens).argmax(-1);
    auto b = bf->forward(tokens).argmax(-1);
    double agree = (a == b).to(torch::kFloat32).mean().item<double>();
    EXPECT_GT(agree, 0.9) << "bf16 top-1 agreement with fp32: " << agree;
}

// ---- loading errors, on a tiny random model written to disk ----

static ModelConfig tiny_config() {
    return parse_model_config(R"({"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64})",
                              "tiny");
}

static void save_model(const LlamaModel& m, const std::string& dir, bool skip_first = false) {
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (auto& p : m->named_parameters())
        if (!(skip_first && ts.empty() && p.key() == "model.embed_tokens.weight"))
            ts.push_back({p.key(), p.value()});
        else
            skip_first = false;
    save_tensors(dir + "/model.safetensors", ts);
}

TEST(LlamaLoad, TinyModelRoundTripsAndGqaRuns) {
    TempDir d;
    ModelConfig c = tiny_config();
    LlamaModel m(c);
    write_file_atomic(d.file("config.json"), model_config_to_json(c));
    save_model(m, d.path.string());
    LlamaModel loaded = load_llama(d.path.string());
    torch::NoGradGuard ng;
    auto tokens = torch::randint(0, 64, {2, 9});
    EXPECT_TRUE(torch::allclose(m->forward(tokens), loaded->forward(tokens), 1e-5, 1e-5));
}

TEST(LlamaLoad, ShapeMismatchNamesTensorAndConfig) {
    TempDir d;
    ModelConfig c = tiny_config();
    LlamaModel m(c);
    save_model(m, d.path.string());
    c.intermediate_size = 40;
    write_file_atomic(d.file("config.json"), model_config_to_json(c));
    expect_error([&] { load_llama(d.path.string()); },
                 {"model.safetensors", "mlp.gate_proj.weight", "[48,32]", "[40,32]"});
}

TEST(LlamaLoad, MissingTensorNamed) {
    TempDir d;
    ModelConfig c = tiny_config();
    LlamaModel m(c);
    save_model(m, d.path.string(), /*skip_first=*/true);
    write_file_atomic(d.file("config.json"), model_config_to_json(c));
    expect_error([&] { load_llama(d.path.string()); }, {"model.embed_tokens.weight", "missing"});
}

TEST(LlamaLoad, MissingFilesNamed) {
    TempDir d;
    expect_error([&] { load_llama(d.path.string()); }, {"config.json", "cannot open"});
    write_file_atomic(d.file("config.json"), model_config_to_json(tiny_config()));
    expect_error([&] { load_llama(d.path.string()); }, {"no model weights"});
}

TEST(LlamaLoad, ShardedCheckpointAndMissingShard) {
    TempDir d;
    ModelConfig c = tiny_config();
    LlamaModel m(c);
    write_file_atomic(d.file("config.json"), model_config_to_json(c));
    std::vector<std::pair<std::string, torch::Tensor>> a, b;
    json map = json::object();
    int i = 0;
    for (auto& p : m->named_parameters()) {
        bool first = (i++ % 2) == 0;
        (first ? a : b).push_back({p.key(), p.value().to(torch::kBFloat16)});
        map[p.key()] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    save_tensors(d.file("model-00001-of-00002.safetensors"), a);
    save_tensors(d.file("model-00002-of-00002.safetensors"), b);
    write_file_atomic(d.file("model.safetensors.index.json"), json({{"weight_map", map}}).dump());
    LlamaModel loaded = load_llama(d.path.string());
    auto w = m->named_parameters()["model.layers.1.mlp.up_proj.weight"];
    auto lw = loaded->named_parameters()["model.layers.1.mlp.up_proj.weight"];
    EXPECT_TRUE(torch::equal(w.to(torch::kBFloat16).to(torch::kFloat32), lw));  // bf16 -> fp32 exact
    std::filesystem::remove(d.file("model-00002-of-00002.safetensors"));
    expect_error([&] { load_llama(d.path.string()); },
                 {"model.safetensors.index.json", "missing shard", "model-00002-of-00002"});
}

TEST(LlamaLoad, ShardPathCannotEscapeFolder) {
    TempDir d;
    write_file_atomic(d.file("config.json"), model_config_to_json(tiny_config()));
    write_file_atomic(d.file("model.safetensors.index.json"), R"({"weight_map": {"a": "../../etc/passwd"}})");
    expect_error([&] { load_llama(d.path.string()); }, {"model.safetensors.index.json", "not a plain file name"});
}

TEST(LlamaLoad, TokenOutOfRangeIsAnError) {
    LlamaModel m(tiny_config());
    expect_error([&] { m->forward(torch::tensor({{1, 64}})); }, {"token id out of range"});
}
