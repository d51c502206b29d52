#include "model/weights.h"

#include "test_util.h"

using namespace lincat;
using lincat::test::TempDir;

TEST(Weights, SaveLoadConvertsDtypes) {
    TempDir d;
    auto a = torch::randn({3, 5});
    auto b = torch::randn({7}).to(torch::kFloat16);
    save_tensors(d.file("w.safetensors"), {{"a", a}, {"b", b}, {"c", a.t()}});  // non-contiguous input
    WeightStore w = WeightStore::open_file(d.file("w.safetensors"));
    EXPECT_TRUE(torch::equal(w.get("a"), a));
    EXPECT_TRUE(torch::equal(w.get("b", torch::kFloat16), b));
    EXPECT_TRUE(torch::equal(w.get("c"), a.t().contiguous()));
    EXPECT_EQ(w.get("b").scalar_type(), torch::kFloat32);
    EXPECT_FALSE(w.has("d"));
    lincat::test::expect_error([&] { w.get("d"); }, {"'d'", "missing"});
}
