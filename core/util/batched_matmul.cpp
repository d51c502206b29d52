#include "util/batched_matmul.h"

#include <ATen/Parallel.h>

#include <vector>

// The Fortran BLAS entry point: every BLAS has it, and it is the one LibTorch calls. Debian's
// libblas.so.3 is OpenBLAS (libopenblas0-openmp), which runs single-threaded when called inside
// an OpenMP parallel region, as below.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

namespace lincat {

namespace {

// Batches a thread takes at least, so that no thread waits long on the last one.
constexpr int64_t kBatchesPerThread = 4;

bool same_leading_dims(const torch::Tensor& a, const torch::Tensor& b) {
    if (a.dim() != b.dim() || a.dim() < 3) return false;
    for (int64_t i = 0; i + 2 < a.dim(); ++i)
        if (a.size(i) != b.size(i)) return false;
    return true;
}

// A matrix's last two dims as BLAS reads them: one of its strides must be 1.
bool blas_readable(const torch::Tensor& t) {
    const int64_t r = t.size(-2), c = t.size(-1), sr = t.stride(-2), sc = t.stride(-1);
    return (sc == 1 && sr >= std::max<int64_t>(1, c)) || (sr == 1 && sc >= std::max<int64_t>(1, r));
}

// Element offset of each batch of t's leading dims (any strides, 0 for broadcast ones).
std::vector<int64_t> batch_offsets(const torch::Tensor& t) {
    std::vector<int64_t> offsets = {0};
    for (int64_t d = 0; d + 2 < t.dim(); ++d) {
        std::vector<int64_t> next;
        next.reserve(offsets.size() * size_t(t.size(d)));
        for (int64_t o : offsets)
            for (int64_t i = 0; i < t.size(d); ++i) next.push_back(o + i * t.stride(d));
        offsets = std::move(next);
    }
    return offsets;
}

// C (batch, m, n) row-major = A @ B. Row-major C is column-major C^T = B^T A^T, so BLAS gets
// B first: a row-major matrix is its column-major transpose ('N'), a transposed view is 'T'.
torch::Tensor gemm_per_batch(torch::Tensor a, torch::Tensor b) {
    if (!blas_readable(a)) a = a.contiguous();
    if (!blas_readable(b)) b = b.contiguous();
    const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
    auto sizes = a.sizes().vec();
    sizes.back() = n;
    auto c = torch::empty(sizes, a.options());
    if (c.numel() == 0) return c;
    if (k == 0) return c.zero_();
    const auto a_off = batch_offsets(a), b_off = batch_offsets(b);
    const bool a_rows = a.stride(-1) == 1, b_rows = b.stride(-1) == 1;
    const int lda = int(a_rows ? a.stride(-2) : a.stride(-1)), ldb = int(b_rows ? b.stride(-2) : b.stride(-1));
    const char ta = a_rows ? 'N' : 'T', tb = b_rows ? 'N' : 'T';
    const int M = int(n), N = int(m), K = int(k), ldc = int(n);
    const float one = 1, zero = 0;
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* cp = c.data_ptr<float>();
    const int64_t batches = int64_t(a_off.size());
    at::parallel_for(0, batches, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            sgemm_(&tb, &ta, &M, &N, &K, &one, bp + b_off[size_t(i)], &ldb, ap + a_off[size_t(i)], &lda, &zero,
                   cp + i * m * n, &ldc);
    });
    return c;
}

struct BatchedMatmulFunction : torch::autograd::Function<BatchedMatmulFunction> {
    static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a,
                                 const torch::Tensor& b) {
        ctx->save_for_backward({a, b});
        return gemm_per_batch(a, b);
    }
    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::tensor_list grads) {
        auto saved = ctx->get_saved_variables();
        const auto &a = saved[0], &b = saved[1], &g = grads[0];
        torch::Tensor ga, gb;
        if (ctx->needs_input_grad(0)) ga = batched_matmul(g, b.transpose(-1, -2));
        if (ctx->needs_input_grad(1)) gb = batched_matmul(a.transpose(-1, -2), g);
        return {ga, gb};
    }
};

}  // namespace

bool batched_matmul_applies(const torch::Tensor& a, const torch::Tensor& b) {
    if (!a.defined() || !b.defined() || !a.device().is_cpu() || !b.device().is_cpu()) return false;
    if (a.scalar_type() != torch::kFloat32 || b.scalar_type() != torch::kFloat32) return false;
    if (!same_leading_dims(a, b) || a.size(-1) != b.size(-2)) return false;
    // BLAS takes int sizes and strides.
    for (const auto* t : {&a, &b})
        for (int64_t i = 0; i < t->dim(); ++i)
            if (t->size(i) > INT32_MAX || t->stride(i) > INT32_MAX) return false;
    const int64_t batches = a.numel() / std::max<int64_t>(1, a.size(-2) * a.size(-1));
    return at::get_num_threads() > 1 && a.numel() > 0 && batches >= kBatchesPerThread * at::get_num_threads();
}

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b) {
    if (!batched_matmul_applies(a, b)) return torch::matmul(a, b);
    const bool graph = torch::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
    if (!graph) return gemm_per_batch(a, b);
    return BatchedMatmulFunction::apply(a, b);
}

}  // namespace lincat
