// Every supported family (Llama 3.1, Llama 3.2 tied, Qwen 2.5, Qwen 3, Mistral) against an
// independent fp32 forward (tests/reference/tiny_models.py, written from the Hugging Face
// modeling code, not from ours) on tiny random models in the real layout: bf16, two shards
// + index, the real tokenizer.json. The ctest fixture tiny_models writes them.
#include <algorithm>
#include <cmath>
#include <fstream>

#include "eval/perplexity.h"
#include "model/generate.h"
#include "model/llama.h"
#include "model/tokenizer.h"
#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

using namespace lincat;

static const char* kText =
    "Once upon a time, in a small village by the sea, there lived an old fisherman named Tom. "
    "Every morning he rowed out past the rocks, and every evening he came home with stories.";

static std::string tiny_dir(const std::string& family) {
    return std::string(LINCAT_BINARY_DIR) + "/tiny-models/" + family;
}

static std::string ids_arg(const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    return s;
}

static json reference(const std::string& args) {
    std::string cmd = "/usr/bin/python3 " + std::string(LINCAT_TESTS_DIR) + "/reference/tiny_models.py forward " + args;
    auto r = lincat::test::run_command(cmd);
    if (r.code != 0) {
        ADD_FAILURE() << "reference failed: " << cmd;
        return json();
    }
    return parse_json(r.out, "tiny_models.py");
}

class Family : public ::testing::TestWithParam<std::string> {};

TEST_P(Family, LogitsAndGreedyMatchTheIndependentForward) {
    const std::string dir = tiny_dir(GetParam());
    ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << dir << " missing (ctest fixture tiny_models)";
    Tokenizer tok = Tokenizer::load_dir(dir);
    LlamaModel model = load_llama(dir, torch::kFloat32);
    auto ids = tok.encode(kText, true);
    ids.resize(20);
    lincat::test::TempDir tmp;
    json ref = reference("--fp64 --model " + dir + " --ids " + ids_arg(ids) + " --greedy 16 --logits-out " +
                         tmp.file("logits.bin"));
    ASSERT_TRUE(ref.is_object());
    const int64_t T = ref["n"], V = ref["vocab"];
    ASSERT_EQ(T, 20);
    ASSERT_EQ(V, model->config().vocab_size);

    torch::NoGradGuard ng;
    auto x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1});
    auto ours = model->forward(x)[0];  // (T, V) fp32
    std::string raw = read_file(tmp.file("logits.bin"));
    ASSERT_EQ(raw.size(), size_t(T * V * 4));
    auto theirs = torch::from_blob(raw.data(), {T, V}, torch::kFloat32);
    double worst = (ours - theirs).abs().max().item<double>();
    double scale = theirs.abs().max().item<double>();
    // Ours in fp32 against the reference in fp64, the same bf16 weights: what is left is fp32
    // rounding, which grows with the logits' size (these random models reach |logit| 50,
    // where one fp32 ulp is 4e-6). Tolerance: 1e-4, or 2.5e-6 of the largest logit beyond 40.
    const double tolerance = std::max(1e-4, 2.5e-6 * scale);
    EXPECT_LT(worst, tolerance) << GetParam() << ": max |ours - reference| over " << T << " x " << V << " logits";
    std::printf("%s: max |logit - reference| = %.3g (max |logit| %.1f)\n", GetParam().c_str(), worst, scale);

    GenerateOptions o;
    o.max_new_tokens = 16;
    o.stop_at_eos = false;             // the reference never stops
    auto r = generate(model, ids, o);  // prefill + KV-cache decode against full recomputes
    EXPECT_EQ(r.tokens, ref["greedy"].get<std::vector<int32_t>>()) << GetParam() << ": greedy 16 tokens";
}

TEST_P(Family, LincatPplEqualsTheReference) {
    const std::string dir = tiny_dir(GetParam());
    ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << dir << " missing (ctest fixture tiny_models)";
    lincat::test::TempDir tmp;
    std::string text = std::string(kText) + " " + kText;
    write_file_atomic(tmp.file("text.txt"), text);
    auto r = lincat::test::run_command(std::string(LINCAT_BINARY_DIR) + "/lincat ppl --model " + dir + " --data " +
                                       tmp.file("text.txt") + " --seq-len 16 --stride 8 --dtype fp32 2>&1");
    ASSERT_EQ(r.code, 0) << r.out;
    double ours = 0;
    ASSERT_EQ(std::sscanf(r.out.c_str(), "perplexity %lf", &ours), 1) << r.out;
    auto ids = Tokenizer::load_dir(dir).encode(text, true);  // what lincat ppl scores
    json ref = reference("--model " + dir + " --ids " + ids_arg(ids) + " --window 16 --stride 8");
    ASSERT_TRUE(ref.is_object());
    double theirs = ref["ppl_window"];
    // Random models have per-token NLLs near 20-40: compare log-perplexities (mean NLL).
    EXPECT_NEAR(std::log(ours), std::log(theirs), 1e-4) << GetParam() << ": lincat ppl " << ours << " vs " << theirs;
}

INSTANTIATE_TEST_SUITE_P(Tiny, Family, ::testing::Values("llama3", "llama32", "qwen2", "qwen3", "mistral"));

TEST(FamilyConfigs, TinyModelsParseAsTheirFamilies) {
    struct Want {
        const char* family;
        const char* name;
        bool tied, qkv_bias, qk_norm;
        int64_t window, head_dim;
    };
    for (const Want& w : {Want{"llama3", "Llama 3.1", false, false, false, 0, 64},
                          Want{"llama32", "Llama 3.2", true, false, false, 0, 64},
                          Want{"qwen2", "Qwen 2.5", true, true, false, 0, 64},  // use_sliding_window false
                          Want{"qwen3", "Qwen 3", true, false, true, 0, 64},    // head_dim != hidden / heads
                          Want{"mistral", "Mistral", false, false, false, 12, 64}}) {
        std::string dir = tiny_dir(w.family);
        ASSERT_TRUE(std::filesystem::exists(dir + "/config.json")) << dir << " missing (ctest fixture tiny_models)";
        ModelConfig c = load_model_config(dir + "/config.json");
        EXPECT_EQ(model_family_name(c), w.name) << w.family;
        EXPECT_EQ(c.tie_word_embeddings, w.tied) << w.family;
        EXPECT_EQ(c.has_qkv_bias(), w.qkv_bias) << w.family;
        EXPECT_EQ(c.qk_norm, w.qk_norm) << w.family;
        EXPECT_EQ(c.sliding_window, w.window) << w.family;
        EXPECT_EQ(c.head_dim, w.head_dim) << w.family;
        // The parameter count the summaries show is the sum over the loaded tensors.
        LlamaModel m = load_llama(dir, torch::kFloat32);
        int64_t n = 0;
        for (auto& p : m->parameters()) n += p.numel();
        EXPECT_EQ(c.parameter_count(), n) << w.family;
    }
}
