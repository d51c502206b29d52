#include "data/dataset.h"

#include <fstream>

#include "util/progress.h"

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

namespace {
LlamaModel random_tiny_model(int64_t vocab) {
    LlamaModel m(parse_model_config(R"({"model_type": "llama", "vocab_size": )" + std::to_string(vocab) +
                                        R"(, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2})",
                                    "tiny"));
    torch::manual_seed(3);
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
        if (p.key().find("norm") == std::string::npos) p.value().normal_(0, 0.5);
    m->eval();
    return m;
}
}  // namespace

TEST(Dataset, TeacherSamplesAreSeededAndStartAtBos) {
    LlamaModel m = random_tiny_model(50);  // set weights: uninitialised ones may sample one token only
    auto a = sample_teacher_sequences(m, 5, 12, 7, 1);
    auto b = sample_teacher_sequences(m, 5, 12, 7, 1);
    auto c = sample_teacher_sequences(m, 5, 12, 8, 1);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::equal(a, c));
    EXPECT_TRUE((a.select(1, 0) == 1).all().item<bool>());
    EXPECT_EQ(a.sizes(), (std::vector<int64_t>{5, 12}));
}

TEST(Dataset, TeacherSamplesDoNotDependOnBatching) {
    LlamaModel m = random_tiny_model(50);
    auto all = sample_teacher_sequences(m, 7, 20, 11, 1);
    auto by_two = sample_teacher_sequences(m, 7, 20, 11, 1, /*max_batch=*/2);
    EXPECT_TRUE(torch::equal(all, by_two));
    EXPECT_GE(sampling_batch_rows(m->config(), 20, 4, 1), 1);
    // stories15M-sized rows: 2 x 6 layers x 288 x 256 tokens x 4 B of KV cache + 3 x 32000 x 4 B.
    ModelConfig c = m->config();
    c.num_hidden_layers = 6, c.hidden_size = 288, c.num_attention_heads = 6, c.num_key_value_heads = 6, c.head_dim = 48,
    c.vocab_size = 32000;
    EXPECT_EQ(sampling_batch_rows(c, 256, 4, int64_t(1000) * (2 * 6 * 288 * 256 * 4 + 3 * 32000 * 4)), 1000);
}

TEST(Dataset, TeacherSamplesFollowTheModelsDistributionAndReportProgress) {
    const int64_t V = 50, n = 4000;
    LlamaModel m = random_tiny_model(V);
    Progress last;
    int reports = 0;
    set_progress_sink([&](const Progress& p) { last = p, ++reports; });
    auto rows = sample_teacher_sequences(m, n, 2, 5, 1);
    set_progress_sink({});
    EXPECT_EQ(last.done, n);
    EXPECT_EQ(last.total, n);
    EXPECT_EQ(last.unit, "tokens");
    EXPECT_GE(reports, 2);  // the start and the end at least

    torch::NoGradGuard ng;
    auto p = torch::softmax(m->forward(torch::full({1, 1}, int64_t(1), torch::kLong)).view({V}), -1);
    auto counts = torch::bincount(rows.select(1, 1), {}, V).to(torch::kFloat64);
    auto expected = p.to(torch::kFloat64) * double(n);
    // Pearson's chi-square over 49 degrees of freedom: mean 49, sd 9.9; 110 is p < 1e-5. A sampler
    // off by one token, or drawing uniformly, lands in the thousands.
    const double chi2 = ((counts - expected).pow(2) / expected).sum().item<double>();
    EXPECT_LT(chi2, 110.0) << "first-token counts do not follow softmax(logits)";
    EXPECT_GT(p.max().item<double>(), 3.0 / double(V));  // the check has a non-uniform target
}

