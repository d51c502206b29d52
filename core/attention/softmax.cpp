#include "attention/softmax.h"

#include <cmath>
#include <limits>
#include <vector>

#include "attention/softmax_decode.h"
#include "util/batched_matmul.h"
#include "util/error.h"

namespace lincat {

void KVCache::append(const torch::Tensor& k, const torch::Tensor& v) {
    const int64_t t = k.size(2);
    if (!k_.defined()) {
        int64_t cap = std::max<int64_t>(t, 64);
        k_ = torch::empty({k.size(0), k.size(1), cap, k.size(3)}, k.options());
        v_ = torch::empty({v.size(0), v.size(1), cap, v.size(3)}, v.options());
    } else if (k.size(0) != k_.size(0) || k.size(1) != k_.size(1) || k.size(3) != k_.size(3)) {
        fail("KV cache: appended keys ", k.sizes(), " do not match the cache ", k_.sizes());
    }
    if (length_ + t > k_.size(2)) {
        int64_t cap = std::max<int64_t>(2 * k_.size(2), length_ + t);
        auto grow = [&](torch::Tensor& buf) {
            auto bigger = torch::empty({buf.size(0), buf.size(1), cap, buf.size(3)}, buf.options());
            bigger.narrow(2, 0, length_).copy_(buf.narrow(2, 0, length_));
            buf = bigger;
        };
        grow(k_);
        grow(v_);
    }
    k_.narrow(2, length_, t).copy_(k);
    v_.narrow(2, length_, t).copy_(v);
    length_ += t;
}

torch::Tensor KVCache::keys() const {
    return k_.narrow(2, 0, length_);
}
torch::Tensor KVCache::values() const {
    return v_.narrow(2, 0, length_);
}
int64_t KVCache::bytes() const {
    return k_.defined() ? 2 * length_ * k_.size(0) * k_.size(1) * k_.size(3) * k_.element_size() : 0;
}

// Queries [q_start, q_start + T) of q (B, Hkv, G, T, D) over all S keys, in fp32.
static torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& kf, const torch::Tensor& vf, int64_t q_start,
                            int64_t sliding_window, torch::Tensor* weights_out) {
    const int64_t B = q.size(0), Hkv = q.size(1), G = q.size(2), T = q.size(3), D = q.size(4), S = kf.size(2);
    auto qf = q.to(torch::kFloat32).reshape({B, Hkv, G * T, D});
    auto scores = batched_matmul(qf, kf.transpose(-1, -2)).mul_(1.0 / std::sqrt(double(D)));  // (B,Hkv,G*T,S)
    scores = scores.view({B, Hkv, G, T, S});
    auto qpos = torch::arange(q_start, q_start + T, torch::kLong).view({T, 1});
    auto kpos = torch::arange(0, S, torch::kLong).view({1, S});
    auto allowed = kpos <= qpos;
    if (sliding_window > 0) allowed = allowed & (qpos - kpos < sliding_window);
    scores.masked_fill_(allowed.logical_not().to(scores.device()), -std::numeric_limits<float>::infinity());
    auto w = torch::softmax(scores, -1);
    if (weights_out) *weights_out = w.reshape({B, Hkv * G, T, S});
    return batched_matmul(w.view({B, Hkv, G * T, S}), vf).view({B, Hkv, G, T, D});
}

torch::Tensor softmax_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_start,
                                int64_t sliding_window, torch::Tensor* weights_out, int64_t max_score_bytes) {
    TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "softmax_attention: expected 4-d q, k, v");
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t Hkv = k.size(1), S = k.size(2);
    if (H % Hkv != 0 || k.sizes() != v.sizes() || k.size(0) != B || k.size(3) != D)
        fail("softmax_attention: shapes q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(), " do not fit");
    const int64_t G = H / Hkv;
#if TORCH_VERSION_MAJOR >= 2
    // On a GPU, LibTorch 2.x's fused SDPA (flash / memory-efficient kernels, fp32 accumulation).
    if (q.is_cuda() && !weights_out && sliding_window == 0 && q_start == 0 && T == S) {
        auto rep = [&](const torch::Tensor& t) {  // GQA: SDPA wants one kv head per query head
            return G == 1 ? t : t.unsqueeze(2).expand({B, Hkv, G, S, D}).reshape({B, H, S, D});
        };
        return at::scaled_dot_product_attention(q, rep(k), rep(v), {}, 0.0, true);
    }
#endif
    // Group query heads by their kv head instead of copying k and v G times.
    auto qg = q.reshape({B, Hkv, G, T, D});
    // Decode: no per-batch matmul loop. Its scores are whole (B, H, T, S), so only within the
    // score budget, and only where every query sees its own key (S >= q_start + T).
    if (!weights_out && q_start + T <= S && 4 * B * H * T * S <= max_score_bytes && softmax_decode_applies(qg, k, v))
        return softmax_decode_attention(qg, k, v, q_start, sliding_window).view({B, H, T, D});
    auto kf = k.to(torch::kFloat32), vf = v.to(torch::kFloat32);
    // Chunk the queries so the fp32 scores stay under max_score_bytes however long the input.
    const int64_t chunk = weights_out ? T : std::max<int64_t>(1, max_score_bytes / (4 * B * H * S));
    if (chunk >= T)
        return attend(qg, kf, vf, q_start, sliding_window, weights_out).view({B, H, T, D}).to(q.scalar_type());
    std::vector<torch::Tensor> parts;
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t n = std::min(chunk, T - t0);
        parts.push_back(attend(qg.narrow(3, t0, n), kf, vf, q_start + t0, sliding_window, nullptr).to(q.scalar_type()));
    }
    return torch::cat(parts, 3).view({B, H, T, D});
}

torch::Tensor SoftmaxAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                            AttentionState* state) {
    if (!state) return softmax_attention(q, k, v, 0, sliding_window_);
    auto* cache = dynamic_cast<KVCache*>(state);
    if (!cache) fail("softmax attention: given a state that is not a KV cache");
    const int64_t start = cache->length();
    cache->append(k, v);
    return softmax_attention(q, cache->keys(), cache->values(), start, sliding_window_);
}

}  // namespace lincat
