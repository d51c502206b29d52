#include "attention/hybrid_kernels.h"

#include <cstdlib>

#include "attention/hybrid.h"
#include "hybrid_attention.h"
#include "util/error.h"

#ifdef LINCAT_CUDA_KERNELS
#include <c10/cuda/CUDAStream.h>
#endif

namespace lincat {

namespace {

kernels::DType kernel_dtype(torch::ScalarType t) {
    if (t == torch::kFloat32) return kernels::DType::F32;
    if (t == torch::kBFloat16) return kernels::DType::BF16;
    fail("hybrid attention kernel: dtype ", t, " is not fp32 or bf16");
}

// The current CUDA stream of LibTorch, so kernels order with the ops around them.
void* current_stream(const torch::Tensor& t, KernelBackend backend) {
    if (backend == KernelBackend::Emulated) return nullptr;
#ifdef LINCAT_CUDA_KERNELS
    return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
#else
    (void)t;
    fail("hybrid attention kernel: this build has no CUDA kernels (LibTorch without CUDA)");
#endif
}

void check_device(const torch::Tensor& q, KernelBackend backend) {
    if (backend == KernelBackend::Cuda && !q.is_cuda())
        fail("hybrid attention kernel: the CUDA backend needs CUDA tensors");
    if (backend == KernelBackend::Emulated && !q.device().is_cpu())
        fail("hybrid attention kernel: the emulated backend runs on CPU tensors");
}

kernels::PrefillArgs prefill_shape(const torch::Tensor& q, const torch::Tensor& f_q, const WindowSpec& window) {
    kernels::PrefillArgs a;
    a.B = q.size(0), a.H = q.size(1), a.T = q.size(2), a.d = q.size(3), a.F = f_q.size(3);
    a.window = window.size, a.sliding = window.kind == WindowKind::Sliding, a.shift = hybrid_block_shift(a.T, window);
    return a;
}

// The inputs as the kernels take them: one dtype, contiguous; gamma, lambda fp32; the output.
struct Operands {
    torch::Tensor q, k, v, fq, fk, gamma, lambda, out;
};

template <class KernelArgs>
Operands prepare(KernelArgs& a, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                 const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                 const torch::Tensor& lambda) {
    const auto dtype = q.scalar_type();
    a.dtype = kernel_dtype(dtype);
    auto prep = [&](const torch::Tensor& t) { return t.to(dtype).contiguous(); };
    Operands o{prep(q),
               prep(k),
               prep(v),
               prep(f_q),
               prep(f_k),
               gamma.to(q.device(), torch::kFloat32).contiguous(),
               lambda.to(q.device(), torch::kFloat32).contiguous(),
               torch::Tensor()};
    o.out = torch::empty_like(o.q);
    return o;
}

// Pointers are set only after the shape checks passed.
template <class KernelArgs>
void point(KernelArgs& a, Operands& o) {
    a.q = o.q.data_ptr(), a.k = o.k.data_ptr(), a.v = o.v.data_ptr(), a.fq = o.fq.data_ptr(), a.fk = o.fk.data_ptr();
    a.gamma = o.gamma.data_ptr<float>(), a.lambda = o.lambda.data_ptr<float>(), a.out = o.out.data_ptr();
}

int kernels_switch = -1;  // -1: not decided yet (read the environment once)

}  // namespace

void set_hybrid_kernels_enabled(bool enabled) {
    kernels_switch = enabled ? 1 : 0;
}

bool hybrid_kernels_enabled() {
    if (kernels_switch < 0) {
        const char* env = std::getenv("LINCAT_NO_KERNELS");
        kernels_switch = (env && *env && std::string(env) != "0") ? 0 : 1;
    }
    return kernels_switch == 1;
}

bool hybrid_kernel_applies(const torch::Tensor& q, const torch::Tensor& f_q, const WindowSpec& window, bool needs_grad,
                           std::string* why) {
    auto no = [&](const std::string& reason) {
        if (why) *why = reason;
        return false;
    };
    if (!q.is_cuda()) return no("not a CUDA tensor");
    if (!kernels::cuda_kernels_built()) return no("this build has no CUDA kernels");
    if (!hybrid_kernels_enabled()) return no("kernels switched off (LINCAT_NO_KERNELS)");
    if (needs_grad) return no("a graph is recorded (backward runs in LibTorch)");
    if (q.scalar_type() != torch::kFloat32 && q.scalar_type() != torch::kBFloat16)
        return no("dtype is not fp32 or bf16");
    kernels::PrefillArgs a = prefill_shape(q, f_q, window);
    const char* reason = kernels::prefill_unsupported(a);
    if (*reason) return no(reason);
    return true;
}

torch::Tensor hybrid_attention_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                      const torch::Tensor& lambda, const WindowSpec& window, KernelBackend backend) {
    check_device(q, backend);
    kernels::PrefillArgs a = prefill_shape(q, f_q, window);
    Operands o = prepare(a, q, k, v, f_q, f_k, gamma, lambda);
    if (const char* why = kernels::prefill_unsupported(a); *why) fail("hybrid attention kernel: ", why);
    point(a, o);
    auto workspace = torch::empty({int64_t(kernels::prefill_workspace_bytes(a) / sizeof(float))},
                                  q.options().dtype(torch::kFloat32));
    if (backend == KernelBackend::Emulated) {
        kernels::hybrid_prefill_emulated(a, workspace.data_ptr());
    } else if (const char* err = kernels::hybrid_prefill_cuda(a, workspace.data_ptr(), current_stream(q, backend));
               *err) {
        fail("hybrid attention kernel (prefill): ", err);
    }
    return o.out;
}

torch::Tensor hybrid_decode_kernel(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                   const torch::Tensor& lambda, torch::Tensor& S, torch::Tensor& z,
                                   torch::Tensor& ring_k, torch::Tensor& ring_v, torch::Tensor& ring_f,
                                   const WindowSpec& window, int64_t capacity, int64_t position,
                                   KernelBackend backend) {
    check_device(q, backend);
    for (auto* t : {&S, &z, &ring_k, &ring_v, &ring_f})
        if (t->scalar_type() != torch::kFloat32 || !t->is_contiguous())
            fail("hybrid decode kernel: the state must be fp32 and contiguous");
    kernels::DecodeArgs a;
    Operands o = prepare(a, q, k, v, f_q, f_k, gamma, lambda);
    a.B = q.size(0), a.H = q.size(1), a.d = q.size(3), a.F = f_q.size(3);
    a.window = window.size, a.capacity = capacity, a.sliding = window.kind == WindowKind::Sliding;
    a.position = position;
    if (const char* why = kernels::decode_unsupported(a); *why) fail("hybrid decode kernel: ", why);
    point(a, o);
    a.S = S.data_ptr<float>(), a.z = z.data_ptr<float>(), a.ring_k = ring_k.data_ptr<float>();
    a.ring_v = ring_v.data_ptr<float>(), a.ring_f = ring_f.data_ptr<float>();
    if (backend == KernelBackend::Emulated) {
        kernels::hybrid_decode_emulated(a);
    } else if (const char* err = kernels::hybrid_decode_cuda(a, current_stream(q, backend)); *err) {
        fail("hybrid attention kernel (decode): ", err);
    }
    return o.out.to(torch::kFloat32);
}

}  // namespace lincat
