// The replaceable part of an attention layer: what happens between q, k, v (after RoPE)
// and the per-head outputs (before o_proj). The softmax KV cache and the hybrid linear
// state both implement AttentionState, as llama.cpp's memory interface does.
#pragma once

#include <memory>
#include <string>

#include "util/torch_prelude.h"

namespace lincat {

class AttentionState {
  public:
    virtual ~AttentionState() = default;
    virtual int64_t length() const = 0;  // tokens seen so far
    virtual int64_t bytes() const = 0;   // memory held by the state
};

class AttentionCoreImpl : public torch::nn::Module {
  public:
    // q is (B, H, T, D), k and v are (B, Hkv, T, D) with H a multiple of Hkv; returns (B, H, T, D).
    // state == nullptr: causal attention among the T tokens. Otherwise the T tokens follow the
    // state's past tokens and the state is advanced by T.
    virtual torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  AttentionState* state) = 0;
    virtual std::unique_ptr<AttentionState> new_state() const = 0;
    virtual std::string kind() const = 0;
};

// Observes one layer's attention inputs and outputs (for attention transfer and viewers).
struct AttentionTap {
    virtual ~AttentionTap() = default;
    // q (B,H,T,D) after RoPE, k/v (B,Hkv,T,D), out (B,H,T,D) before o_proj.
    virtual void on_attention(int64_t layer, const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& out) = 0;
};

}  // namespace lincat
