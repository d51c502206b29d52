// Softmax attention of a few query rows (decode, short prefills) over a KV cache on the CPU.
// LibTorch 1.13's CPU bmm runs one matmul per batch item when the items are not tiny, so a
// decode step of 256 rows x 6 heads paid ~18k matmul dispatches per step; this loop reads each
// cached key and value once per (row, kv head) with no dispatch in between. The matmul path in
// softmax.cpp stays the reference it is tested against (tests/attention/test_softmax.cpp).
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

// Most query rows per (batch row, kv head) the loop takes: beyond it a matmul reuses each key
// across enough rows to win. softmax_attention also uses the loop only within its score budget
// and where every query sees its own key.
constexpr int64_t kDecodeLoopMaxRows = 16;

// True when softmax_decode_attention serves these inputs: CPU, fp32 or bf16 (k and v alike), unit stride in the head
// dim, no graph to record, at most kDecodeLoopMaxRows query rows per kv head.
bool softmax_decode_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// q (B, Hkv, G, T, D) grouped by kv head, at positions [q_start, q_start + T); k, v (B, Hkv, S, D)
// (any strides with unit stride in D, e.g. a KV cache's narrowed view). Causal, with an optional
// sliding window (0 = none). fp32 accumulation over a cache read in its own dtype; returns
// (B, Hkv, G, T, D) in q's dtype.
torch::Tensor softmax_decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       int64_t q_start, int64_t sliding_window);

}  // namespace lincat
