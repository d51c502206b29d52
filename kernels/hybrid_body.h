// The kernel bodies, compiled twice: by nvcc inside __global__ wrappers (hybrid_attention.cu)
// and by the host compiler for the emulation the CPU tests run (hybrid_emulate.cpp).
// Each body is a sequence of phases separated by LINCAT_SYNC(); inside a phase every thread
// takes work items tid, tid + nthreads, ... that write disjoint outputs and read only what an
// earlier phase finished. With one thread per block (the emulation) a barrier is a no-op, so
// the host run checks the indexing and the math; the phase rule is what keeps the GPU run
// race-free. No warp shuffles, for the same reason.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "hybrid_attention.h"

#if defined(__CUDACC__)
#define LINCAT_HD __host__ __device__ __forceinline__
#else
#define LINCAT_HD inline
#endif
#if defined(__CUDA_ARCH__)
#define LINCAT_SYNC() __syncthreads()
#else
#define LINCAT_SYNC() ((void)0)
#endif

namespace lincat::kernels::body {

struct Ctx {
    int64_t bx = 0, by = 0;  // block index (x: chunk or tile, y: batch row x head)
    int tid = 0, nthreads = 1;
};

LINCAT_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, 4);
    return f;
#endif
}
LINCAT_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
#endif
}
LINCAT_HD float bf16_bits_to_float(uint16_t b) {
    return bits_to_float(uint32_t(b) << 16);
}
LINCAT_HD uint16_t float_to_bf16_bits(float f) {
    uint32_t u = float_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN stays a quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                          // round to nearest even
    return uint16_t(u >> 16);
}

LINCAT_HD float load(const void* p, int64_t i, DType t) {
    return t == DType::F32 ? static_cast<const float*>(p)[i] : bf16_bits_to_float(static_cast<const uint16_t*>(p)[i]);
}
LINCAT_HD void store(void* p, int64_t i, float x, DType t) {
    if (t == DType::F32)
        static_cast<float*>(p)[i] = x;
    else
        static_cast<uint16_t*>(p)[i] = float_to_bf16_bits(x);
}

// Element (i, k) of a matrix in shared memory is p[i * si + k * sk]: one type for plain and
// transposed operands.
struct View {
    const float* p;
    int64_t si, sk;
};

// C (M x N, row stride ldc) = or += A (M x K) B (K x N), split over the block's threads in
// 4 x 4 register tiles (8 shared loads per 16 FMAs). A tile takes rows i0..i0+3 and the
// columns j, j + tn, j + 2 tn, j + 3 tn: neighbouring threads read neighbouring columns of B
// (no shared-memory bank conflicts where B's columns are contiguous) and share A's rows (a
// broadcast).
LINCAT_HD void block_matmul(const Ctx& ctx, int M, int N, int K, View A, View B, float* C, int ldc, bool accumulate) {
    const int tm = (M + 3) / 4, tn = (N + 3) / 4;
    for (int item = ctx.tid; item < tm * tn; item += ctx.nthreads) {
        const int i0 = (item / tn) * 4, j = item % tn;
        float acc[4][4] = {};
        for (int k = 0; k < K; ++k) {
            float a[4], b[4];
            for (int r = 0; r < 4; ++r) a[r] = i0 + r < M ? A.p[(i0 + r) * A.si + k * A.sk] : 0.0f;
            for (int c = 0; c < 4; ++c) b[c] = j + c * tn < N ? B.p[k * B.si + (j + c * tn) * B.sk] : 0.0f;
            for (int r = 0; r < 4; ++r)
                for (int c = 0; c < 4; ++c) acc[r][c] += a[r] * b[c];
        }
        for (int r = 0; r < 4 && i0 + r < M; ++r)
            for (int c = 0; c < 4 && j + c * tn < N; ++c) {
                float* out = C + (i0 + r) * ldc + j + c * tn;
                *out = accumulate ? *out + acc[r][c] : acc[r][c];
            }
    }
}

// Rows [r0, r0 + rows) of a (B*H, T, n) tensor starting at padded position P0 into shared
// memory (rows x n fp32), zeros where the padded position holds no token.
LINCAT_HD void load_rows(const Ctx& ctx, const void* src, DType t, int64_t bh, int64_t T, int64_t n, int64_t P0,
                         int64_t shift, int rows, float* dst, float scale) {
    for (int64_t i = ctx.tid; i < rows * n; i += ctx.nthreads) {
        const int64_t r = i / n, e = i % n, pos = P0 + r - shift;
        dst[i] = (pos >= 0 && pos < T) ? scale * load(src, (bh * T + pos) * n + e, t) : 0.0f;
    }
}

