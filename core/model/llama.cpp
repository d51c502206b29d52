#include "model/llama.h"

#include "attention/softmax.h"
#include "model/few_rows_linear.h"
#include "model/weights.h"
#include "util/compute.h"
#include "util/error.h"

namespace lincat {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) {
    weight = register_parameter("weight", torch::empty({out, in}));
    if (with_bias) bias = register_parameter("bias", torch::empty({out}));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
    return linear_layer(x, weight, bias);
}

EmbeddingImpl::EmbeddingImpl(int64_t count, int64_t dim) {
    weight = register_parameter("weight", torch::empty({count, dim}));
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
    return torch::embedding(weight, ids);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
    auto xf = x.to(torch::kFloat32);  // HF Llama normalises in fp32
    auto norm = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
    return weight * norm.to(x.scalar_type());
}

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& c, int64_t layer)
    : layer_index(layer), n_heads(c.num_attention_heads), n_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
    q_proj = register_module("q_proj", Linear(c.hidden_size, c.q_dim(), c.has_qkv_bias()));
    k_proj = register_module("k_proj", Linear(c.hidden_size, c.kv_dim(), c.has_qkv_bias()));
    v_proj = register_module("v_proj", Linear(c.hidden_size, c.kv_dim(), c.has_qkv_bias()));
    o_proj = register_module("o_proj", Linear(c.q_dim(), c.hidden_size, c.attention_bias));
    if (c.qk_norm) {
        q_norm = register_module("q_norm", RMSNorm(c.head_dim, c.rms_norm_eps));
        k_norm = register_module("k_norm", RMSNorm(c.head_dim, c.rms_norm_eps));
    }
    set_core(std::make_shared<SoftmaxAttentionImpl>(c.sliding_window));
}

void LlamaAttentionImpl::set_core(std::shared_ptr<AttentionCoreImpl> core) {
    // Registered under "attn" so a core's own parameters get stable checkpoint names.
    if (core_) unregister_module("attn");
    core_ = register_module("attn", std::move(core));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const Rope& rope, int64_t start,
                                          AttentionState* state, AttentionTap* tap) {
    const int64_t B = x.size(0), T = x.size(1);
    // q (B, H, T, D), k and v (B, Hkv, T, D)
    auto q = project(q_proj, q_lora, x).view({B, T, n_heads, head_dim}).transpose(1, 2);
    auto k = project(k_proj, k_lora, x).view({B, T, n_kv_heads, head_dim}).transpose(1, 2);
    auto v = project(v_proj, v_lora, x).view({B, T, n_kv_heads, head_dim}).transpose(1, 2);
    if (q_norm) q = q_norm(q), k = k_norm(k);
    q = rope.apply(q, start);
    k = rope.apply(k, start);
    auto y = core_->forward(q, k, v, state);  // (B, H, T, D)
    if (tap) tap->on_attention(layer_index, q, k, v, y);
    return project(o_proj, o_lora, y.transpose(1, 2).reshape({B, T, n_heads * head_dim}));
}

LlamaMLPImpl::LlamaMLPImpl(const ModelConfig& c) {
    gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x) {
    return project(down_proj, down_lora, torch::silu(project(gate_proj, gate_lora, x)) * project(up_proj, up_lora, x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& c, int64_t layer) {
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    self_attn = register_module("self_attn", LlamaAttention(c, layer));
    post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    mlp = register_module("mlp", LlamaMLP(c));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const Rope& rope, int64_t start,
                                             AttentionState* state, AttentionTap* tap) {
    auto h = x + self_attn->forward(input_layernorm(x), rope, start, state, tap);
    return h + mlp(post_attention_layernorm(h));
}

// Parameters outside a model's part: empty, so they hold no memory (torch::empty reserved only
// address space for them, and only one layer's at a time).
static void hollow_out(torch::nn::Module& m) {
    for (auto& p : m.parameters()) p.set_data(torch::empty({0}, p.options()));
}

LlamaBodyImpl::LlamaBodyImpl(const ModelConfig& c, const ModelPart& part) {
    embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size));
    if (!part.embedding && !(part.head && c.tie_word_embeddings)) hollow_out(*embed_tokens);
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        LlamaDecoderLayer layer(c, i);
        if (i < part.first_layer || i >= part.last_layer) hollow_out(*layer);
        layers->push_back(layer);
    }
    norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    if (!part.head) hollow_out(*norm);
}

