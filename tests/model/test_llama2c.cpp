#include "model/llama2c.h"

#include <cstring>

#include "test_util.h"

using namespace lincat;
using lincat::test::expect_error;

static std::string header(std::vector<int32_t> f) {
    std::string s(28, '\0');
    std::memcpy(s.data(), f.data(), 28);
    return s;
}

TEST(Llama2c, Stories15MHeaderImpliesItsFileSize) {
    Llama2cHeader h{288, 768, 6, 6, 6, 32000, 256, true};
    EXPECT_EQ(h.expected_file_size(), 60816028u);  // DESIGN.md: bytes [0, 60816028)
    ModelConfig c = llama2c_config(h);
    EXPECT_EQ(c.head_dim, 48);
    EXPECT_TRUE(c.tie_word_embeddings);
}

TEST(Llama2c, HeaderErrors) {
    auto parse = [](const std::string& s, size_t size) {
        parse_llama2c_header(reinterpret_cast<const uint8_t*>(s.data()), size, "model.bin");
    };
    std::string good = header({288, 768, 6, 6, 6, 32000, 256});
    expect_error([&] { parse(good, 20); }, {"model.bin", "truncated"});
    expect_error([&] { parse(good, 28); }, {"model.bin", "implies 60816028 bytes"});
    expect_error([&] { parse(header({288, 768, 6, 5, 5, 32000, 256}), 28); }, {"model.bin", "n_heads"});
    expect_error([&] { parse(header({288, 768, -6, 6, 6, 32000, 256}), 28); }, {"model.bin", "n_layers"});
    expect_error([&] { parse(header({288, 768, 6, 6, 4, 32000, 256}), 28); }, {"model.bin", "n_kv_heads"});
    expect_error([&] { parse(header({0, 768, 6, 6, 6, 32000, 256}), 28); }, {"model.bin", "dim"});
}
