// ReduceLROnPlateau, as PyTorch's (mode min, relative threshold 1e-4): after more than
// `patience` evaluations without improvement, the learning rate is multiplied by `factor`.
#pragma once

#include <cmath>
#include <cstdint>

namespace lincat {

struct PlateauScheduler {
    double lr = 1e-2, factor = 0.1;
    int64_t patience = 10;
    double best = INFINITY;
    int64_t bad = 0;

    // Feeds one evaluation; returns true when it is a new best.
    bool observe(double metric) {
        if (metric < best * (1 - 1e-4)) {
            best = metric;
            bad = 0;
            return true;
        }
        if (++bad > patience) {
            lr *= factor;
            bad = 0;
        }
        return false;
    }
};

}  // namespace lincat
