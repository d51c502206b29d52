#include "model/config.h"

#include "test_util.h"
#include "util/file.h"

using namespace lincat;
using lincat::test::expect_error;

static const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
  "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
  "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
  "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "torch_dtype": "bfloat16"})";

TEST(Config, Llama31With3Scaling) {
    ModelConfig c = parse_model_config(kLlama31_8B, "llama31/config.json");
    EXPECT_EQ(c.num_key_value_heads, 8);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.rope_scaling.type, "llama3");
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
    EXPECT_EQ(c.eos_token_id, 128001);
    // Llama 3.1 8B has 8.03B parameters.
    EXPECT_NEAR(double(c.parameter_count()) / 1e9, 8.03, 0.01);
}

TEST(Config, MistralDefaultsAndSlidingWindow) {
    ModelConfig c = parse_model_config(R"({"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "sliding_window": 4096, "rope_theta": 10000.0})",
                                       "m");
    EXPECT_EQ(c.model_type, "mistral");
    EXPECT_EQ(c.sliding_window, 4096);
    EXPECT_EQ(c.rope_scaling.type, "none");
    EXPECT_NEAR(double(c.parameter_count()) / 1e9, 7.24, 0.01);
}

TEST(Config, RoundTripThroughJson) {
    ModelConfig c = parse_model_config(kLlama31_8B, "a");
    ModelConfig d = parse_model_config(model_config_to_json(c), "b");
    EXPECT_EQ(d.hidden_size, c.hidden_size);
    EXPECT_EQ(d.rope_scaling.original_max_position_embeddings, 8192);
    EXPECT_EQ(d.num_key_value_heads, 8);
    EXPECT_EQ(d.tie_word_embeddings, false);
}

TEST(Config, ErrorsNameFileAndField) {
    expect_error([] { parse_model_config("{\"model_type\": \"llama\",", "cfg.json"); }, {"cfg.json", "malformed JSON"});
    expect_error([] { parse_model_config("[1,2]", "cfg.json"); }, {"cfg.json", "object"});
    expect_error([] { parse_model_config(R"({"model_type": "gpt2", "vocab_size": 5})", "cfg.json"); },
                 {"cfg.json", "model_type", "gpt2", "not supported"});
    expect_error(
        [] { parse_model_config(R"({"model_type": "llama", "vocab_size": 32000, "hidden_size": 288})", "cfg.json"); },
        {"cfg.json", "intermediate_size"});
    expect_error(
        [] { parse_model_config(R"({"model_type": "llama", "vocab_size": "many", "hidden_size": 288})", "c"); },
        {"vocab_size", "integer"});
    expect_error(
        [] {
            parse_model_config(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 288,
        "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 5})",
                               "c");
        },
        {"hidden_size", "num_attention_heads"});
    expect_error(
        [] {
            parse_model_config(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 288,
        "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 6, "num_key_value_heads": 4})",
                               "c");
        },
        {"num_key_value_heads"});
    expect_error(
        [] {
            parse_model_config(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 288,
        "intermediate_size": 768, "num_hidden_layers": -6, "num_attention_heads": 6})",
                               "c");
        },
        {"num_hidden_layers", "positive"});
    expect_error(
        [] {
            parse_model_config(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 288,
        "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 6,
        "rope_scaling": {"type": "yarn", "factor": 4}})",
                               "c");
        },
        {"rope_scaling", "yarn"});
    expect_error(
        [] {
            parse_model_config(R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 288,
        "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 6, "hidden_act": "gelu"})",
                               "c");
        },
        {"hidden_act"});
}

TEST(Config, MissingFileNamesPath) {
    expect_error([] { load_model_config("/nonexistent/config.json"); }, {"/nonexistent/config.json", "cannot open"});
}

TEST(Config, QwenFamilies) {
    const std::string base =
        R"("vocab_size": 151936, "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "rope_theta": 1000000.0,
           "sliding_window": 32768, "use_sliding_window": false, "tie_word_embeddings": true)";
    ModelConfig q2 = parse_model_config(R"({"model_type": "qwen2", )" + base + "}", "qwen2.json");
    EXPECT_TRUE(q2.qkv_bias);  // Qwen2Attention: q/k/v bias, o without
    EXPECT_FALSE(q2.attention_bias);
    EXPECT_FALSE(q2.qk_norm);
    EXPECT_EQ(q2.sliding_window, 0);  // use_sliding_window false: no window at all
    EXPECT_EQ(q2.head_dim, 32);
    EXPECT_EQ(model_family_name(q2), "Qwen 2.5");
    ModelConfig q3 = parse_model_config(R"({"model_type": "qwen3", "head_dim": 64, )" + base + "}", "qwen3.json");
    EXPECT_TRUE(q3.qk_norm);
    EXPECT_FALSE(q3.has_qkv_bias());
    EXPECT_EQ(q3.head_dim, 64);
    EXPECT_EQ(q3.q_dim(), 256);  // != hidden_size
    // Round trip keeps the family and its switches.
    ModelConfig back = parse_model_config(model_config_to_json(q3), "back.json");
    EXPECT_EQ(back.model_type, "qwen3");
    EXPECT_TRUE(back.qk_norm);
    EXPECT_EQ(back.head_dim, 64);
}

TEST(Config, UnsupportedFamiliesAreRefusedByField) {
    const std::string dims =
        R"("vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4)";
    expect_error([&] { parse_model_config(R"({"model_type": "mixtral", )" + dims + "}", "m.json"); },
                 {"m.json", "model_type", "mixtral", "not supported"});
    expect_error([&] { parse_model_config(R"({"model_type": "qwen3_moe", )" + dims + "}", "m.json"); },
                 {"m.json", "qwen3_moe"});
    expect_error(
        [&] { parse_model_config(R"({"model_type": "llama", "num_local_experts": 8, )" + dims + "}", "m.json"); },
        {"m.json", "num_local_experts", "mixture-of-experts"});
    expect_error(
        [&] { parse_model_config(R"({"model_type": "qwen2", "use_sliding_window": true, )" + dims + "}", "m.json"); },
        {"m.json", "use_sliding_window"});
    expect_error(
        [&] {
            parse_model_config(
                R"({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4}, )" + dims + "}",
                "m.json");
        },
        {"m.json", "rope_scaling", "yarn", "not supported"});
}
