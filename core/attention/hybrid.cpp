#include "attention/hybrid.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/batched_matmul.h"
#include "util/dot_lanes.h"
#include "util/error.h"
#include "util/fast_exp.h"

namespace lincat {

using torch::indexing::Slice;

// End alignment puts tk block edges at n - w, n - 2w, ...: the same as start alignment
// after shifting positions right by (w - n % w) % w.
int64_t hybrid_block_shift(int64_t n, const WindowSpec& w) {
    return (w.kind == WindowKind::Terraced && w.align == BlockAlign::End) ? (w.size - n % w.size) % w.size : 0;
}

static void check_window(const WindowSpec& w) {
    if (w.size <= 0) fail("hybrid attention: window size must be positive, got ", w.size);
}

torch::Tensor hybrid_window_mask(int64_t n, const WindowSpec& w) {
    check_window(w);
    auto i = torch::arange(n, torch::kLong).view({n, 1});
    auto j = torch::arange(n, torch::kLong).view({1, n});
    auto causal = j <= i;
    if (w.kind == WindowKind::Sliding) return causal & (i - j < w.size);
    const int64_t shift = hybrid_block_shift(n, w);
    auto bi = (i + shift).div(w.size, "floor"), bj = (j + shift).div(w.size, "floor");
    return causal & (bj >= bi - 1);
}

static void check_inputs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                         const torch::Tensor& lambda) {
    if (q.dim() != 4) fail("hybrid attention: q must be (B, H, T, d), got ", q.sizes());
    if (k.sizes() != q.sizes() || v.sizes() != q.sizes())
        fail("hybrid attention: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(), " must have the same shape");
    if (f_q.dim() != 4 || f_k.sizes() != f_q.sizes() || f_q.size(0) != q.size(0) || f_q.size(1) != q.size(1) ||
        f_q.size(2) != q.size(2))
        fail("hybrid attention: features f_q ", f_q.sizes(), " and f_k ", f_k.sizes(), " do not fit q ", q.sizes());
    if (f_q.size(3) == 0) fail("hybrid attention: feature dim is 0");
    if (gamma.numel() != q.size(1) || lambda.numel() != q.size(1))
        fail("hybrid attention: gamma and lambda need one value per head (", q.size(1), ")");
    // One reduction per tensor: a NaN or inf anywhere makes the sum non-finite.
    for (auto* t : {&q, &k, &v})
        if (!std::isfinite(t->sum().item<double>()))
            fail("hybrid attention: non-finite values (NaN or inf) in q, k or v");
}

static void check_gate(const torch::Tensor& log_gate, const torch::Tensor& f_q) {
    if (!log_gate.defined()) return;
    if (log_gate.dim() != 4 || log_gate.size(0) != f_q.size(0) || log_gate.size(1) != f_q.size(1) ||
        log_gate.size(2) != f_q.size(2) || (log_gate.size(3) != 1 && log_gate.size(3) != f_q.size(3)))
        fail("hybrid attention: log_gate ", log_gate.sizes(), " must be (B, H, T, 1) or (B, H, T, F) for features ",
             f_q.sizes());
}

torch::Tensor hybrid_attention_quadratic(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                         const torch::Tensor& lambda, const WindowSpec& window,
                                         torch::Tensor* weights_out, const torch::Tensor& log_gate) {
    check_window(window);
    check_inputs(q, k, v, f_q, f_k, gamma, lambda);
    check_gate(log_gate, f_q);
    const int64_t H = q.size(1), T = q.size(2), d = q.size(3);
    auto qf = q.to(torch::kFloat32), kf = k.to(torch::kFloat32), vf = v.to(torch::kFloat32);
    auto win = hybrid_window_mask(T, window).to(q.device());
    auto causal = torch::ones({T, T}, torch::kBool).tril().to(q.device());
    auto lin = causal & win.logical_not();
    auto g = gamma.to(torch::kFloat32).view({1, H, 1, 1}), l = lambda.to(torch::kFloat32).view({1, H, 1, 1});

    auto s = batched_matmul(qf, kf.transpose(-1, -2)) / std::sqrt(double(d));  // (B,H,T,T)
    auto s_win = s.masked_fill(win.logical_not(), -INFINITY);  // mask before exp: no inf * 0 in backward
    auto a_sm = g * torch::exp(s_win - s_win.amax(-1, true));
    auto fq = f_q.to(torch::kFloat32), fk = f_k.to(torch::kFloat32);
    torch::Tensor a_ln;
    if (!log_gate.defined()) {
        a_ln = l * batched_matmul(fq, fk.transpose(-1, -2)).masked_fill(lin.logical_not(), 0);
    } else {
        // Decay from key j to query i: exp(G_i - G_j), G the inclusive cumulative log rate;
        // -inf off the linear set before exp, so no overflow (j > i) reaches the backward.
        auto G = log_gate.to(torch::kFloat32).cumsum(2);  // (B,H,T,Fg)
        auto off = lin.logical_not();
        if (G.size(3) == 1) {
            auto decay = (G - G.transpose(-1, -2)).masked_fill(off, -INFINITY).exp();  // (B,H,T,T)
            a_ln = l * batched_matmul(fq, fk.transpose(-1, -2)) * decay;
        } else {
            auto decay =
                (G.unsqueeze(3) - G.unsqueeze(2)).masked_fill(off.unsqueeze(-1), -INFINITY).exp();  // (B,H,T,T,F)
            a_ln = l * (fq.unsqueeze(3) * fk.unsqueeze(2) * decay).sum(-1);
        }
    }
    auto a = a_sm + a_ln;
    auto w = a / a.sum(-1, true);
    if (weights_out) *weights_out = w;
    return batched_matmul(w, vf).to(q.scalar_type());
}

torch::Tensor hybrid_attention_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                       const torch::Tensor& lambda, const WindowSpec& window,
                                       const torch::Tensor& log_gate) {
    check_window(window);
    check_inputs(q, k, v, f_q, f_k, gamma, lambda);
    check_gate(log_gate, f_q);
    const bool gated = log_gate.defined();
    // Without a graph to build, work in place where it saves a pass over (B, H, n, *) data.
    const bool inference =
        !torch::GradMode::is_enabled() ||
        !(q.requires_grad() || k.requires_grad() || v.requires_grad() || f_q.requires_grad() || f_k.requires_grad() ||
          gamma.requires_grad() || lambda.requires_grad() || (gated && log_gate.requires_grad()));
    // On a GPU, inference takes the fused kernel (kernels/); training keeps this LibTorch form.
    if (!gated && hybrid_kernel_applies(q, f_q, window, !inference))
        return hybrid_attention_kernel(q, k, v, f_q, f_k, gamma, lambda, window, KernelBackend::Cuda);
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), d = q.size(3);
    const int64_t w = window.size;
    const int64_t shift = hybrid_block_shift(T, window);
    const int64_t C = (shift + T + w - 1) / w;  // chunks
    const int64_t pad_back = C * w - shift - T;
    auto dev = q.device();
    // Pad to C whole chunks: `shift` positions in front (end-aligned tk), the rest behind.
    auto pad = [&](const torch::Tensor& x) {
        auto f = x.to(torch::kFloat32);
        if (shift == 0 && pad_back == 0) return f.view({B, H, C, w, x.size(3)});
        return torch::constant_pad_nd(f, {0, 0, shift, pad_back}).view({B, H, C, w, x.size(3)});
    };
    const double scale = 1.0 / std::sqrt(double(d));
    auto Q = pad(q) * scale, K = pad(k), V = pad(v), FQ = pad(f_q), FK = pad(f_k);  // (B,H,C,w,*)
    // Chunk c-1's x at chunk c, zeros at c = 0.
    auto previous = [&](const torch::Tensor& x) {
        return torch::constant_pad_nd(x, {0, 0, 0, 0, 1, 0}).narrow(2, 0, C);
    };
    // Keys of chunk c-1 then chunk c: (B, H, C, 2w, *). `fill`: one buffer filled directly (two
    // copies instead of three), for tensors that carry no graph.
    auto with_prev = [&](const torch::Tensor& x, bool fill) {
        if (fill) {
            auto sizes = x.sizes().vec();
            sizes[3] = 2 * w;
            auto out = torch::empty(sizes, x.options());
            out.narrow(3, w, w).copy_(x);
            out.narrow(3, 0, w).select(2, 0).zero_();
            if (C > 1) out.narrow(3, 0, w).narrow(2, 1, C - 1).copy_(x.narrow(2, 0, C - 1));
            return out;
        }
        return torch::cat({previous(x), x}, 3);
    };

    // Masks over (chunk, query a, key b): query position c*w + a, key position (c-1)*w + b.
    auto a_idx = torch::arange(w, torch::kLong).view({1, w, 1});
    auto b_idx = torch::arange(2 * w, torch::kLong).view({1, 1, 2 * w});
    auto c_idx = torch::arange(C, torch::kLong).view({C, 1, 1});
    auto qpos = c_idx * w + a_idx, kpos = (c_idx - 1) * w + b_idx;  // padded positions
    auto key_valid = (kpos >= shift) & (kpos < shift + T);
    auto causal = (kpos <= qpos) & key_valid;
    torch::Tensor win;
    if (window.kind == WindowKind::Terraced) {
        win = causal;  // chunks c-1 and c are exactly i's block and the one before
    } else {
        win = causal & (qpos - kpos < w);
    }
    auto lin_local = causal & win.logical_not();  // sw: keys of chunk c-1 left of the window
    // An additive 0 / -inf bias: a broadcast add is several times faster than masked_fill_.
    auto bias = torch::zeros({C, w, 2 * w}).masked_fill_(win.logical_not(), -INFINITY).to(dev);
    auto g = gamma.to(torch::kFloat32).view({1, H, 1, 1, 1}), l = lambda.to(torch::kFloat32).view({1, H, 1, 1, 1});

    if (!inference || gated) {
        // Training (and every gated call). Values get a column of ones, so each matmul against them yields the
        // numerator (sum a v) and the denominator (sum a) at once. The window part carries a
        // graph only when q, k or v do (stage 2); in attention transfer they are detached and it
        // is a constant, computed without one and in place.
        const bool window_grad =
            torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
        auto V1 = torch::cat({V, torch::ones({B, H, C, w, 1}, V.options())}, -1);  // (B,H,C,w,d+1)
        torch::Tensor acc, V2;
        {
            std::optional<torch::NoGradGuard> no_graph;
            if (!window_grad) no_graph.emplace();
            auto K2 = with_prev(K, !window_grad);
            V2 = with_prev(V1, !window_grad);
            auto s_win = batched_matmul(Q, K2.transpose(-1, -2)).add_(bias);  // (B,H,C,w,2w)
            auto m = s_win.amax(-1, true);
            m = m.masked_fill(torch::isinf(m), 0);  // padding rows: an empty window
            auto a = window_grad ? (s_win - m).exp_() : s_win.sub_(m).exp_();
            acc = batched_matmul(a, V2);  // (B,H,C,w,d+1)
        }
        acc = g * acc;
        if (gated) {
            // Log rates in chunks: Gl inclusive within each chunk, Gt a chunk's total. From key j
            // of chunk m to query i of chunk c the decay is exp(Gl_c[i] + Gt_{c-1} + ... - Gl_m[j]),
            // split at chunk ends so every factor is exp of something <= 0.
            auto Gl = pad(log_gate).cumsum(3);      // (B,H,C,w,Fg), padding: rate 0
            auto Gt = Gl.narrow(3, w - 1, 1);       // (B,H,C,1,Fg)
            auto fk_to_end = FK * (Gt - Gl).exp();  // key j decayed to its chunk's end
            if (window.kind == WindowKind::Sliding) {
                // Keys of chunk c-1 left of the window: exp(Gl_c[i]) * exp(Gt_{c-1} - Gl_{c-1}[j]).
                auto fq_to_end = FQ * Gl.exp();
                auto fk_prev = previous(fk_to_end);
                auto b_ln = l * batched_matmul(fq_to_end, fk_prev.transpose(-1, -2))
                                    .masked_fill_(lin_local.narrow(2, 0, w).logical_not().to(dev), 0);
                acc = acc + batched_matmul(b_ln, previous(V1));
            }
            if (C > 2) {
                // States at chunk ends: S_m = exp(Gt_m) S_{m-1} + sum_{j in m} exp(Gt_m - Gl_m[j]) fk_j v_j.
                auto local = batched_matmul(fk_to_end.transpose(-1, -2), V1);  // (B,H,C,F,d+1)
                auto carry = Gt.squeeze(3).exp().unsqueeze(-1);                // (B,H,C,Fg,1)
                std::vector<torch::Tensor> states = {local.select(2, 0)};
                for (int64_t m = 1; m < C - 2; ++m)
                    states.push_back(carry.select(2, m) * states.back() + local.select(2, m));
                // Chunk c reads S_{c-2}: decay exp(Gt_{c-1} + Gl_c[i]) from its end to query i.
                auto fq_decayed = (FQ * (Gl + previous(Gt)).exp()).narrow(2, 2, C - 2);
                auto lin = l * batched_matmul(fq_decayed, torch::stack(states, 2));
                acc = acc + torch::constant_pad_nd(lin, {0, 0, 0, 0, 2, 0});
            }
        } else if (window.kind == WindowKind::Sliding) {
            auto b_ln = l * batched_matmul(FQ, with_prev(FK, false).transpose(-1, -2))
                                .masked_fill_(lin_local.logical_not().to(dev), 0);
            acc = acc + batched_matmul(b_ln, V2);
        }
        if (!gated && C > 2) {
            // Inclusive cumulative states over chunks, read two chunks late (O(n F d) memory).
            auto kv = batched_matmul(FK.transpose(-1, -2), V1).cumsum(2);  // (B,H,C,F,d+1)
            auto lin = l * batched_matmul(FQ.narrow(2, 2, C - 2), kv.narrow(2, 0, C - 2));
            acc = acc + torch::constant_pad_nd(lin, {0, 0, 0, 0, 2, 0});  // chunks 0, 1: no state yet
        }
        auto num = acc.narrow(-1, 0, d);
        auto den = acc.narrow(-1, d, 1);
        den = den.masked_fill(den == 0, 1);  // only padding rows have nothing to attend to
        auto y = (num / den).reshape({B, H, C * w, d}).narrow(2, shift, T);
        return y.to(q.scalar_type());
    }

    // Inference: in place wherever it saves a pass.
    auto K2 = with_prev(K, true), V2 = with_prev(V, true);
    auto s_win = batched_matmul(Q, K2.transpose(-1, -2)).add_(bias);  // (B,H,C,w,2w)
    // Padding rows (before an end-aligned sequence) have an empty window: use max 0 there.
    auto m = s_win.amax(-1, true);
    m = m.masked_fill(torch::isinf(m), 0);
    // Masked entries are exp(-inf) = 0.
    auto a = s_win.sub_(m).exp_();
    auto num = batched_matmul(a, V2);  // (B,H,C,w,d); gamma applied after the reduction
    auto den = a.sum(-1, true);        // (B,H,C,w,1)
    num.mul_(g);
    den.mul_(g);
    if (window.kind == WindowKind::Sliding) {
        auto b_ln =
            l *
            batched_matmul(FQ, with_prev(FK, true).transpose(-1, -2)).masked_fill_(lin_local.logical_not().to(dev), 0);
        num = num + batched_matmul(b_ln, V2);
        den = den + b_ln.sum(-1, true);
    }

    // Linear state of chunks <= c-2: one running (F x d) state per head, updated chunk by chunk, in place.
    if (C > 2) {
        auto S = torch::zeros({B, H, FQ.size(4), d}, Q.options());
        auto z = torch::zeros({B, H, FQ.size(4), 1}, Q.options());
        auto l4 = l.squeeze(2);  // (1, H, 1, 1)
        for (int64_t c = 2; c < C; ++c) {
            auto fk = FK.select(2, c - 2), vv = V.select(2, c - 2);  // (B,H,w,*)
            S.add_(batched_matmul(fk.transpose(-1, -2), vv));
            z.add_(fk.sum(2).unsqueeze(-1));
            auto fq = FQ.select(2, c);
            num.select(2, c).add_(l4 * batched_matmul(fq, S));
            den.select(2, c).add_(l4 * batched_matmul(fq, z));
        }
    }
    den = den.masked_fill(den == 0, 1);  // only padding rows have nothing to attend to
    auto y = (num / den).view({B, H, C * w, d}).narrow(2, shift, T);
    return y.to(q.scalar_type());
}

