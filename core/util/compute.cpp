#include "util/compute.h"
#include "util/warm_up.h"

#include "util/error.h"

namespace lincat {

static Compute& current() {
    static Compute c;
    return c;
}

const Compute& compute() {
    return current();
}

void set_compute(const Compute& c) {
    current() = c;
}

Compute parse_compute(const std::string& device, const std::string& dtype) {
    Compute c;
    if (device == "cpu") {
        c.device = torch::Device(torch::kCPU);
    } else if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
        if (!torch::hasCUDA())
            fail("--device ", device,
                 ": this lincat is built against a LibTorch without CUDA (Debian's libtorch is CPU-only); "
                 "rebuild with an upstream LibTorch 2.x for CUDA: cmake -DTorch_DIR=<libtorch>/share/cmake/Torch "
                 "(README, 'GPU builds')");
        const int64_t n = int64_t(torch::cuda::device_count());
        if (n == 0)
            fail("--device ", device,
                 ": LibTorch has CUDA but sees no GPU (check the driver and CUDA_VISIBLE_DEVICES)");
        int64_t index = 0;
        if (device.size() > 5) {
            try {
                size_t used = 0;
                index = std::stoll(device.substr(5), &used);
                if (used != device.size() - 5) throw std::invalid_argument("trailing");
            } catch (const std::exception&) {
                fail("--device ", device, ": expected cuda:N with N a device number");
            }
        }
        if (index < 0 || index >= n) fail("--device ", device, ": there are ", n, " CUDA device(s), 0..", n - 1);
        c.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
    } else {
        fail("--device: '", device, "' is not cpu, cuda or cuda:N");
    }
    if (dtype == "auto" || dtype.empty())
        c.dtype = c.device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
    else if (dtype == "fp32" || dtype == "float32")
        c.dtype = torch::kFloat32;
    else if (dtype == "bf16" || dtype == "bfloat16")
        c.dtype = torch::kBFloat16;
    else
        fail("--dtype: '", dtype, "' is not auto, fp32 or bf16");
    return c;
}

std::string compute_text(const Compute& c) {
    return c.device.str() + (c.dtype == torch::kBFloat16 ? " bf16" : " fp32");
}

bool cpu_computes_bf16_natively() {
#if defined(__GNUC__) && defined(__x86_64__)
    return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
    return false;
#endif
}

}  // namespace lincat

namespace lincat {

void warm_up_runtime() {
    torch::AutoGradMode grad(true);  // callers may hold a NoGradGuard
    // 512 x 512: large enough that BLAS packs full panels on every thread (a 64 x 64 product
    // runs on one thread and leaves the other threads' buffers for the job's first step).
    auto a = torch::randn({512, 512}, torch::requires_grad());
    torch::matmul(a, a).sum().backward();
    // The kernels a transformer layer uses, batched as a job runs them (LibTorch sets up their
    // per-thread state on first use).
    torch::NoGradGuard ng;
    auto x = torch::randn({2, 8, 64, 64});
    auto s = torch::softmax(torch::matmul(x, x.transpose(-1, -2)), -1);
    (void)torch::linear(torch::matmul(s, x).transpose(1, 2).flatten(2), a).exp().cumsum(-1);
}

}  // namespace lincat
