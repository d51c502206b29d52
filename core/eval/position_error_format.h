// What `lincat position-error` measures, as plain data (no torch): the figures by query position
// and head, their JSON form (the CLI's output and cache, the studio's input) and the window means.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

// The mean of one layer's per-position figures inside the window (linear_keys == 0) and beyond it
// (0 where there are no such positions).
struct WindowMeans {
    double inside = 0, beyond = 0;
};
WindowMeans window_means(const std::vector<double>& by_position, const std::vector<int64_t>& linear_keys);

std::string position_error_to_json(const PositionError& e);
// The same back (a cached result, the studio's input); label names the source in errors, which
// also catch figures that do not fit their layers and positions.
PositionError position_error_from_json(const std::string& text, const std::string& label);

}  // namespace lincat