// ---- recurrent state ----

int64_t HybridState::bytes() const {
    int64_t n = 0;
    for (auto* t : {&S_, &z_, &ring_k_, &ring_v_, &ring_f_, &ring_decay_, &ring_pos_})
        if (t->defined()) n += t->numel() * t->element_size();
    return n;
}

void HybridState::allocate(const torch::Tensor& k, const torch::Tensor& f_k, const torch::Tensor& log_gate) {
    const int64_t B = k.size(0), H = k.size(1), d = k.size(3), F = f_k.size(3), cap = capacity();
    auto o = torch::TensorOptions().dtype(torch::kFloat32).device(k.device());
    S_ = torch::zeros({B, H, F, d}, o);
    z_ = torch::zeros({B, H, F}, o);
    ring_k_ = torch::zeros({B, H, cap, d}, o);
    ring_v_ = torch::zeros({B, H, cap, d}, o);
    ring_f_ = torch::zeros({B, H, cap, F}, o);
    if (log_gate.defined()) ring_decay_ = torch::ones({B, H, cap, log_gate.size(3)}, o);
    ring_pos_ = torch::full({cap}, -1, torch::TensorOptions().dtype(torch::kLong).device(k.device()));
}

torch::Tensor HybridState::step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& f_q, const torch::Tensor& f_k, const torch::Tensor& gamma,
                                const torch::Tensor& lambda, const torch::Tensor& log_gate) {
    if (q.size(2) != 1) fail("hybrid decode: step takes one token, got ", q.size(2));
    if (!S_.defined()) allocate(k, f_k, log_gate);
    const bool gated = log_gate.defined();
    if (gated != ring_decay_.defined())
        fail("hybrid decode: a gated state needs log_gate on every step, an ungated one none");
    const int64_t H = q.size(1), d = q.size(3), cap = capacity(), p = length_, slot = p % cap;
    const bool needs_grad = torch::GradMode::is_enabled() &&
                            (q.requires_grad() || k.requires_grad() || v.requires_grad() || gamma.requires_grad());
    std::optional<KernelBackend> backend = kernel_;
    if (!backend && !gated && q.is_cuda() && !needs_grad && hybrid_kernel_applies(q, f_q, window_, false))
        backend = KernelBackend::Cuda;
    if (backend && gated) fail("hybrid decode: the fused decode kernel has no gate");
    if (backend) {
        auto y = hybrid_decode_kernel(q, k, v, f_q, f_k, gamma, lambda, S_, z_, ring_k_, ring_v_, ring_f_, window_, cap,
                                      p, *backend);
        ring_pos_[slot] = p;
        ++length_;
        return y;
    }
    if (decodes_with_cpu_loops(q, k, v, gamma) && f_q.scalar_type() == torch::kFloat32 &&
        f_k.scalar_type() == torch::kFloat32)
        return step_cpu_loops(q, k, v, f_q, f_k, gamma, lambda, {}, {}, log_gate);
    if (gated) {
        // Everything held decays by this token's rate before it joins (its own weight is 1).
        auto rate = log_gate.to(torch::kFloat32).exp();  // (B,H,1,Fg)
        S_.mul_(rate.transpose(-1, -2));
        z_.mul_(rate.squeeze(2));
        ring_decay_.mul_(rate);
    }
    // The token that last used this slot leaves the buffer: fold it into the linear state.
    if (p >= cap) {
        auto fk_old = ring_f_.narrow(2, slot, 1), v_old = ring_v_.narrow(2, slot, 1);  // (B,H,1,*)
        if (gated) fk_old = fk_old * ring_decay_.narrow(2, slot, 1);
        S_.add_(torch::matmul(fk_old.transpose(-1, -2), v_old));
        z_.add_(fk_old.squeeze(2));
    }
    ring_k_.narrow(2, slot, 1).copy_(k);
    ring_v_.narrow(2, slot, 1).copy_(v);
    ring_f_.narrow(2, slot, 1).copy_(f_k);
    if (gated) ring_decay_.narrow(2, slot, 1).fill_(1);
    if (ring_pos_.is_cpu())
        ring_pos_.data_ptr<int64_t>()[slot] = p;  // no indexing op for one number
    else
        ring_pos_[slot] = p;

    auto qf = q.to(torch::kFloat32), fq = f_q.to(torch::kFloat32);
    auto g = gamma.to(torch::kFloat32).view({1, H, 1, 1}), l = lambda.to(torch::kFloat32).view({1, H, 1, 1});
    ++length_;
    // Which buffered tokens are in W(p); the rest of the buffer is linear.
    auto valid = ring_pos_ >= 0;
    torch::Tensor win;
    if (window_.kind == WindowKind::Sliding) {
        win = valid & (p - ring_pos_ < window_.size);
    } else {
        win = valid & (ring_pos_.div(window_.size, "floor") >= p / window_.size - 1);
    }
    auto lin = valid & win.logical_not();
    auto s = torch::matmul(qf, ring_k_.transpose(-1, -2)) / std::sqrt(double(d));  // (B,H,1,cap)
    auto s_win = s.masked_fill(win.logical_not(), -INFINITY);
    auto a = g * torch::exp(s_win - s_win.amax(-1, true)) +
             l * torch::matmul(fq, (gated ? ring_f_ * ring_decay_ : ring_f_).transpose(-1, -2))
                     .masked_fill(lin.logical_not(), 0);
    auto num = torch::matmul(a, ring_v_) + l * torch::matmul(fq, S_);      // (B,H,1,d)
    auto den = a.sum(-1, true) + l * torch::matmul(fq, z_.unsqueeze(-1));  // (B,H,1,1)
    return num / den;
}