int64_t ModelState::bytes() const {
    int64_t n = 0;
    for (auto& s : layers) n += s->bytes();
    return n;
}

static ModelPart resolved(const ModelPart& p, const ModelConfig& c) {
    ModelPart r = p;
    if (r.last_layer < 0) r.last_layer = c.num_hidden_layers;
    if (r.first_layer < 0 || r.first_layer > r.last_layer || r.last_layer > c.num_hidden_layers)
        fail("model part: layers [", p.first_layer, ", ", p.last_layer, ") are not inside [0, ", c.num_hidden_layers,
             "]");
    return r;
}

static std::string part_text(const ModelPart& p) {
    std::string s = p.first_layer < p.last_layer
                        ? "layers " + std::to_string(p.first_layer) + ".." + std::to_string(p.last_layer - 1)
                        : "no layers";
    if (p.embedding) s += " + embeddings";
    if (p.head) s += " + head";
    return s;
}

LlamaModelImpl::LlamaModelImpl(const ModelConfig& config, const ModelPart& part)
    : config_(config), part_(resolved(part, config)), rope_(config) {
    model = register_module("model", LlamaBody(config, part_));
    if (!config.tie_word_embeddings) {
        lm_head = register_module("lm_head", Linear(config.hidden_size, config.vocab_size, false));
        if (!part_.head) hollow_out(*lm_head);
    }
}

void LlamaModelImpl::require(bool held, const std::string& what) const {
    if (!held)
        fail("model: ", what, " is not loaded in this process (it holds ", part_text(part_),
             "; a block job loads only its own layers)");
}

bool LlamaModelImpl::holds_parameter(const std::string& name) const {
    const std::string layers = "model.layers.";
    if (name.rfind(layers, 0) == 0) return holds_layer(std::stoll(name.substr(layers.size())));
    if (name.rfind("model.embed_tokens.", 0) == 0)
        return part_.embedding || (part_.head && config_.tie_word_embeddings);
    if (name.rfind("model.norm.", 0) == 0 || name.rfind("lm_head.", 0) == 0) return part_.head;
    return true;
}

LlamaDecoderLayer LlamaModelImpl::layer(int64_t i) const {
    return model->layers->ptr<LlamaDecoderLayerImpl>(size_t(i));
}

ModelState LlamaModelImpl::new_state() const {
    ModelState s;
    for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
        s.layers.push_back(layer(i)->self_attn->core()->new_state());
    return s;
}

static void check_tokens(const torch::Tensor& tokens, int64_t vocab_size) {
    if (tokens.dim() != 2) fail("model forward: tokens must be (batch, time), got ", tokens.sizes());
    auto bad = (tokens < 0) | (tokens >= vocab_size);
    if (bad.any().item<bool>()) fail("model forward: token id out of range [0, ", vocab_size, ")");
}

torch::Tensor LlamaModelImpl::hidden(const torch::Tensor& tokens, ModelState* state) {
    check_tokens(tokens, config_.vocab_size);
    if (state && int64_t(state->layers.size()) != config_.num_hidden_layers)
        fail("model forward: state has ", state->layers.size(), " layers, the model ", config_.num_hidden_layers);
    require(part_.embedding && part_.head && part_.first_layer == 0 && part_.last_layer == config_.num_hidden_layers,
            "the whole model");
    const int64_t start = state ? state->position : 0;
    auto x = model->embed_tokens(tokens.to(model->embed_tokens->weight.device()));  // (B, T, C)
    for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
        x = layer(i)->forward(x, rope_, start, state ? state->layers[i].get() : nullptr, tap_);
    if (state) state->position += tokens.size(1);
    return model->norm(x);
}

void LlamaModelImpl::run_through_attention(const torch::Tensor& tokens, int64_t layer_index) {
    if (layer_index < 0 || layer_index >= config_.num_hidden_layers)
        fail("run_through_attention: layer ", layer_index, " is not inside [0, ", config_.num_hidden_layers, ")");
    require(part_.embedding && part_.first_layer == 0 && holds_layer(layer_index),
            "the embeddings and layers 0.." + std::to_string(layer_index));
    check_tokens(tokens, config_.vocab_size);
    auto x = model->embed_tokens(tokens.to(model->embed_tokens->weight.device()));
    for (int64_t i = 0; i < layer_index; ++i) x = layer(i)->forward(x, rope_, 0, nullptr, tap_);
    auto last = layer(layer_index);
    (void)last->self_attn->forward(last->input_layernorm(x), rope_, 0, nullptr, tap_);
}

