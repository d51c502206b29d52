// The CUDA kernels against their own bodies run on the host (hybrid_*_emulated), on the same
// random inputs: prefill for tk and sw windows, head dims 48 / 64 / 128, feature dim 128,
// fp32 and bf16, sequence lengths that do and do not fill whole chunks; then 300 decode steps
// (past the ring's capacity, so tokens fold into the linear state). The emulation is checked
// against the LibTorch reference by tests/attention/test_kernels_host.cpp on every machine.
// Tolerances: fp32 outputs within 2e-5 relative to max|y| (summation order differs: the
// GPU sums with 256 threads in 4x4 tiles, the host with one); bf16 outputs within one bf16 ulp
// (2^-8 relative) since both round the same fp32 result. Exit 77 (ctest: skipped) without a GPU.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hybrid_attention.h"

using namespace lincat::kernels;

namespace {

int failures = 0;

#define CUDA_OK(x)                                                                                  \
    do {                                                                                            \
        cudaError_t e_ = (x);                                                                       \
        if (e_ != cudaSuccess) {                                                                    \
            std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            std::exit(1);                                                                           \
        }                                                                                           \
    } while (0)

struct Buffer {
    std::vector<unsigned char> host;
    void* dev = nullptr;
    explicit Buffer(size_t bytes) : host(bytes) { CUDA_OK(cudaMalloc(&dev, bytes ? bytes : 1)); }
    ~Buffer() { cudaFree(dev); }
    void upload() { CUDA_OK(cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice)); }
    std::vector<unsigned char> download() const {
        std::vector<unsigned char> out(host.size());
        CUDA_OK(cudaMemcpy(out.data(), dev, host.size(), cudaMemcpyDeviceToHost));
        return out;
    }
};

size_t elem_bytes(DType t) {
    return t == DType::F32 ? 4 : 2;
}

void fill(Buffer& b, DType t, std::mt19937& rng, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    const size_t n = b.host.size() / elem_bytes(t);
    for (size_t i = 0; i < n; ++i) {
        float x = u(rng);
        if (t == DType::F32)
            std::memcpy(&b.host[4 * i], &x, 4);
        else {
            uint16_t h = float_to_bf16(x);
            std::memcpy(&b.host[2 * i], &h, 2);
        }
    }
    b.upload();
}

float value(const std::vector<unsigned char>& bytes, size_t i, DType t) {
    if (t == DType::F32) {
        float x;
        std::memcpy(&x, &bytes[4 * i], 4);
        return x;
    }
    uint16_t h;
    std::memcpy(&h, &bytes[2 * i], 2);
    return bf16_to_float(h);
}

// Largest |gpu - host| relative to max |host|; NaN anywhere counts as a failure.
double compare(const std::vector<unsigned char>& gpu, const std::vector<unsigned char>& host, size_t n, DType t) {
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; ++i) scale = std::max(scale, double(std::fabs(value(host, i, t))));
    for (size_t i = 0; i < n; ++i) {
        const double g = value(gpu, i, t), h = value(host, i, t);
        if (!std::isfinite(g) || !std::isfinite(h)) return INFINITY;
        worst = std::max(worst, std::fabs(g - h) / scale);
    }
    return worst;
}

void check(const std::string& what, double err, double tol) {
    const bool ok = err <= tol;
    std::printf("%-58s max rel err %.3g (tol %.3g) %s\n", what.c_str(), err, tol, ok ? "ok" : "FAIL");
    if (!ok) ++failures;
}

void prefill_case(int64_t B, int64_t H, int64_t T, int64_t d, bool sliding, int64_t shift, DType t) {
    const int64_t F = 128, w = 64;
    std::mt19937 rng(unsigned(T * 7 + d + sliding + 13 * shift));
    const size_t eb = elem_bytes(t);
    Buffer q(B * H * T * d * eb), k(B * H * T * d * eb), v(B * H * T * d * eb), fq(B * H * T * F * eb),
        fk(B * H * T * F * eb), gamma(H * 4), lambda(H * 4), out(B * H * T * d * eb);
    fill(q, t, rng, -2, 2);
    fill(k, t, rng, -2, 2);
    fill(v, t, rng, -1, 1);
    fill(fq, t, rng, 0, 0.05f);  // Hedgehog features: softmax outputs, positive and small
    fill(fk, t, rng, 0, 0.05f);
    fill(gamma, DType::F32, rng, 0.05f, 0.95f);
    fill(lambda, DType::F32, rng, 0.5f, 1.0f);
    PrefillArgs a;
    a.B = B, a.H = H, a.T = T, a.d = d, a.F = F, a.window = w, a.sliding = sliding, a.shift = shift, a.dtype = t;
    a.q = q.dev, a.k = k.dev, a.v = v.dev, a.fq = fq.dev, a.fk = fk.dev, a.out = out.dev;
    a.gamma = static_cast<const float*>(gamma.dev), a.lambda = static_cast<const float*>(lambda.dev);
    Buffer ws(prefill_workspace_bytes(a));
    const char* err = hybrid_prefill_cuda(a, ws.dev, nullptr);
    if (*err) {
        std::printf("prefill launch failed: %s\n", err);
        ++failures;
        return;
    }
    CUDA_OK(cudaDeviceSynchronize());
    auto gpu = out.download();
    PrefillArgs h = a;  // the same inputs from host memory
    h.q = q.host.data(), h.k = k.host.data(), h.v = v.host.data(), h.fq = fq.host.data(), h.fk = fk.host.data();
    h.gamma = reinterpret_cast<const float*>(gamma.host.data());
    h.lambda = reinterpret_cast<const float*>(lambda.host.data());
    h.out = out.host.data();
    std::vector<float> hws(prefill_workspace_bytes(a) / 4);
    hybrid_prefill_emulated(h, hws.data());
    char name[160];
    std::snprintf(name, sizeof name, "prefill %s B=%lld H=%lld T=%lld d=%lld shift=%lld %s", sliding ? "sw" : "tk",
                  (long long)B, (long long)H, (long long)T, (long long)d, (long long)shift,
                  t == DType::F32 ? "fp32" : "bf16");
    check(name, compare(gpu, out.host, size_t(B * H * T * d), t), t == DType::F32 ? 2e-5 : 1.0 / 128);
}