// The same step as plain loops over each (row, head), as llm.c writes it: at one token the
// LibTorch form is some thirty small operations per layer, each costing more than its arithmetic
// (decode at 256 tokens of context ran slower than the softmax teacher's).
torch::Tensor HybridState::step_cpu_loops(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                          const torch::Tensor& v_in, const torch::Tensor& fq_in,
                                          const torch::Tensor& fk_in, const torch::Tensor& gamma,
                                          const torch::Tensor& lambda, const torch::Tensor& wq_in,
                                          const torch::Tensor& wk_in, const torch::Tensor& log_gate) {
    if (!S_.defined()) fail("hybrid decode: the CPU loops continue a state, they do not start one");
    const bool gated = log_gate.defined();
    if (gated != ring_decay_.defined())
        fail("hybrid decode: a gated state needs log_gate on every step, an ungated one none");
    auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    // Per (row, head): Fg rates, 1 (decay) or F (gla), the step's exp(log_gate).
    torch::Tensor rate = gated ? log_gate.to(torch::kFloat32).exp().contiguous() : torch::Tensor();
    const int64_t Fg = gated ? rate.size(3) : 0;
    const bool maps_here = wq_in.defined();  // softmax_dim features computed below from W (H, d, f)
    torch::Tensor fq, fk, wq, wk;
    if (maps_here) {
        wq = wq_in.to(torch::kFloat32).contiguous(), wk = wk_in.to(torch::kFloat32).contiguous();
    } else {
        fq = fq_in.contiguous(), fk = fk_in.contiguous();
    }
    auto g = gamma.to(torch::kFloat32).contiguous(), l = lambda.to(torch::kFloat32).contiguous();
    const int64_t B = q.size(0), H = q.size(1), d = q.size(3), cap = capacity(), p = length_, slot = p % cap,
                  w = window_.size;
    const int64_t f = maps_here ? wq.size(2) : 0, F = maps_here ? 2 * f : fq.size(3);
    const int64_t G = H / k.size(1);  // query heads per kv head: k and v are read, not repeated
    const bool sliding = window_.kind == WindowKind::Sliding;
    const float scale = float(1.0 / std::sqrt(double(d)));
    int64_t* pos = ring_pos_.data_ptr<int64_t>();
    pos[slot] = p;
    // Slot j: -1 empty, 0 linear (buffered, left of the window), 1 in W(p).
    std::vector<int8_t> kind(static_cast<size_t>(cap), -1);
    for (int64_t j = 0; j < cap; ++j) {
        if (pos[j] < 0) continue;
        const bool in_window = sliding ? p - pos[j] < w : pos[j] / w >= p / w - 1;
        kind[size_t(j)] = in_window ? 1 : 0;
    }
    auto y = torch::empty({B, H, 1, d}, q.options());
    float *S = S_.data_ptr<float>(), *z = z_.data_ptr<float>(), *rk = ring_k_.data_ptr<float>(),
          *rv = ring_v_.data_ptr<float>(), *rf = ring_f_.data_ptr<float>(), *out = y.data_ptr<float>();
    float* rd = gated ? ring_decay_.data_ptr<float>() : nullptr;  // (B,H,cap,Fg)
    const float* rate_p = gated ? rate.data_ptr<float>() : nullptr;
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>(),
                *gp = g.data_ptr<float>(), *lp = l.data_ptr<float>();
    const float* fqp = maps_here ? nullptr : fq.data_ptr<float>();
    const float* fkp = maps_here ? nullptr : fk.data_ptr<float>();
    const float* wqp = maps_here ? wq.data_ptr<float>() : nullptr;
    const float* wkp = maps_here ? wk.data_ptr<float>() : nullptr;
    // Hedgehog softmax_dim: [softmax(x W), softmax(-x W)], clamped at 1e-12 (FeatureMapImpl's).
    auto softmax_dim = [f, d](const float* x, const float* W, float* out, float* xw) {
        for (int64_t j = 0; j < f; ++j) xw[j] = 0;
        for (int64_t e = 0; e < d; ++e)
            for (int64_t j = 0; j < f; ++j) xw[j] += x[e] * W[e * f + j];
        float hi = -INFINITY, lo = INFINITY;
        for (int64_t j = 0; j < f; ++j) hi = std::max(hi, xw[j]), lo = std::min(lo, xw[j]);
        float s1 = 0, s2 = 0;
        for (int64_t j = 0; j < f; ++j) out[j] = fast_exp(xw[j] - hi), out[f + j] = fast_exp(lo - xw[j]);
        for (int64_t j = 0; j < f; ++j) s1 += out[j], s2 += out[f + j];
        for (int64_t j = 0; j < f; ++j)
            out[j] = std::max(out[j] / s1, 1e-12f), out[f + j] = std::max(out[f + j] / s2, 1e-12f);
    };
    auto body = [&](int64_t begin, int64_t end) {
        std::vector<float> a(static_cast<size_t>(cap)), fq_buf(static_cast<size_t>(F)), xw(static_cast<size_t>(f));
        for (int64_t bh = begin; bh < end; ++bh) {
            const int64_t h = bh % H, kv = (bh / H) * (H / G) + h / G;  // row b's kv head of h
            float *Sh = S + bh * F * d, *zh = z + bh * F;
            float *rkh = rk + bh * cap * d, *rvh = rv + bh * cap * d, *rfh = rf + bh * cap * F;
            float* rdh = gated ? rd + bh * cap * Fg : nullptr;
            // Gated: everything held decays by this token's rate before it joins (as step()).
            auto gate_of = [Fg](const float* g, int64_t i) { return Fg == 1 ? g[0] : g[i]; };
            if (gated) {
                const float* r = rate_p + bh * Fg;
                for (int64_t i = 0; i < F; ++i) {
                    const float a = gate_of(r, i);
                    zh[i] *= a;
                    for (int64_t e = 0; e < d; ++e) Sh[i * d + e] *= a;
                }
                for (int64_t j = 0; j < cap; ++j)
                    for (int64_t i = 0; i < Fg; ++i) rdh[j * Fg + i] *= r[i];
            }
            if (p >= cap) {  // the token that last used this slot leaves the buffer: into the state
                const float *fo = rfh + slot * F, *vo = rvh + slot * d;
                for (int64_t i = 0; i < F; ++i) {
                    const float fi = gated ? fo[i] * gate_of(rdh + slot * Fg, i) : fo[i];
                    zh[i] += fi;
                    for (int64_t e = 0; e < d; ++e) Sh[i * d + e] += fi * vo[e];
                }
            }
            if (gated)
                for (int64_t i = 0; i < Fg; ++i) rdh[slot * Fg + i] = 1;
            std::copy(kp + kv * d, kp + kv * d + d, rkh + slot * d);
            std::copy(vp + kv * d, vp + kv * d + d, rvh + slot * d);
            const float *qh = qp + bh * d, *fqh;
            if (maps_here) {
                softmax_dim(kp + kv * d, wkp + h * d * f, rfh + slot * F, xw.data());
                softmax_dim(qh, wqp + h * d * f, fq_buf.data(), xw.data());
                fqh = fq_buf.data();
            } else {
                std::copy(fkp + bh * F, fkp + bh * F + F, rfh + slot * F);
                fqh = fqp + bh * F;
            }
            float m = -INFINITY;
            for (int64_t j = 0; j < cap; ++j) {
                if (kind[size_t(j)] != 1) continue;
                a[size_t(j)] = dot_lanes(qh, rkh + j * d, d) * scale;
                m = std::max(m, a[size_t(j)]);
            }
            double den = 0;
            float* o = out + bh * d;
            std::fill(o, o + d, 0.0f);
            for (int64_t j = 0; j < cap; ++j) {
                float wt;
                if (kind[size_t(j)] == 1) {
                    wt = gp[h] * fast_exp(a[size_t(j)] - m);
                } else if (kind[size_t(j)] == 0) {
                    float dot = 0;
                    if (gated)
                        for (int64_t i = 0; i < F; ++i) dot += fqh[i] * rfh[j * F + i] * gate_of(rdh + j * Fg, i);
                    else
                        dot = dot_lanes(fqh, rfh + j * F, F);
                    wt = lp[h] * dot;
                } else {
                    continue;
                }
                den += wt;
                for (int64_t e = 0; e < d; ++e) o[e] += wt * rvh[j * d + e];
            }
            const float zdot = dot_lanes(fqh, zh, F);
            for (int64_t i = 0; i < F; ++i) {
                const float c = lp[h] * fqh[i];
                for (int64_t e = 0; e < d; ++e) o[e] += c * Sh[i * d + e];
            }
            den += lp[h] * zdot;
            const float inv = float(1.0 / den);
            for (int64_t e = 0; e < d; ++e) o[e] *= inv;
        }
    };
    // One (row, head) is a few hundred thousand flops: threads only pay off for many rows.
    if (B * H >= 64)
        at::parallel_for(0, B * H, 8, body);
    else
        body(0, B * H);
    ++length_;
    return y;
}

