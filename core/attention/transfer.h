// Attention transfer (DESIGN.md 1.4): a layer computes the teacher (softmax, no grad) and the
// student (hybrid) from the same q, k, v, and passes the teacher's output downstream, so every
// layer sees the original model's hidden states. The MSE of the per-head outputs is kept.
#pragma once

#include "attention/hybrid.h"
#include "model/llama.h"

namespace lincat {

// The teacher's softmax output and the student's hybrid output computed from one score matrix
// q.k^T: the student's window part is the teacher's scores under the window mask. q, k, v
// carry no grad in attention transfer, so the window part is a constant and only the linear
// part (feature maps) and gamma / lambda enter the graph. k, v (B, Hkv, T, d) are read per
// group of query heads, never repeated. Its linear part is quadratic in T (T x T x 2f): on
// this project's 2-core CPU it was slower than the chunked student at every length measured
// (64 to 1K, `lincat bench train --seq 64,128,256,512,1K`), so layers use it only when asked.
struct TransferOutputs {
    torch::Tensor teacher;  // (B, H, T, d), q's dtype, no grad
    torch::Tensor student;  // (B, H, T, d), fp32, with the student's graph
};
TransferOutputs transfer_outputs_shared_scores(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                               HybridAttentionImpl& student, int64_t sliding_window);

// What a layer's teacher gives its student: q, k, v as the student reads them and the softmax
// output it is trained towards, all without grad. The frozen teacher gives the same for a row
// every epoch (train/teacher_cache.h keeps them).
struct TeacherActivations {
    torch::Tensor q, k, v, teacher;  // (B, H, T, d), (B, Hkv, T, d) x 2, (B, H, T, d)
};

class TransferAttentionImpl : public AttentionCoreImpl {
  public:
    // xent: also compute the cross-entropy of the student's attention weights against the
    // teacher's (materialises T x T weights; LoLCATs' optional xent_factor term).
    TransferAttentionImpl(std::shared_ptr<HybridAttentionImpl> student, int64_t sliding_window, bool xent = false);
    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          AttentionState* state) override;
    std::unique_ptr<AttentionState> new_state() const override;
    std::string kind() const override { return "transfer"; }

    // The student's half of forward on recorded teacher activations: sets last_mse exactly as
    // forward would for the same q, k, v (a graph in training mode).
    void student_loss(const TeacherActivations& a);
    // Whether forward is the teacher then student_loss, so its activations can be replayed
    // (not with shared scores or the attention cross-entropy, which need the teacher's scores).
    bool replayable() const;
    // true: forward also keeps its teacher activations in last_teacher (copies, no grad).
    bool keep_teacher = false;
    TeacherActivations last_teacher;

    std::shared_ptr<HybridAttentionImpl> student;
    torch::Tensor last_mse;   // scalar, carries the student's graph when grad is enabled
    torch::Tensor last_xent;  // scalar when xent is on
    // true: transfer_outputs_shared_scores; false (default, measured faster on CPUs): the
    // softmax teacher, then the student's own chunked forward. `lincat bench train` times both.
    bool shared_scores = false;

  private:
    int64_t sliding_window_;
    bool xent_;
};

// Every hybrid layer of a model wrapped for attention transfer: the students' parameters and
// the stage-1 loss over the layers' last forward.
struct TransferLayers {
    std::vector<int64_t> layers;
    std::vector<std::shared_ptr<TransferAttentionImpl>> cores;

    std::vector<torch::Tensor> parameters() const;
    // mse_factor x mean layer MSE (+ xent_factor x mean attention cross-entropy); fills the
    // per-layer MSE of the last forward, read from the device once.
    torch::Tensor loss(double mse_factor, double xent_factor, std::vector<double>& layer_mse) const;
};
TransferLayers wrap_for_transfer(LlamaModel& model, bool xent);

// While it lives, the students of `layers` build no autograd graph (evaluations).
class TransferEvaluation {
  public:
    explicit TransferEvaluation(const TransferLayers& layers) : layers_(layers) { set(false); }
    ~TransferEvaluation() { set(true); }
    TransferEvaluation(const TransferEvaluation&) = delete;
    TransferEvaluation& operator=(const TransferEvaluation&) = delete;

  private:
    void set(bool training) {
        for (auto& c : layers_.cores) c->train(training);
    }
    const TransferLayers& layers_;
};

}  // namespace lincat
