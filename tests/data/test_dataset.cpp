#include "data/dataset.h"

#include <fstream>

#include "test_util.h"

using namespace lincat;
using lincat::test::expect_error;
using lincat::test::TempDir;

TEST(Dataset, TextAndAlpacaJsonlPackAndSplitDeterministically) {
    TempDir d;
    Tokenizer tok = Tokenizer::load_dir(lincat::test::default_model_dir());
    std::ofstream(d.file("a.txt"))
        << "Once upon a time there was a cat.\n\nThe cat liked milk. It was happy every day.\n";
    std::ofstream(d.file("b.jsonl")) << R"({"instruction": "Name a color.", "input": "", "output": "Red."})"
                                     << "\n\n"
                                     << R"({"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"})"
                                     << "\n";
    auto text = tokens_from_text_file(tok, d.file("a.txt"));
    EXPECT_EQ(std::count(text.begin(), text.end(), tok.bos_id()), 2);  // one BOS per document
    auto alpaca = tokens_from_alpaca_jsonl(tok, d.file("b.jsonl"));
    EXPECT_EQ(std::count(alpaca.begin(), alpaca.end(), tok.eos_id()), 2);  // one EOS per record
    EXPECT_NE(tok.decode(alpaca).find("### Input:\n2 and 3"), std::string::npos);

    DataSpec spec;
    spec.text_files = {d.file("a.txt")};
    spec.jsonl_files = {d.file("b.jsonl")};
    spec.seq_len = 8;
    spec.eval_fraction = 0.25;
    LlamaModel unused(parse_model_config(R"({"model_type": "llama", "vocab_size": 32000, "hidden_size": 8,
        "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1})",
                                         "tiny"));
    TokenData a = load_token_data(spec, unused, tok, d.file("cache"), "hash");
    TokenData b = load_token_data(spec, unused, tok, d.file("cache"), "hash");
    EXPECT_EQ(a.train.size(1), 8);
    EXPECT_EQ(a.train.size(0) + a.eval.size(0), int64_t(text.size() + alpaca.size()) / 8);
    EXPECT_TRUE(torch::equal(a.eval, b.eval));
}

TEST(Dataset, BadFilesNameFileAndLine) {
    TempDir d;
    Tokenizer tok = Tokenizer::load_dir(lincat::test::default_model_dir());
    std::ofstream(d.file("bad.jsonl")) << R"({"instruction": "x", "output": "y"})"
                                       << "\n{not json\n";
    expect_error([&] { tokens_from_alpaca_jsonl(tok, d.file("bad.jsonl")); }, {"bad.jsonl line 2", "malformed JSON"});
    std::ofstream(d.file("missing.jsonl")) << R"({"instruction": "x"})"
                                           << "\n";
    expect_error([&] { tokens_from_alpaca_jsonl(tok, d.file("missing.jsonl")); }, {"missing.jsonl line 1", "output"});
    std::ofstream(d.file("empty.txt")) << "\n\n  \n";
    expect_error([&] { tokens_from_text_file(tok, d.file("empty.txt")); }, {"empty.txt", "no text"});
    expect_error([&] { tokens_from_text_file(tok, d.file("nope.txt")); }, {"nope.txt"});
}

TEST(Dataset, TeacherSamplesAreSeededAndStartAtBos) {
    LlamaModel m(parse_model_config(R"({"model_type": "llama", "vocab_size": 50, "hidden_size": 16,
        "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2})",
                                    "tiny"));
    auto a = sample_teacher_sequences(m, 5, 12, 7, 1);
    auto b = sample_teacher_sequences(m, 5, 12, 7, 1);
    auto c = sample_teacher_sequences(m, 5, 12, 8, 1);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::equal(a, c));
    EXPECT_TRUE((a.select(1, 0) == 1).all().item<bool>());
    EXPECT_EQ(a.sizes(), (std::vector<int64_t>{5, 12}));
}