TEST(Dataset, InverseCdfSampleMatchesLibTorchsCumsumAndSearchsorted) {
    // Known probabilities 0.1 / 0.2 / 0.3 / 0.4 (and a zero one): u picks the bucket it falls in.
    auto logits = torch::tensor({0.1f, 0.0f, 0.2f, 0.3f, 0.4f}).log().view({1, 5}).repeat({6, 1});
    auto u = torch::tensor({0.0, 0.05, 0.15, 0.31, 0.61, 0.999}).view({6, 1});
    auto picked = inverse_cdf_sample(logits, u).view({6});
    EXPECT_EQ(std::vector<int64_t>(picked.data_ptr<int64_t>(), picked.data_ptr<int64_t>() + 6),
              (std::vector<int64_t>{0, 0, 2, 3, 4, 4}));  // never the zero-probability token 1
    // Against the tensor formulation on a real vocabulary's size: softmax, cumsum, searchsorted.
    torch::manual_seed(4);
    auto big = torch::randn({64, 32000}) * 3;
    auto uu = torch::rand({64, 1});
    auto cdf = torch::softmax(big, -1).cumsum(-1);
    auto want = torch::searchsorted(cdf, uu * cdf.narrow(1, 31999, 1), false, true).clamp_max(31999);
    auto got = inverse_cdf_sample(big, uu);
    // fp32 cumsum against our fp64 sum: they may part only where u lands within rounding of a
    // bucket edge, so at most one of 64 rows, and then on a neighbouring token.
    auto differ = (got != want).sum().item<int64_t>();
    EXPECT_LE(differ, 1);
    EXPECT_LE((got - want).abs().max().item<int64_t>(), 1);
    // A vocabulary that is not a whole number of the pick's blocks, with draws on both sides of
    // block edges: equal weights put u = (k + 0.5) / V in bucket k exactly.
    const int64_t V = 1000;
    const std::vector<int64_t> ks{0, 255, 256, 511, 512, 767, 768, 998, 999};
    auto flat = torch::zeros({int64_t(ks.size()), V});
    auto uk = torch::empty({int64_t(ks.size()), 1}, torch::kFloat64);
    for (size_t i = 0; i < ks.size(); ++i) uk[int64_t(i)][0] = (double(ks[i]) + 0.5) / double(V);
    auto edge = inverse_cdf_sample(flat, uk).view({-1});
    EXPECT_EQ(std::vector<int64_t>(edge.data_ptr<int64_t>(), edge.data_ptr<int64_t>() + edge.numel()), ks);
    // bf16 logits are read as they are and draw as their fp32 widening does.
    EXPECT_TRUE(torch::equal(inverse_cdf_sample(big.to(torch::kBFloat16), uu),
                             inverse_cdf_sample(big.to(torch::kBFloat16).to(torch::kFloat32), uu)));
    // A NaN row is an error naming the row, not a silent token.
    auto broken = big.narrow(0, 0, 4).clone();
    broken[2][7] = std::nanf("");
    try {
        inverse_cdf_sample(broken, uu.narrow(0, 0, 4));
        ADD_FAILURE() << "NaN logits were sampled";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("row 2"), std::string::npos) << e.what();
    }
}

TEST(Dataset, Bf16SamplingIsSeededBatchIndependentAndDrawsAsFp32ExceptAtRoundingEdges) {
    // A bf16 copy samples, the fp32 teacher is left as it was.
    const int64_t V = 50, n = 400;
    LlamaModel m = random_tiny_model(V);
    auto a = sample_teacher_sequences(m, 7, 20, 11, 1, 0, torch::kBFloat16);
    auto b = sample_teacher_sequences(m, 7, 20, 11, 1, /*max_batch=*/2, torch::kBFloat16);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_EQ(m->model->embed_tokens->weight.scalar_type(), torch::kFloat32);
    // The first token after BOS, drawn with the same uniforms in fp32 and in bf16: bf16's rounding
    // (about 2^-8 of each logit) moves a draw only where its uniform falls next to a bucket's edge.
    auto f32 = sample_teacher_sequences(m, n, 2, 5, 1).select(1, 1);
    auto b16 = sample_teacher_sequences(m, n, 2, 5, 1, 0, torch::kBFloat16).select(1, 1);
    const int64_t same = (f32 == b16).sum().item<int64_t>();
    EXPECT_GE(same, n * 9 / 10) << same << " of " << n << " draws agree";
    EXPECT_LT(same, n) << "bf16 sampling drew exactly the fp32 tokens: did it run in bf16?";
}

TEST(Dataset, AModelCopyInADtypeHoldsEveryWeight) {
    LlamaModel m = random_tiny_model(50);
    torch::NoGradGuard ng;
    auto tokens = torch::randint(50, {2, 9}, torch::kLong);
    auto want = m->forward(tokens);
    // Same dtype: bitwise the same logits, so every weight was copied under its own name.
    EXPECT_TRUE(torch::equal(llama_in_dtype(m, torch::kFloat32)->forward(tokens), want));
    LlamaModel half = llama_in_dtype(m, torch::kBFloat16);
    EXPECT_EQ(half->layer(1)->mlp->down_proj->weight.scalar_type(), torch::kBFloat16);
    // bf16 weights and activations: logits of size ~3 within a few bf16 ulps.
    auto err = (half->forward(tokens) - want).abs().max().item<double>();
    EXPECT_LT(err, 0.25);
    EXPECT_GT(err, 0.0);
}
