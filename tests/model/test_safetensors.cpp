#include "model/safetensors.h"

#include <cstring>
#include <fstream>

#include "test_util.h"
#include "util/file.h"

using namespace lincat;
using lincat::test::expect_error;
using lincat::test::TempDir;

// A file with the given header JSON and `data_bytes` bytes of data.
static std::string make_file(const TempDir& dir, const std::string& header, size_t data_bytes,
                             uint64_t claimed_len = UINT64_MAX) {
    std::string path = dir.file("t.safetensors");
    std::ofstream f(path, std::ios::binary);
    uint64_t n = claimed_len == UINT64_MAX ? header.size() : claimed_len;
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << std::string(data_bytes, '\0');
    return path;
}

TEST(Safetensors, WriteReadRoundTrip) {
    TempDir dir;
    std::vector<float> a = {1, 2, 3, 4, 5, 6};
    std::vector<uint16_t> b = {0x3f80, 0x4000};  // bf16 1.0, 2.0
    write_safetensors(dir.file("x.safetensors"),
                      {{"a", DType::F32, {2, 3}, a.data(), a.size() * 4}, {"b.w", DType::BF16, {2}, b.data(), 4}},
                      {{"format", "pt"}});
    SafetensorsFile f = SafetensorsFile::open(dir.file("x.safetensors"));
    ASSERT_EQ(f.tensors().size(), 2u);
    const TensorInfo* ta = f.find("a");
    ASSERT_NE(ta, nullptr);
    EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(std::memcmp(f.data(*ta), a.data(), 24), 0);
    EXPECT_EQ(f.find("b.w")->dtype, DType::BF16);
    EXPECT_EQ(f.metadata().at("format"), "pt");
    // Header is padded so the data starts 8-aligned.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data(*ta)) % 8, 0u);
    // No temp file left behind.
    int files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path)) files += e.is_regular_file();
    EXPECT_EQ(files, 1);
}

TEST(Safetensors, TruncatedFile) {
    TempDir dir;
    std::string path = dir.file("short.safetensors");
    std::ofstream(path, std::ios::binary) << "abc";
    expect_error([&] { SafetensorsFile::open(path); }, {path, "truncated"});
}

TEST(Safetensors, HeaderLengthPastEof) {
    TempDir dir;
    std::string path = make_file(dir, "{}", 0, 1000);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "header length 1000", "past the end"});
}

TEST(Safetensors, HugeHeaderLengthDoesNotOverflow) {
    TempDir dir;
    std::string path = make_file(dir, "{}", 0, UINT64_MAX - 3);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "past the end"});
}

TEST(Safetensors, MalformedHeaderJson) {
    TempDir dir;
    std::string path = make_file(dir, "{\"a\": {", 0);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "malformed JSON"});
}

TEST(Safetensors, OffsetsOutsideFile) {
    TempDir dir;
    std::string path = make_file(dir, R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "'w'", "outside"});
}

TEST(Safetensors, OverlappingOffsets) {
    TempDir dir;
    std::string path = make_file(
        dir,
        R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
        12);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "overlapping", "'a'", "'b'"});
}

TEST(Safetensors, DtypeShapeMismatch) {
    TempDir dir;
    std::string path = make_file(dir, R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})", 8);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "'w'", "BF16", "[3]"});
}

TEST(Safetensors, ShapeOverflowIsCaught) {
    TempDir dir;
    std::string path = make_file(
        dir,
        R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904, 16], "data_offsets": [0, 0]}})",
        8);
    expect_error([&] { SafetensorsFile::open(path); }, {path, "'w'"});
}

TEST(Safetensors, BadFields) {
    TempDir dir;
    std::string p1 = make_file(dir, R"({"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}})", 1);
    expect_error([&] { SafetensorsFile::open(p1); }, {"unsupported dtype 'Q4'"});
    std::string p2 = make_file(dir, R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4);
    expect_error([&] { SafetensorsFile::open(p2); }, {"non-negative"});
    std::string p3 = make_file(dir, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4);
    expect_error([&] { SafetensorsFile::open(p3); }, {"begin 4 > end 0"});
    std::string p4 = make_file(dir, R"({"w": {"dtype": "F32", "shape": [1]}})", 4);
    expect_error([&] { SafetensorsFile::open(p4); }, {"data_offsets"});
    std::string p5 = make_file(dir, R"({"__metadata__": {"a": 1}})", 0);
    expect_error([&] { SafetensorsFile::open(p5); }, {"__metadata__"});
}