void HybridState::absorb_prefill(const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& f_k,
                                 const torch::Tensor& log_gate) {
    if (length_ != 0) fail("hybrid decode: absorb_prefill needs an empty state");
    allocate(k, f_k, log_gate);
    const int64_t T = k.size(2), cap = capacity(), in_ring = std::min(T, cap), folded = T - in_ring;
    auto kf = k.to(torch::kFloat32), vf = v.to(torch::kFloat32), ff = f_k.to(torch::kFloat32);
    torch::Tensor decay;  // (B,H,T,Fg): exp of the log rates after each token up to the last
    if (log_gate.defined()) {
        auto lg = log_gate.to(torch::kFloat32);
        decay = (lg.flip(2).cumsum(2).flip(2) - lg).exp();
        ff = ff * decay;  // S and z hold decayed features; the ring its own decay apart
    }
    if (folded > 0) {
        auto f_old = ff.narrow(2, 0, folded), v_old = vf.narrow(2, 0, folded);
        S_.copy_(torch::matmul(f_old.transpose(-1, -2), v_old));
        z_.copy_(f_old.sum(2));
    }
    for (int64_t p = folded; p < T; ++p) {
        const int64_t slot = p % cap;
        ring_k_.narrow(2, slot, 1).copy_(kf.narrow(2, p, 1));
        ring_v_.narrow(2, slot, 1).copy_(vf.narrow(2, p, 1));
        if (decay.defined()) {
            ring_f_.narrow(2, slot, 1).copy_(f_k.narrow(2, p, 1));
            ring_decay_.narrow(2, slot, 1).copy_(decay.narrow(2, p, 1));
        } else {
            ring_f_.narrow(2, slot, 1).copy_(ff.narrow(2, p, 1));
        }
        ring_pos_[slot] = p;
    }
    length_ = T;
}

