// Where the hybrid loses: for each linearized layer, the attention-output MSE of the student's
// hybrid attention against softmax on the same q, k, v, as a function of query position, and
// per head. Inside the softmax window the two are the same softmax (MSE ~ 0); the error appears
// where the linear part takes over, which `linear_keys` and `window_edge` locate.
#pragma once

#include <string>
#include <vector>

#include "model/llama.h"

namespace lincat {

struct PositionError {
    std::vector<int64_t> layers;                 // the hybrid layers measured
    int64_t rows = 0, positions = 0, heads = 0;  // rows scored, T, query heads
    int64_t window = 0;                          // of the first hybrid layer
    std::string variant;                         // "tk" or "sw"
    std::vector<std::vector<double>> mse;        // [layer][position]: mean over rows, heads and dims
    std::vector<std::vector<double>> head_mse;   // [layer][head]: mean over rows, positions and dims
    std::vector<double> layer_mse;               // [layer]: mean over everything (= eval's layer MSE)
    std::vector<int64_t> linear_keys;            // [position]: keys the linear part covers (0 inside the window)
    int64_t window_edge = -1;                    // first position with linear keys; -1 when the window covers all
    // Mean over layers and positions inside the window (linear_keys == 0) and beyond it.
    double inside_mse = 0, beyond_mse = 0;
};

// rows (N, T) int64. The student's hybrid cores are wrapped while it runs (softmax outputs go
// downstream, as in attention transfer and eval's layer MSE) and restored after, also on an error.
// A model without hybrid layers is refused.
PositionError position_error(LlamaModel& student, const torch::Tensor& rows, int64_t batch = 4);

std::string position_error_to_json(const PositionError& e);
// The same back (a cached result); label names the source in errors.
PositionError position_error_from_json(const std::string& text, const std::string& label);

}  // namespace lincat
