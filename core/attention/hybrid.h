// Hybrid attention (DESIGN.md 1.1-1.3): softmax over a small window W(i) plus learned
// linear attention over every earlier key outside it, per head:
//   a_sm(i,j) = gamma_h exp(q_i.k_j / sqrt(d) - m_i)   j in W(i), m_i = max over W(i) only
//   a_ln(i,j) = lambda_h phi_q(q_i).phi_k(k_j)          j <= i, j not in W(i)
//     (gated: lambda_h sum_f phi_q(q_i)_f phi_k(k_j)_f prod_{t=j+1..i} a_t,f, a_t = exp(log_gate_t))
//   y_i = sum_j (a_sm + a_ln) v_j / sum_j (a_sm + a_ln)
// Three forms that must agree: quadratic (the spec; returns the weights for viewers),
// chunked (O(n) memory, trains with autograd) and recurrent (constant-size state).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "attention/attention.h"
#include "attention/feature_map.h"
#include "attention/hybrid_kernels.h"

namespace lincat {

// End-aligned tk blocks over n tokens are start-aligned blocks after shifting positions right
// by this much (0 for sliding windows and start alignment).
int64_t hybrid_block_shift(int64_t n, const WindowSpec& window);

// W(i) for queries 0..n-1 over keys 0..n-1: (n, n) bool, causal.
torch::Tensor hybrid_window_mask(int64_t n, const WindowSpec& window);

// q, k, v (B, H, T, d) (keys/values already repeated per query head); f_q, f_k (B, H, T, F);
// gamma, lambda (H). log_gate (optional): (B, H, T, 1) or (B, H, T, F) log decay rates <= 0 of
// the linear state, one per token (see GateKind). Everything is computed in fp32; the result
// has q's dtype. weights_out (optional): the (B, H, T, T) normalised weights.
torch::Tensor hybrid_attention_quadratic(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                         const torch::Tensor& lambda, const WindowSpec& window,
                                         torch::Tensor* weights_out = nullptr, const torch::Tensor& log_gate = {});

// Same result with chunks of w tokens: softmax against chunks c-1 and c, linear against
// the running state of chunks <= c-2 (and, for sw, the part of chunk c-1 left of the window).
// Gated, every decay is taken between two positions of the same or neighbouring chunks, from
// in-chunk cumulative log rates, so no exponent is positive and none spans the sequence.
torch::Tensor hybrid_attention_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                       const torch::Tensor& lambda, const WindowSpec& window,
                                       const torch::Tensor& log_gate = {});

// Recurrent decode state: the linear state S = sum phi_k(k_j) v_j^T (B,H,F,d), z = sum phi_k(k_j)
// (B,H,F), and a ring buffer of the last `capacity` keys, values and phi_k(k) with their
// positions (w for sw, 2w for an exact tk decode). Memory does not grow with context. Gated,
// S and z decay by a_t each step and each buffered token keeps the decay it has had since it
// came in (ring_decay), so nothing depends on the absolute position.
class HybridState : public AttentionState {
  public:
    HybridState(WindowSpec decode_window) : window_(decode_window) {}
    int64_t length() const override { return length_; }
    int64_t bytes() const override;
    const WindowSpec& window() const { return window_; }
    int64_t capacity() const { return window_.kind == WindowKind::Sliding ? window_.size : 2 * window_.size; }