// ---- the attention core ----

HybridAttentionImpl::HybridAttentionImpl(const HybridOptions& o) : options_(o) {
    check_window(o.window());
    if (o.feature_dim() <= 0) fail("hybrid attention: feature dim must be positive, got ", o.feature_dim());
    auto fm = FeatureMapOptions(o.heads(), o.head_dim())
                  .feature_dim(o.feature_dim())
                  .kind(o.feature_map())
                  .identity_init(o.identity_init());
    feature_map_q = register_module("feature_map_q", FeatureMap(fm));
    feature_map_k = register_module("feature_map_k", FeatureMap(fm));
    window_factors = register_parameter("window_factors", torch::full({o.heads()}, o.init_gamma_logit()));
    const int64_t H = o.heads(), d = o.head_dim(), F = feature_map_k->output_dim();
    if (o.gate() == GateKind::Decay) {
        // Rates spread over heads as RetNet's: 1 - a_h from 1/32 to 1/2048, some heads local, some long.
        auto rate = torch::logspace(-5, -11, H, 2.0);  // ~ -log a_h
        decay_rate_log = register_parameter("decay_rate_log", rate.log());
    } else if (o.gate() == GateKind::Gla) {
        if (o.gate_rank() <= 0) fail("hybrid attention: gla gate rank must be positive, got ", o.gate_rank());
        // up = 0: every a_t starts at the bias's rate, sigmoid(3)^(1/16) ~ 0.997, and learns
        // its dependence on the key.
        gate_down = register_parameter("gate_down", torch::randn({H, d, o.gate_rank()}) / std::sqrt(double(d)));
        gate_up = register_parameter("gate_up", torch::zeros({H, o.gate_rank(), F}));
        gate_bias = register_parameter("gate_bias", torch::full({H, F}, 3.0));
    }
}

