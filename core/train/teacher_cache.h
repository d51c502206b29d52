// Stage 1 reads every training row once per epoch, and the frozen teacher gives a row the same
// q, k, v and softmax output each time. The cache keeps them from the row's first forward, so
// later epochs (and every held-out evaluation after the first) run only the students: the
// teacher's projections, MLPs and softmax are most of a stage-1 step's work.
// All or nothing: it is used only when every row fits in its budget (a partly cached dataset
// would rarely give a fully cached batch), and only where the layers can replay
// (TransferAttentionImpl::replayable).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/transfer.h"
#include "model/config.h"

namespace lincat {

// Bytes of one row's activations over `layers` layers (q and the teacher output per query
// head, k and v per kv head), in the model's dtype.
int64_t teacher_cache_row_bytes(const ModelConfig& c, int64_t seq_len, int64_t layers, int64_t element_bytes);

class TeacherCache {
  public:
    TeacherCache(int64_t rows, int64_t layers) : rows_(size_t(rows)), layers_(layers) {}
    // True when every row of `rows` (int64 ids) has been stored.
    bool has(const torch::Tensor& rows) const;
    // Keeps row i of each layer's batch activations under rows[i] (copies; the batch may go).
    void store(const torch::Tensor& rows, const std::vector<TeacherActivations>& per_layer);
    // One layer's activations for a batch of stored rows, in the order of `rows`.
    TeacherActivations batch(const torch::Tensor& rows, int64_t layer) const;
    int64_t bytes() const { return bytes_; }

  private:
    std::vector<std::vector<TeacherActivations>> rows_;  // [row][layer], each with batch size 1
    int64_t layers_;
    int64_t bytes_ = 0;
};

// The cache a stage-1 run gets, or none with the reason in `why`: every row of `rows` must fit
// in budget_bytes and every layer must be replayable.
struct TeacherCachePlan {
    bool use = false;
    int64_t bytes = 0;
    std::string why;  // one line for the log either way
};
TeacherCachePlan plan_teacher_cache(const ModelConfig& c, const TransferLayers& layers, int64_t rows, int64_t seq_len,
                                    int64_t element_bytes, int64_t budget_bytes);

}  // namespace lincat
