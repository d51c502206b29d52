// Rotary position embedding, Hugging Face "rotate half" convention, with Llama 3.1
// ("llama3") and linear frequency scaling.
#pragma once

#include "model/config.h"
#include "util/torch_prelude.h"

namespace lincat {

// The head_dim/2 inverse frequencies after scaling, fp64 computed, returned as fp32.
torch::Tensor rope_inv_freq(const ModelConfig& config);

class Rope {
  public:
    explicit Rope(const ModelConfig& config);
    // x is (B, H, T, D); positions start..start+T-1. Computed in fp32, returned in x's dtype.
    torch::Tensor apply(const torch::Tensor& x, int64_t start) const;

  private:
    void ensure(int64_t length) const;
    torch::Tensor inv_freq_;
    mutable torch::Tensor cos_, sin_;  // (max_len, D) caches, grown on demand
};

}  // namespace lincat
