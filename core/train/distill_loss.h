// Stage 2's loss on the next-token distributions (DESIGN.md 1.5), mean over tokens:
//   kd_factor * KL(teacher || student) + xent_factor * cross-entropy against the targets.
#pragma once

#include "util/torch_prelude.h"

namespace lincat {

// From the hidden states (N, C) after the final norm and the frozen head (V, C), in chunks of
// rows: no (N, V) tensor is ever whole. The gradient w.r.t. student_hidden (softmax minus the
// target distribution, times the head) is computed in the same pass, as Liger's fused linear
// cross-entropy does, and handed back in backward. targets (N) int64, needed when xent_factor > 0.
// chunk_rows 0: as many rows as keep a chunk's fp32 logits near 32 MB.
torch::Tensor fused_distill_loss(const torch::Tensor& student_hidden, const torch::Tensor& teacher_hidden,
                                 const torch::Tensor& head, const torch::Tensor& targets, double kd_factor,
                                 double xent_factor, int64_t chunk_rows = 0);

// The same loss from whole (N, V) logits with LibTorch's ops: the reference the fused form is
// tested against.
torch::Tensor reference_distill_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                     const torch::Tensor& targets, double kd_factor, double xent_factor);

}  // namespace lincat
