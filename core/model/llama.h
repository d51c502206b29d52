// A Llama-family decoder in LibTorch: embeddings, RMSNorm, RoPE, grouped-query attention
// with a replaceable core, SwiGLU, tied or untied LM head. One module serves every family
// config.h accepts: Qwen 2.5's q/k/v bias and Qwen 3's per-head q/k RMSNorm are config
// switches. Parameter names are the Hugging Face checkpoint keys
// ("model.layers.0.self_attn.q_proj.weight"): they are our file format, so they never change.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "model/config.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/rope.h"
#include "util/torch_prelude.h"

namespace lincat {

class WeightStore;

struct RMSNormImpl : torch::nn::Module {
    RMSNormImpl(int64_t dim, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight;
    double eps;
};
TORCH_MODULE(RMSNorm);

struct LlamaAttentionImpl : torch::nn::Module {
    LlamaAttentionImpl(const ModelConfig& config, int64_t layer_index);
    // x is (B, T, C). start = position of x's first token.
    torch::Tensor forward(const torch::Tensor& x, const Rope& rope, int64_t start, AttentionState* state,
                          AttentionTap* tap);
    void set_core(std::shared_ptr<AttentionCoreImpl> core);
    std::shared_ptr<AttentionCoreImpl> core() const { return core_; }

    Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
    RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen 3: over head_dim, per head, before RoPE
    // Optional LoRA adapters (stage 2); not registered, so base checkpoints keep their keys.
    LoraAdapter q_lora{nullptr}, k_lora{nullptr}, v_lora{nullptr}, o_lora{nullptr};
    int64_t layer_index, n_heads, n_kv_heads, head_dim;

  private:
    std::shared_ptr<AttentionCoreImpl> core_;
};
TORCH_MODULE(LlamaAttention);

struct LlamaMLPImpl : torch::nn::Module {
    explicit LlamaMLPImpl(const ModelConfig& config);
    torch::Tensor forward(const torch::Tensor& x);
    Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
    LoraAdapter gate_lora{nullptr}, up_lora{nullptr}, down_lora{nullptr};
};
TORCH_MODULE(LlamaMLP);

struct LlamaDecoderLayerImpl : torch::nn::Module {
    LlamaDecoderLayerImpl(const ModelConfig& config, int64_t layer_index);
    torch::Tensor forward(const torch::Tensor& x, const Rope& rope, int64_t start, AttentionState* state,
                          AttentionTap* tap);
    RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
    LlamaAttention self_attn{nullptr};
    LlamaMLP mlp{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// Which weights a process holds (DESIGN.md 1.6): a block job needs only its k layers, a state
// dump one block at a time, the stitch none. Parameters outside the part are empty tensors
// (numel 0); running them fails with the part named, never with garbage.
struct ModelPart {
    int64_t first_layer = 0, last_layer = -1;  // layers [first, last); last -1 = through the last layer
    bool embedding = true, head = true;        // head = final norm + lm_head (tied: the embeddings)
    static ModelPart whole() { return {}; }
    static ModelPart layers(int64_t first, int64_t last) { return {first, last, false, false}; }
    static ModelPart embeddings_only() { return {0, 0, true, false}; }
    static ModelPart none() { return {0, 0, false, false}; }  // the architecture only (attention cores)
};

struct LlamaBodyImpl : torch::nn::Module {  // HF's "model." prefix
    LlamaBodyImpl(const ModelConfig& config, const ModelPart& part);
    Embedding embed_tokens{nullptr};
    torch::nn::ModuleList layers{nullptr};
    RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaBody);

// Per-layer attention states plus the position of the next token.
struct ModelState {
    std::vector<std::unique_ptr<AttentionState>> layers;
    int64_t position = 0;
    int64_t bytes() const;
};

class LlamaModelImpl : public torch::nn::Module {
  public:
    explicit LlamaModelImpl(const ModelConfig& config, const ModelPart& part = ModelPart::whole());

    // tokens (B, T) int64 -> logits (B, T, vocab) in fp32. With a state, the tokens follow
    // the state's past and the state advances; without, a fresh causal prefill.
    torch::Tensor forward(const torch::Tensor& tokens, ModelState* state = nullptr);
    // Hidden states (B, T, C) after the final norm (no LM head).
    torch::Tensor hidden(const torch::Tensor& tokens, ModelState* state = nullptr);
    // Runs tokens (B, T) through layers [0, layer) and the attention of `layer`, whole
    // sequences: all that attention transfer needs of the teacher when `layer` is its last
    // student (the MLP after it, later layers and the head feed no target).
    void run_through_attention(const torch::Tensor& tokens, int64_t layer);
    torch::Tensor lm_head_forward(const torch::Tensor& h);
    const torch::Tensor& head_weight() const;  // (vocab, C): lm_head's, or the embeddings' when tied
    // Block-wise training (DESIGN.md 1.6): the embeddings of tokens, and layers [first, last)
    // applied to x, the hidden state (B, T, C) entering layer `first` (whole sequences, no state).
    torch::Tensor embed(const torch::Tensor& tokens);
    torch::Tensor run_layers(const torch::Tensor& x, int64_t first, int64_t last);

    ModelState new_state() const;
    const ModelConfig& config() const { return config_; }
    const ModelPart& part() const { return part_; }  // last_layer resolved (never -1)
    bool holds_layer(int64_t i) const { return i >= part_.first_layer && i < part_.last_layer; }
    // Whether a parameter (by its checkpoint name) is in this model's part.
    bool holds_parameter(const std::string& name) const;
    int64_t num_layers() const { return config_.num_hidden_layers; }
    LlamaDecoderLayer layer(int64_t i) const;
    void set_tap(AttentionTap* tap) { tap_ = tap; }

    LlamaBody model{nullptr};
    Linear lm_head{nullptr};  // absent (nullptr) when tie_word_embeddings

  private:
    void require(bool held, const std::string& what) const;

    ModelConfig config_;
    ModelPart part_;
    Rope rope_;
    AttentionTap* tap_ = nullptr;
};
TORCH_MODULE(LlamaModel);

// A copy of a plain (softmax, no LoRA) model with its weights in `dtype`, e.g. a bf16 teacher
// for sampling next to the fp32 one training reads. Fails if the model has parameters a fresh
// LlamaModel lacks (hybrid cores, adapters).
LlamaModel llama_in_dtype(const LlamaModel& model, torch::Dtype dtype);

// Loads config.json and the weights of a Hugging Face model folder. Every parameter must be
// present with the shape the config implies; extra tensors (e.g. rotary inv_freq) are ignored.
// Onto compute().device, in `dtype` (default: compute().dtype, fp32 unless --dtype/--device say
// otherwise). Each tensor goes from the mmap straight into its dtype and device: loading peaks
// near the weights' bytes in that dtype, not twice that.
LlamaModel load_llama(const std::string& dir, std::optional<torch::Dtype> dtype = std::nullopt);
// Only the tensors of `part`, read through the shard index: peak memory is the part's bytes.
LlamaModel load_llama_part(const std::string& dir, const ModelPart& part,
                           std::optional<torch::Dtype> dtype = std::nullopt);
void load_llama_weights(LlamaModel& model, const WeightStore& weights, torch::Dtype dtype,
                        torch::Device device = torch::kCPU);

}  // namespace lincat
