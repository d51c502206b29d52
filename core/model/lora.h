// LoRA (DESIGN.md 1.5): a trainable low-rank update beside a frozen projection,
// y = W x + (alpha / r) * B (A dropout(x)), with B zero-initialised so a fresh adapter changes
// nothing. Adapters are saved on their own (PEFT-style names); merging folds them into W.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/linear.h"
#include "model/lora_options.h"
#include "util/torch_prelude.h"

namespace lincat {

struct LoraAdapterImpl : torch::nn::Module {
    LoraAdapterImpl(int64_t in_features, int64_t out_features, int64_t rank, double alpha, double dropout);
    torch::Tensor forward(const torch::Tensor& x);  // the low-rank delta only
    torch::Tensor A, B;                             // A (r, in) Kaiming-uniform, B (out, r) zeros
    double scale, dropout;
};
TORCH_MODULE(LoraAdapter);

// base(x), plus the adapter's delta when one is attached.
torch::Tensor project(Linear& base, const LoraAdapter& lora, const torch::Tensor& x);

}  // namespace lincat