// The same rows transposed: dst[e * (rows + 1) + r]. Neighbouring threads take neighbouring
// rows of one column; the +1 pad keeps their shared-memory stores in different banks.
LINCAT_HD void load_rows_transposed(const Ctx& ctx, const void* src, DType t, int64_t bh, int64_t T, int64_t n,
                                    int64_t P0, int64_t shift, int rows, float* dst) {
    for (int64_t i = ctx.tid; i < rows * n; i += ctx.nthreads) {
        const int64_t r = i % rows, e = i / rows, pos = P0 + r - shift;
        dst[e * (rows + 1) + r] = (pos >= 0 && pos < T) ? load(src, (bh * T + pos) * n + e, t) : 0.0f;
    }
}

// ---- prefill ----

LINCAT_HD int64_t chunk_count(const PrefillArgs& a) {
    return (a.shift + a.T + a.window - 1) / a.window;
}
LINCAT_HD int64_t state_floats(const PrefillArgs& a) {
    return a.F * a.d + a.F;
}

// Kernel 1, block (c, bh): S_c = FK_c^T V_c (F x d) and z_c = column sums of FK_c.
// Shared: FK_c (w x F), V_c (w x d).
LINCAT_HD int64_t chunk_state_smem_floats(const PrefillArgs& a) {
    return a.window * (a.F + a.d);
}
LINCAT_HD void chunk_state(const Ctx& ctx, const PrefillArgs& a, float* states, float* smem) {
    const int64_t c = ctx.bx, bh = ctx.by, w = a.window, F = a.F, d = a.d;
    float* fk = smem;
    float* vv = smem + w * F;
    load_rows(ctx, a.fk, a.dtype, bh, a.T, F, c * w, a.shift, int(w), fk, 1.0f);
    load_rows(ctx, a.v, a.dtype, bh, a.T, d, c * w, a.shift, int(w), vv, 1.0f);
    LINCAT_SYNC();
    float* out = states + (bh * chunk_count(a) + c) * state_floats(a);
    block_matmul(ctx, int(F), int(d), int(w), View{fk, 1, F}, View{vv, d, 1}, out, int(d), false);
    for (int64_t f = ctx.tid; f < F; f += ctx.nthreads) {
        float s = 0.0f;
        for (int64_t j = 0; j < w; ++j) s += fk[j * F + f];
        out[F * d + f] = s;
    }
}

// Kernel 2, block (tile, bh): chunk c's slot becomes the sum of chunks <= c-2 (what the
// linear part of chunk c attends to), each thread running down the chunks for its elements.
constexpr int64_t kScanTile = 256;
LINCAT_HD void state_scan(const Ctx& ctx, const PrefillArgs& a, float* states) {
    const int64_t n = state_floats(a), C = chunk_count(a), bh = ctx.by;
    const int64_t begin = ctx.bx * kScanTile, end = begin + kScanTile < n ? begin + kScanTile : n;
    float* base = states + bh * C * n;
    for (int64_t e = begin + ctx.tid; e < end; e += ctx.nthreads) {
        float run = 0.0f, lag = 0.0f;  // run: sum of chunks < c; lag: sum of chunks < c-1
        for (int64_t c = 0; c < C; ++c) {
            const float x = base[c * n + e];
            base[c * n + e] = lag;
            lag = run;
            run += x;
        }
    }
}

// Which keys a query sees, in padded positions (qp: query, kp: key).
LINCAT_HD bool key_exists(const PrefillArgs& a, int64_t kp) {
    return kp >= a.shift && kp < a.shift + a.T;
}
LINCAT_HD bool in_window(const PrefillArgs& a, int64_t qp, int64_t kp) {
    if (!key_exists(a, kp) || kp > qp) return false;
    // tk: chunks c-1 and c are exactly the query's block and the one before it.
    return a.sliding ? qp - kp < a.window : true;
}
LINCAT_HD bool linear_local(const PrefillArgs& a, int64_t qp, int64_t kp) {
    return a.sliding && key_exists(a, kp) && kp <= qp && qp - kp >= a.window;
}

