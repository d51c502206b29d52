// Where the pipeline computes: the device (cpu, cuda, cuda:N) and the default dtype of model
// weights there (fp32 on CPU, bf16 on a GPU). One process-wide setting, chosen by the
// front ends (`--device`, `--dtype`) before any model is loaded; models load onto it and
// move their inputs to it, so the training and evaluation code stays device-agnostic.
#pragma once

#include <string>

#include "util/torch_prelude.h"

namespace lincat {

struct Compute {
    torch::Device device{torch::kCPU};
    torch::Dtype dtype = torch::kFloat32;
};

const Compute& compute();

// "cpu", "cuda" or "cuda:N", and "auto" | "fp32" | "bf16" (auto: bf16 on CUDA, fp32 on CPU).
// Fails clearly when CUDA is asked for and this LibTorch has none, or no device is present.
Compute parse_compute(const std::string& device, const std::string& dtype);
void set_compute(const Compute& c);

std::string compute_text(const Compute& c);  // "cuda:0 bf16"

// Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16). Elsewhere LibTorch
// emulates bf16 matmuls, slower than fp32 ones.
bool cpu_computes_bf16_natively();

}  // namespace lincat
