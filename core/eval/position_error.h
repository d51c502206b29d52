// Where the hybrid loses: for each linearized layer, the attention-output MSE of the student's
// hybrid attention against softmax on the same q, k, v, as a function of query position, and
// per head. Inside the softmax window the two are the same softmax (MSE ~ 0); the error appears
// where the linear part takes over, which `linear_keys` and `window_edge` locate.
#pragma once

#include "eval/position_error_format.h"
#include "model/llama.h"

namespace lincat {

// rows (N, T) int64. The student's hybrid cores are wrapped while it runs (softmax outputs go
// downstream, as in attention transfer and eval's layer MSE) and restored after, also on an error.
// A model without hybrid layers is refused.
PositionError position_error(LlamaModel& student, const torch::Tensor& rows, int64_t batch = 4);

}  // namespace lincat