torch::Tensor HybridAttentionImpl::log_gate(const torch::Tensor& k) const {
    switch (options_.gate()) {
        case GateKind::None:
            return {};
        case GateKind::Decay: {
            auto log_rate = -decay_rate_log.exp().view({1, -1, 1, 1});
            return log_rate.expand({k.size(0), k.size(1), k.size(2), 1});
        }
        case GateKind::Gla: {
            auto x = torch::matmul(torch::matmul(k.to(torch::kFloat32), gate_down.unsqueeze(0)), gate_up.unsqueeze(0));
            return torch::log_sigmoid(x + gate_bias.view({1, gate_bias.size(0), 1, -1})) / 16.0;
        }
    }
    return {};
}

torch::Tensor HybridAttentionImpl::gamma() const {
    return torch::sigmoid(window_factors);
}
torch::Tensor HybridAttentionImpl::lambda() const {
    return options_.affine() ? 1 - torch::sigmoid(window_factors) : torch::ones_like(window_factors);
}

torch::Tensor HybridAttentionImpl::repeat_kv(const torch::Tensor& x) const {
    const int64_t rep = options_.heads() / x.size(1);
    if (x.size(1) * rep != options_.heads())
        fail("hybrid attention: ", x.size(1), " kv heads do not divide ", options_.heads(), " heads");
    return rep == 1 ? x : x.repeat_interleave(rep, 1);
}

