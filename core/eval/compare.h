// Teacher vs linearized student on the same held-out rows: perplexity of each, next-token
// top-1 agreement, KL(teacher || student) per token, and per-layer attention-output MSE.
#pragma once

#include <vector>

#include "model/llama.h"

namespace lincat {

struct ModelComparison {
    double teacher_ppl = 0, student_ppl = 0;
    double top1_agreement = 0;  // fraction of positions where both argmax agree
    double kl = 0;              // mean over positions of KL(teacher || student), nats
    std::vector<int64_t> layers;
    std::vector<double> layer_mse;  // per linearized layer: hybrid vs softmax output on the student's q, k, v
    int64_t tokens = 0;             // positions scored
};

// rows (N, T) int64. The student's hybrid cores are wrapped for the layer MSE and restored.
ModelComparison compare_models(LlamaModel& teacher, LlamaModel& student, const torch::Tensor& rows, int64_t batch = 8);

}  // namespace lincat
