// After stage 1, hand a few linearized layers back to softmax (issue 17): those whose return
// lowers next-token loss most. Stage 1 trains every layer against its own teacher on the
// teacher's inputs, so dropping one layer's student afterwards gives the model a run that never
// linearized that layer would have given, without a second run: one loss evaluation per layer.
// Measured on stories15M (README's ablation table): the layer with the worst attention-output
// MSE is not the one whose softmax buys most, so the choice is by the model's loss, not by MSE.
#pragma once

#include <string>
#include <vector>

#include "store/workspace.h"
#include "train/base_model.h"

namespace lincat {

// ceil(share * linearized), at most linearized - 1 (something stays linear); 0 for share 0.
int64_t softmax_layer_count(double share, int64_t linearized);

struct SoftmaxChoice {
    std::vector<int64_t> kept;               // layers handed back to softmax, ascending
    std::vector<int64_t> layers;             // the checkpoint's linearized layers that were tried
    std::vector<double> layer_nll;           // mean next-token NLL with only that layer back to softmax
    double teacher_nll = 0, linear_nll = 0;  // on the same rows: all softmax, all linearized
    std::string checkpoint;                  // the new checkpoint (kept layers' tensors left out)
};

// Where keep_best_softmax_layers writes its checkpoint inside a run's folder.
std::string softmax_choice_dir(const std::string& run_dir);

// Scores each linearized layer of `checkpoint` on `rows` (token ids, N x T) and writes
// softmax_choice_dir(run_dir): the same tensors less the `count` best layers', recorded as the
// run's best checkpoint. The base model is left as it was given. Prints one line per layer.
SoftmaxChoice keep_best_softmax_layers(Workspace& ws, int64_t run, const std::string& run_dir, int64_t step,
                                       BaseModel& base, const std::string& checkpoint, const torch::Tensor& rows,
                                       int64_t count);

}  // namespace lincat