std::unique_ptr<AttentionState> HybridAttentionImpl::new_state() const {
    WindowSpec decode = options_.window();
    decode.kind = options_.decode_window();
    decode.align = BlockAlign::Start;  // streaming cannot know where the sequence ends
    return std::make_unique<HybridState>(decode);
}

torch::Tensor HybridAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k_in, const torch::Tensor& v_in,
                                           AttentionState* state) {
    if (q.dim() != 4 || q.size(1) != options_.heads() || q.size(3) != options_.head_dim())
        fail("hybrid attention: expected q (B, ", options_.heads(), ", T, ", options_.head_dim(), "), got ", q.sizes());
    auto g = gamma(), l = lambda();
    const bool maps_graph =
        torch::GradMode::is_enabled() && (feature_map_q->layer.requires_grad() || feature_map_k->layer.requires_grad());
    if (auto* hs = dynamic_cast<HybridState*>(state);
        hs && q.size(2) == 1 && hs->length() > 0 && options_.feature_map() == FeatureMapKind::SoftmaxDim &&
        !maps_graph && hs->decodes_with_cpu_loops(q, k_in, v_in, g) &&
        (options_.gate() != GateKind::Gla || k_in.size(1) == options_.heads())) {
        // One decode token: feature maps, GQA and the step in one pass of plain loops (gla's
        // rates come from the key of each query head, so only without GQA).
        // decay's rates depend on the head only: q's shape gives one per query head.
        auto lg = options_.gate() == GateKind::Decay ? log_gate(q) : log_gate(k_in);
        return hs->step_cpu_loops(q, k_in, v_in, {}, {}, g, l, feature_map_q->layer, feature_map_k->layer, lg);
    }
    auto k = repeat_kv(k_in), v = repeat_kv(v_in);
    auto f_q = feature_map_q(q), f_k = feature_map_k(k);
    auto lg = log_gate(k);
    if (!state) {
        return options_.quadratic_prefill()
                   ? hybrid_attention_quadratic(q, k, v, f_q, f_k, g, l, options_.window(), nullptr, lg)
                   : hybrid_attention_chunked(q, k, v, f_q, f_k, g, l, options_.window(), lg);
    }
    auto* hs = dynamic_cast<HybridState*>(state);
    if (!hs) fail("hybrid attention: given a state that is not a hybrid state");
    const int64_t T = q.size(2);
    if (hs->length() == 0 && T > 1) {
        // Prefill from scratch with the decode window's rule, then load the state.
        auto y = hybrid_attention_chunked(q, k, v, f_q, f_k, g, l, hs->window(), lg);
        hs->absorb_prefill(k, v, f_k, lg);
        return y;
    }
    std::vector<torch::Tensor> outs;
    for (int64_t t = 0; t < T; ++t) {
        auto sl = [&](const torch::Tensor& x) { return x.defined() ? x.narrow(2, t, 1) : x; };
        outs.push_back(hs->step(sl(q), sl(k), sl(v), sl(f_q), sl(f_k), g, l, sl(lg)));
    }
    return (T == 1 ? outs[0] : torch::cat(outs, 2)).to(q.scalar_type());
}

torch::Tensor HybridAttentionImpl::attention_weights(const torch::Tensor& q, const torch::Tensor& k_in) {
    torch::NoGradGuard ng;
    return attention_weights_with_grad(q, k_in);
}

torch::Tensor HybridAttentionImpl::attention_weights_with_grad(const torch::Tensor& q, const torch::Tensor& k_in) {
    auto k = repeat_kv(k_in);
    torch::Tensor w;
    hybrid_attention_quadratic(q, k, k, feature_map_q(q), feature_map_k(k), gamma(), lambda(), options_.window(), &w,
                               log_gate(k));
    return w;
}

}  // namespace lincat