// Kernel 3, block (c, bh): the outputs of chunk c. Shared memory, reused across phases:
//   qs   w x D      Q / sqrt(d), later FQ_c            (D = max(d, F))
//   kvb  max((2w+1) x D, F x d)   K^T of chunks c-1, c; later FK_{c-1}, V of c-1, c, then S_c
//   sc   w x 2w     the weights a(i, j) against chunks c-1, c
//   num  w x d, den w
LINCAT_HD int64_t output_smem_floats(const PrefillArgs& a) {
    const int64_t w = a.window, D = a.d > a.F ? a.d : a.F;
    const int64_t kv = (2 * w + 1) * D > a.F * a.d ? (2 * w + 1) * D : a.F * a.d;
    return w * D + kv + 2 * w * w + w * a.d + w;
}
LINCAT_HD void chunk_output(const Ctx& ctx, const PrefillArgs& a, const float* states, float* smem) {
    const int64_t c = ctx.bx, bh = ctx.by, h = bh % a.H, w = a.window, d = a.d, F = a.F;
    const int64_t D = d > F ? d : F, w2 = 2 * w;
    float* qs = smem;
    float* kvb = qs + w * D;
    float* sc = kvb + ((w2 + 1) * D > F * d ? (w2 + 1) * D : F * d);
    float* num = sc + w * w2;
    float* den = num + w * d;
    const float g = a.gamma[h], l = a.lambda[h];
    const int64_t q0 = c * w, k0 = (c - 1) * w;  // padded positions of the first query / key

    // 1. Scores of the chunk's queries against the keys of chunks c-1 and c.
    load_rows(ctx, a.q, a.dtype, bh, a.T, d, q0, a.shift, int(w), qs, 1.0f / sqrtf(float(d)));
    load_rows_transposed(ctx, a.k, a.dtype, bh, a.T, d, k0, a.shift, int(w2), kvb);
    LINCAT_SYNC();
    block_matmul(ctx, int(w), int(w2), int(d), View{qs, d, 1}, View{kvb, w2 + 1, 1}, sc, int(w2), false);
    LINCAT_SYNC();
    // 2. Softmax part: gamma exp(s - m) inside the window, m the max over the window only.
    for (int64_t i = ctx.tid; i < w; i += ctx.nthreads) {
        float m = -INFINITY;
        for (int64_t j = 0; j < w2; ++j)
            if (in_window(a, q0 + i, k0 + j)) m = fmaxf(m, sc[i * w2 + j]);
        if (m == -INFINITY) m = 0.0f;  // padding rows: nothing in the window
        for (int64_t j = 0; j < w2; ++j)
            sc[i * w2 + j] = in_window(a, q0 + i, k0 + j) ? g * expf(sc[i * w2 + j] - m) : 0.0f;
    }
    // 3. Sliding windows: the keys of chunk c-1 left of the window are linear.
    if (a.sliding) {
        load_rows(ctx, a.fq, a.dtype, bh, a.T, F, q0, a.shift, int(w), qs, 1.0f);
        load_rows(ctx, a.fk, a.dtype, bh, a.T, F, k0, a.shift, int(w), kvb, 1.0f);
        LINCAT_SYNC();
        for (int64_t item = ctx.tid; item < w * w; item += ctx.nthreads) {
            const int64_t i = item / w, j = item % w;
            if (!linear_local(a, q0 + i, k0 + j)) continue;
            float s = 0.0f;
            for (int64_t f = 0; f < F; ++f) s += qs[i * F + f] * kvb[j * F + f];
            sc[i * w2 + j] = l * s;
        }
    }
    LINCAT_SYNC();
    // 4. Row sums, and the values of chunks c-1, c.
    for (int64_t i = ctx.tid; i < w; i += ctx.nthreads) {
        float s = 0.0f;
        for (int64_t j = 0; j < w2; ++j) s += sc[i * w2 + j];
        den[i] = s;
    }
    load_rows(ctx, a.v, a.dtype, bh, a.T, d, k0, a.shift, int(w2), kvb, 1.0f);
    LINCAT_SYNC();
    block_matmul(ctx, int(w), int(d), int(w2), View{sc, w2, 1}, View{kvb, d, 1}, num, int(d), false);
    LINCAT_SYNC();
    // 5. Linear attention to chunks <= c-2 through the scanned state.
    if (c >= 2) {
        const float* S = states + (bh * chunk_count(a) + c) * state_floats(a);
        load_rows(ctx, a.fq, a.dtype, bh, a.T, F, q0, a.shift, int(w), qs, 1.0f);
        for (int64_t i = ctx.tid; i < F * d; i += ctx.nthreads) kvb[i] = l * S[i];
        LINCAT_SYNC();
        block_matmul(ctx, int(w), int(d), int(F), View{qs, F, 1}, View{kvb, d, 1}, num, int(d), true);
        for (int64_t i = ctx.tid; i < w; i += ctx.nthreads) {
            float s = 0.0f;
            for (int64_t f = 0; f < F; ++f) s += qs[i * F + f] * S[F * d + f];
            den[i] += l * s;
        }
        LINCAT_SYNC();
    }
    // 6. Normalise and store the rows that hold tokens.
    for (int64_t item = ctx.tid; item < w * d; item += ctx.nthreads) {
        const int64_t i = item / d, e = item % d, pos = q0 + i - a.shift;
        if (pos < 0 || pos >= a.T) continue;
        const float dn = den[i] == 0.0f ? 1.0f : den[i];
        store(a.out, (bh * a.T + pos) * d + e, num[i * d + e] / dn, a.dtype);
    }
}