void decode_case(int64_t B, int64_t H, int64_t d, bool sliding, DType t) {
    const int64_t F = 128, w = 64, cap = sliding ? w : 2 * w, steps = 300;
    std::mt19937 rng(unsigned(B * 31 + d + sliding));
    const size_t eb = elem_bytes(t);
    Buffer S(B * H * F * d * 4), z(B * H * F * 4), rk(B * H * cap * d * 4), rv(B * H * cap * d * 4),
        rf(B * H * cap * F * 4), gamma(H * 4), lambda(H * 4);
    for (Buffer* b : {&S, &z, &rk, &rv, &rf}) {
        std::fill(b->host.begin(), b->host.end(), 0);
        b->upload();
    }
    fill(gamma, DType::F32, rng, 0.05f, 0.95f);
    fill(lambda, DType::F32, rng, 0.5f, 1.0f);
    Buffer q(B * H * d * eb), k(B * H * d * eb), v(B * H * d * eb), fq(B * H * F * eb), fk(B * H * F * eb),
        out(B * H * d * eb);
    double worst = 0;
    for (int64_t p = 0; p < steps; ++p) {
        fill(q, t, rng, -2, 2);
        fill(k, t, rng, -2, 2);
        fill(v, t, rng, -1, 1);
        fill(fq, t, rng, 0, 0.05f);
        fill(fk, t, rng, 0, 0.05f);
        DecodeArgs a;
        a.B = B, a.H = H, a.d = d, a.F = F, a.window = w, a.capacity = cap, a.sliding = sliding, a.position = p;
        a.dtype = t;
        a.q = q.dev, a.k = k.dev, a.v = v.dev, a.fq = fq.dev, a.fk = fk.dev, a.out = out.dev;
        a.gamma = static_cast<const float*>(gamma.dev), a.lambda = static_cast<const float*>(lambda.dev);
        a.S = static_cast<float*>(S.dev), a.z = static_cast<float*>(z.dev), a.ring_k = static_cast<float*>(rk.dev);
        a.ring_v = static_cast<float*>(rv.dev), a.ring_f = static_cast<float*>(rf.dev);
        const char* err = hybrid_decode_cuda(a, nullptr);
        if (*err) {
            std::printf("decode launch failed: %s\n", err);
            ++failures;
            return;
        }
        CUDA_OK(cudaDeviceSynchronize());
        DecodeArgs h = a;
        h.q = q.host.data(), h.k = k.host.data(), h.v = v.host.data(), h.fq = fq.host.data(), h.fk = fk.host.data();
        h.out = out.host.data();
        h.gamma = reinterpret_cast<const float*>(gamma.host.data());
        h.lambda = reinterpret_cast<const float*>(lambda.host.data());
        h.S = reinterpret_cast<float*>(S.host.data()), h.z = reinterpret_cast<float*>(z.host.data());
        h.ring_k = reinterpret_cast<float*>(rk.host.data()), h.ring_v = reinterpret_cast<float*>(rv.host.data());
        h.ring_f = reinterpret_cast<float*>(rf.host.data());
        hybrid_decode_emulated(h);
        worst = std::max(worst, compare(out.download(), out.host, size_t(B * H * d), t));
    }
    // The state itself must match too (it carries every step's error forward).
    const double state_err = compare(S.download(), S.host, size_t(B * H * F * d), DType::F32);
    char name[160];
    std::snprintf(name, sizeof name, "decode %s B=%lld H=%lld d=%lld %lld steps %s", sliding ? "sw" : "tk",
                  (long long)B, (long long)H, (long long)d, (long long)steps, t == DType::F32 ? "fp32" : "bf16");
    check(name, worst, t == DType::F32 ? 2e-5 : 1.0 / 128);
    check(std::string(name) + " (state S)", state_err, 2e-5);
}

}  // namespace

int main() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        std::printf("SKIP: no CUDA device (%s): the kernels are compiled but cannot run here\n",
                    e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
    for (DType t : {DType::F32, DType::BF16})
        for (bool sw : {false, true})
            for (int64_t d : {48, 64, 128}) {
                prefill_case(2, 3, 1000, d, sw, 0, t);
                if (!sw) prefill_case(1, 2, 777, d, sw, 64 - 777 % 64, t);  // end-aligned tk blocks
            }
    prefill_case(1, 2, 40, 64, false, 0, DType::F32);  // one partial chunk
    prefill_case(1, 4, 4096, 128, true, 0, DType::BF16);
    for (DType t : {DType::F32, DType::BF16})
        for (bool sw : {false, true})
            for (int64_t d : {48, 128}) decode_case(3, 2, d, sw, t);
    std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