    // One token per call: q, k, v (B, H, 1, d), f_q, f_k (B, H, 1, F), log_gate (B, H, 1, 1|F)
    // or undefined. Returns (B, H, 1, d) fp32.
    torch::Tensor step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& f_q,
                       const torch::Tensor& f_k, const torch::Tensor& gamma, const torch::Tensor& lambda,
                       const torch::Tensor& log_gate = {});
    // Loads the state after a prefill of T tokens from scratch (k, v, f_k, log_gate of all of them).
    void absorb_prefill(const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& f_k,
                        const torch::Tensor& log_gate = {});
    // Steps run by the fused decode kernel: on CUDA tensors that is automatic (when built);
    // Emulated runs the kernel's body on CPU tensors (tests).
    void use_kernel(KernelBackend backend) { kernel_ = backend; }
    // CPU fp32 steps without a graph run as plain loops (step_cpu_loops) unless turned off here;
    // tests compare the two.
    void use_cpu_loops(bool on) { cpu_loops_ = on; }
    // Whether a step on these inputs runs as CPU loops; then step_cpu_loops may also compute the
    // softmax_dim feature maps itself from their weights wq, wk (H, d, f), f_q and f_k undefined,
    // with k and v given per kv head. log_gate as step()'s, per query head.
    bool decodes_with_cpu_loops(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& gamma) const {
        const bool fp32_cpu = q.is_cpu() && q.scalar_type() == torch::kFloat32 && k.scalar_type() == torch::kFloat32 &&
                              v.scalar_type() == torch::kFloat32;
        const bool graph = torch::GradMode::is_enabled() &&
                           (q.requires_grad() || k.requires_grad() || v.requires_grad() || gamma.requires_grad());
        return cpu_loops_ && !kernel_ && fp32_cpu && !graph;
    }
    torch::Tensor step_cpu_loops(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                 const torch::Tensor& lambda, const torch::Tensor& wq, const torch::Tensor& wk,
                                 const torch::Tensor& log_gate = {});

  private:
    void allocate(const torch::Tensor& k, const torch::Tensor& f_k, const torch::Tensor& log_gate);
    WindowSpec window_;
    torch::Tensor S_, z_;                     // fp32
    torch::Tensor ring_k_, ring_v_, ring_f_;  // (B, H, cap, d|F) fp32
    torch::Tensor ring_decay_;                // (B, H, cap, 1|F) fp32, gated only
    torch::Tensor ring_pos_;                  // (cap) int64, -1 = empty
    int64_t length_ = 0;
    std::optional<KernelBackend> kernel_;
    bool cpu_loops_ = true;
};

struct HybridOptions {
    HybridOptions(int64_t heads, int64_t head_dim) : heads_(heads), head_dim_(head_dim) {}
    TORCH_ARG(int64_t, heads);
    TORCH_ARG(int64_t, head_dim);
    TORCH_ARG(WindowSpec, window) = WindowSpec{};
    TORCH_ARG(int64_t, feature_dim) = 64;
    TORCH_ARG(FeatureMapKind, feature_map) = FeatureMapKind::SoftmaxDim;
    TORCH_ARG(bool, identity_init) = false;
    TORCH_ARG(bool, affine) = false;                              // lambda = 1 - gamma instead of 1
    TORCH_ARG(double, init_gamma_logit) = -2.1972;                // sigmoid -> gamma = 0.1
    TORCH_ARG(bool, quadratic_prefill) = false;                   // use the quadratic form (tests, viewers)
    TORCH_ARG(WindowKind, decode_window) = WindowKind::Terraced;  // Sliding = LoLCATs' decode
    TORCH_ARG(GateKind, gate) = GateKind::None;
    TORCH_ARG(int64_t, gate_rank) = 4;  // gla: the key's projection d -> rank -> F
};

class HybridAttentionImpl : public AttentionCoreImpl {
  public:
    explicit HybridAttentionImpl(const HybridOptions& options);
    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          AttentionState* state) override;
    std::unique_ptr<AttentionState> new_state() const override;
    std::string kind() const override { return "hybrid"; }
    const HybridOptions& options() const { return options_; }

    torch::Tensor gamma() const;   // (H)
    torch::Tensor lambda() const;  // (H)
    // The per-token log decay rates of the linear state for keys k (B, H, T, d), after
    // repeat_kv: (B, H, T, 1) for decay, (B, H, T, F) for gla, undefined without a gate.
    torch::Tensor log_gate(const torch::Tensor& k) const;
    // The (B, H, T, T) weights of the quadratic form for a viewer (after RoPE q, k).
    torch::Tensor attention_weights(const torch::Tensor& q, const torch::Tensor& k);
    torch::Tensor attention_weights_with_grad(const torch::Tensor& q, const torch::Tensor& k);

    FeatureMap feature_map_q{nullptr}, feature_map_k{nullptr};
    torch::Tensor window_factors;  // (H) logits: gamma = sigmoid(window_factors)
    // decay: log a_h = -exp(decay_rate_log) (H). gla: log a_t = logsigmoid(k_t down up + bias) / 16,
    // down (H, d, rank), up (H, rank, F), bias (H, F); 16 is GLA's normaliser, keeping a_t near 1.
    torch::Tensor decay_rate_log, gate_down, gate_up, gate_bias;

  private:
    torch::Tensor repeat_kv(const torch::Tensor& x) const;
    HybridOptions options_;
};
TORCH_MODULE(HybridAttention);

}  // namespace lincat