// ---- decode ----

// Block bh. Shared: q / sqrt(d) (d), fq (F), weights (cap), the flags (cap), den (1).
LINCAT_HD int64_t decode_smem_floats(const DecodeArgs& a) {
    return a.d + a.F + 2 * a.capacity + 2;
}
LINCAT_HD void decode_step(const Ctx& ctx, const DecodeArgs& a, float* smem) {
    const int64_t bh = ctx.by, h = bh % a.H, d = a.d, F = a.F, cap = a.capacity, p = a.position;
    const int64_t slot = p % cap;
    float* S = a.S + bh * F * d;
    float* z = a.z + bh * F;
    float* rk = a.ring_k + bh * cap * d;
    float* rv = a.ring_v + bh * cap * d;
    float* rf = a.ring_f + bh * cap * F;
    float* qs = smem;
    float* fq = qs + d;
    float* wt = fq + F;
    float* kind = wt + cap;  // 0: not attended, 1: window (softmax), 2: linear
    float* den = kind + cap;
    const float g = a.gamma[h], l = a.lambda[h];

    // 1. The token leaving the slot folds into the linear state.
    if (p >= cap) {
        for (int64_t i = ctx.tid; i < F * d; i += ctx.nthreads) S[i] += rf[slot * F + i / d] * rv[slot * d + i % d];
        for (int64_t f = ctx.tid; f < F; f += ctx.nthreads) z[f] += rf[slot * F + f];
    }
    LINCAT_SYNC();
    // 2. The new token takes the slot; q and fq to shared memory.
    const float scale = 1.0f / sqrtf(float(d));
    for (int64_t e = ctx.tid; e < d; e += ctx.nthreads) {
        rk[slot * d + e] = load(a.k, bh * d + e, a.dtype);
        rv[slot * d + e] = load(a.v, bh * d + e, a.dtype);
        qs[e] = scale * load(a.q, bh * d + e, a.dtype);
    }
    for (int64_t f = ctx.tid; f < F; f += ctx.nthreads) {
        rf[slot * F + f] = load(a.fk, bh * F + f, a.dtype);
        fq[f] = load(a.fq, bh * F + f, a.dtype);
    }
    LINCAT_SYNC();
    // 3. Scores of the buffered tokens: softmax logits in the window, linear weights outside.
    for (int64_t j = ctx.tid; j < cap; j += ctx.nthreads) {
        const int64_t pos = p - ((p - j) % cap + cap) % cap;
        const bool valid = pos >= 0;
        const bool win = valid && (a.sliding ? p - pos < a.window : pos / a.window >= p / a.window - 1);
        float s = 0.0f;
        if (win) {
            for (int64_t e = 0; e < d; ++e) s += qs[e] * rk[j * d + e];
        } else if (valid) {
            for (int64_t f = 0; f < F; ++f) s += fq[f] * rf[j * F + f];
            s *= l;
        }
        wt[j] = s;
        kind[j] = win ? 1.0f : (valid ? 2.0f : 0.0f);
    }
    LINCAT_SYNC();
    // 4. One thread: the window's max, the weights, their sum plus lambda fq.z.
    if (ctx.tid == 0) {
        float m = -INFINITY;
        for (int64_t j = 0; j < cap; ++j)
            if (kind[j] == 1.0f) m = fmaxf(m, wt[j]);
        float s = 0.0f;
        for (int64_t j = 0; j < cap; ++j) {
            if (kind[j] == 1.0f)
                wt[j] = g * expf(wt[j] - m);
            else if (kind[j] == 0.0f)
                wt[j] = 0.0f;
            s += wt[j];
        }
        float lin = 0.0f;
        for (int64_t f = 0; f < F; ++f) lin += fq[f] * z[f];
        den[0] = s + l * lin;
    }
    LINCAT_SYNC();
    // 5. One thread per output feature: weights x buffered values + lambda fq S.
    for (int64_t e = ctx.tid; e < d; e += ctx.nthreads) {
        float s = 0.0f;
        for (int64_t j = 0; j < cap; ++j) s += wt[j] * rv[j * d + e];
        float lin = 0.0f;
        for (int64_t f = 0; f < F; ++f) lin += fq[f] * S[f * d + e];
        store(a.out, bh * d + e, (s + l * lin) / den[0], a.dtype);
    }
}

}  // namespace lincat::kernels::body
