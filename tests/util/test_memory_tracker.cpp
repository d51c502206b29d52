#include "util/memory_tracker.h"

#include <c10/core/CPUAllocator.h>

#include "test_util.h"

using namespace lincat;

TEST(TensorMemory, CountsTensorBytesUntilTheyAreFreed) {
    TensorMemory::install();
    const int64_t before = TensorMemory::current();
    {
        auto t = torch::empty({1000, 1000}, torch::kFloat32);  // 4 MB
        EXPECT_EQ(TensorMemory::current() - before, 4000000);
        TensorPeakWatch watch;
        auto u = torch::empty({250, 1000}, torch::kFloat32);
        EXPECT_EQ(watch.peak_bytes(), 1000000);
    }
    EXPECT_EQ(TensorMemory::current(), before);
}

TEST(TensorMemory, RawAllocationsWorkUnderTheTracker) {
    // LibTorch's raw interface (oneDNN's bf16 matmul scratch takes it) asserts that a block's
    // context is its data pointer, and frees through raw_deleter.
    TensorMemory::install();
    const int64_t before = TensorMemory::current();
    c10::Allocator* a = c10::GetCPUAllocator();
    void* p = a->raw_allocate(1000);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);  // as aligned as LibTorch's own blocks
    EXPECT_EQ(TensorMemory::current() - before, 1000);
    a->raw_deallocate(p);
    EXPECT_EQ(TensorMemory::current(), before);
}

TEST(TensorMemory, Bf16MatmulRunsUnderTheTracker) {
    // bf16 matmuls go through oneDNN where the CPU has AVX-512: its scratch came through
    // raw_allocate and failed LibTorch's assertion before the tracker kept context == data.
    // The product's form, x W^T with W (out, in) as the model's layers and LoRA hold it: on CPUs
    // without AVX-512, Debian's LibTorch 1.13 sends bf16 GEMMs to OpenBLAS 0.3.21's sbgemm, whose
    // other layouts return wrong sums (a plain mm(a, b) is 80% off on a Zen 3; every bf16 matmul
    // of lincat's CPU paths is x W^T or widens to fp32 first).
    TensorMemory::install();
    torch::manual_seed(3);
    auto a = torch::randn({64, 288}).to(torch::kBFloat16), w = torch::randn({288, 288}).to(torch::kBFloat16);
    auto got = torch::linear(a, w).to(torch::kFloat32);
    auto want = torch::linear(a.to(torch::kFloat32), w.to(torch::kFloat32));
    // Exact products, fp32 sums; the bf16 output rounds to 8 bits of mantissa (2^-8 relative).
    EXPECT_LT(((got - want).abs() / want.abs().clamp_min(1.0)).max().item<double>(), 1.0 / 128);
}