torch::Tensor LlamaModelImpl::embed(const torch::Tensor& tokens) {
    if (tokens.dim() != 2) fail("model embed: tokens must be (batch, time), got ", tokens.sizes());
    require(part_.embedding, "the embedding table");
    return model->embed_tokens(tokens.to(model->embed_tokens->weight.device()));
}

torch::Tensor LlamaModelImpl::run_layers(const torch::Tensor& x, int64_t first, int64_t last) {
    if (first < 0 || last > config_.num_hidden_layers || first >= last)
        fail("run_layers: layers [", first, ", ", last, ") are not inside [0, ", config_.num_hidden_layers, ")");
    if (x.dim() != 3 || x.size(2) != config_.hidden_size)
        fail("run_layers: hidden states must be (batch, time, ", config_.hidden_size, "), got ", x.sizes());
    require(holds_layer(first) && holds_layer(last - 1),
            "layers " + std::to_string(first) + ".." + std::to_string(last - 1));
    auto& w = layer(first)->input_layernorm->weight;  // saved states may sit on the CPU, in another dtype
    torch::Tensor h = x.to(w.device(), w.scalar_type());
    for (int64_t i = first; i < last; ++i) h = layer(i)->forward(h, rope_, 0, nullptr, tap_);
    return h;
}

const torch::Tensor& LlamaModelImpl::head_weight() const {
    require(part_.head, "the LM head");
    return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

torch::Tensor LlamaModelImpl::lm_head_forward(const torch::Tensor& h) {
    return linear_layer(h, head_weight(), {}).to(torch::kFloat32);
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& tokens, ModelState* state) {
    return lm_head_forward(hidden(tokens, state));
}

void load_llama_weights(LlamaModel& model, const WeightStore& weights, torch::Dtype dtype, torch::Device device) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
        const std::string& name = p.key();
        if (name.find(".attn.") != std::string::npos) continue;  // attention-core params: not in base checkpoints
        if (!model->holds_parameter(name)) continue;             // outside the part: stays empty
        if (!weights.has(name)) fail("model weights: tensor '", name, "' is missing");
        const TensorInfo& info = weights.info(name);
        std::vector<int64_t> want(p.value().sizes().begin(), p.value().sizes().end());
        if (info.shape != want) {
            fail(weights.file_of(name), ": tensor '", name, "' has shape ", shape_str(info.shape),
                 ", config.json implies ", shape_str(want));
        }
        if (info.dtype != DType::F32 && info.dtype != DType::F16 && info.dtype != DType::BF16)
            fail(weights.file_of(name), ": tensor '", name, "' has dtype ", dtype_name(info.dtype),
                 ", expected F32, F16 or BF16");
        p.value().set_data(weights.get(name, dtype, device));
    }
    for (auto& p : model->named_parameters()) p.value().set_requires_grad(false);
}

LlamaModel llama_in_dtype(const LlamaModel& model, torch::Dtype dtype) {
    torch::NoGradGuard no_grad;
    LlamaModel copy(model->config(), model->part());
    auto from = model->named_parameters();
    auto to = copy->named_parameters();
    for (auto& p : from)
        if (!to.contains(p.key()))
            fail("model copy: parameter '", p.key(), "' is not part of a plain Llama (copy the base model only)");
    for (auto& p : to) {
        const torch::Tensor* src = from.find(p.key());
        if (!src) fail("model copy: the model has no parameter '", p.key(), "'");
        p.value().set_data(src->to(dtype));
        p.value().set_requires_grad(false);
    }
    copy->eval();
    return copy;
}

LlamaModel load_llama(const std::string& dir, std::optional<torch::Dtype> dtype) {
    return load_llama_part(dir, ModelPart::whole(), dtype);
}

LlamaModel load_llama_part(const std::string& dir, const ModelPart& part, std::optional<torch::Dtype> dtype) {
    ModelConfig config = load_model_config(dir + "/config.json");
    WeightStore weights = WeightStore::open_dir(dir);
    LlamaModel model(config, part);
    load_llama_weights(model, weights, dtype.value_or(compute().dtype), compute().device);
    // Every parameter is already on the device; this moves anything added later that the file lacks.
    if (!compute().device.is_cpu()) model->to(compute().device);
    model->eval();
    return model;
}

}  // namespace lincat
