#include "attention/softmax.h"

#include <cmath>

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

torch::Tensor softmax_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_start,
                                int64_t sliding_window, torch::Tensor* weights_out) {
    TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "softmax_attention: expected 4-d q, k, v");
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
    const int64_t Hkv = k.size(1), S = k.size(2);
    if (H % Hkv != 0 || k.sizes() != v.sizes() || k.size(0) != B || k.size(3) != D)
        fail("softmax_attention: shapes q ", q.sizes(), ", k ", k.sizes(), ", v ", v.sizes(), " do not fit");
    const int64_t G = H / Hkv;
    // Group query heads by their kv head instead of copying k and v G times.
    auto qf = q.to(torch::kFloat32).reshape({B, Hkv, G * T, D});
    auto kf = k.to(torch::kFloat32);
    auto scores = torch::matmul(qf, kf.transpose(-1, -2)).mul_(1.0 / std::sqrt(double(D)));  // (B,Hkv,G*T,S)
    scores = scores.view({B, Hkv, G, T, S});
    auto qpos = torch::arange(q_start, q_start + T, torch::kLong).view({T, 1});
    auto kpos = torch::arange(0, S, torch::kLong).view({1, S});
    auto allowed = kpos <= qpos;
    if (sliding_window > 0) allowed = allowed & (qpos - kpos < sliding_window);
    scores.masked_fill_(allowed.logical_not().to(scores.device()), -std::numeric_limits<float>::infinity());
    auto w = torch::softmax(scores, -1);
    auto out = torch::matmul(w.view({B, Hkv, G * T, S}), v.to(torch::kFloat32));  // (B,Hkv,G*T,D)
    if (weights_out) *weights_out = w.reshape({B, H, T, S});
    return out.view({B, H, T, D}).to(q.scalar_type());
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
