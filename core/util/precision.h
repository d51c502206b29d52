// The precision policy (issue 17), in one place. The base model computes in the compute dtype
// (util/compute.h: bf16 on a GPU, fp32 on a CPU unless --dtype bf16); around it:
//  - every trainable tensor (feature maps, gamma / lambda, LoRA A and B) is an fp32 master on
//    the model's device, whatever the base dtype: a bf16 weight near 1 moves only in steps of
//    2^-8, so AdamW updates of about lr = 1e-4 would round away;
//  - the layers cast their inputs up where they meet those masters (the hybrid attention and
//    the LoRA branch compute in fp32 and cast their result back to the input's dtype once);
//  - the student's output for stage 1's loss, the layer MSE, KD and cross-entropy are computed
//    in fp32 from fp32 intermediates;
//  - LoRA merges in fp32 and casts the merged weight to the base dtype once; `lincat export`
//    writes the base dtype and reports the rounding against the LoRA update (train/export.h).
// Inference-only loads (train/linearized_model.h) cast everything to the compute dtype.
// Tested in tests/train/test_precision.cpp, in bf16 on the CPU.
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

constexpr torch::Dtype kMasterDtype = torch::kFloat32;

}  // namespace lincat
