// nn::Linear and nn::Embedding with the same parameter names ("weight", "bias") but without
// their random initialisation: every parameter of a loaded model is overwritten by the
// loader, and initialising 8B parameters first would cost minutes and their full RSS.
// Parameters start as torch::empty (address space only, no resident pages).
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

struct LinearImpl : torch::nn::Module {
    LinearImpl(int64_t in_features, int64_t out_features, bool bias);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;  // weight (out, in); bias (out) or undefined
};
TORCH_MODULE(Linear);

struct EmbeddingImpl : torch::nn::Module {
    EmbeddingImpl(int64_t count, int64_t dim);
    torch::Tensor forward(const torch::Tensor& ids);
    torch::Tensor weight;  // (count, dim)
};
TORCH_MODULE(Embedding);

}  // namespace lincat
