#include "plan/planner.h"

#include <cmath>

#include "util/error.h"
#include "util/json.h"

namespace lincat {

int64_t PlanModel::layer_parameters() const {
    const int64_t q = heads * head_dim, kv = kv_heads * head_dim;
    return hidden * q * 2 + hidden * kv * 2 + 3 * hidden * intermediate + 2 * hidden;
}

int64_t PlanModel::parameters() const {
    return layers * layer_parameters() + 2 * vocab * hidden + hidden;
}

static PlanModel preset(std::string name, int64_t L, int64_t hidden, int64_t heads, int64_t kv, int64_t inter,
                        int64_t vocab) {
    return {std::move(name), L, hidden, heads, kv, hidden / heads, inter, vocab};
}

std::vector<std::string> plan_preset_names() {
    return {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3-8b", "mistral-7b", "stories15m"};
}

PlanModel plan_preset(const std::string& name) {
    // Published configs (config.json of each model).
    if (name == "llama-3.1-8b" || name == "llama-3-8b") return preset(name, 32, 4096, 32, 8, 14336, 128256);
    if (name == "llama-3.1-70b") return preset(name, 80, 8192, 64, 8, 28672, 128256);
    if (name == "llama-3.1-405b") return preset(name, 126, 16384, 128, 8, 53248, 128256);
    if (name == "mistral-7b") return preset(name, 32, 4096, 32, 8, 14336, 32000);
    if (name == "stories15m") return preset(name, 6, 288, 6, 6, 768, 32000);
    std::string known;
    for (auto& n : plan_preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("plan: unknown preset '", name, "' (known: ", known, ")");
}

PlanModel plan_model_from_config(const ModelConfig& c, const std::string& name) {
    return {name,       c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
            c.head_dim, c.intermediate_size, c.vocab_size};
}

PlanRow plan_row(const PlanInput& in, int64_t k) {
    const PlanModel& m = in.model;
    if (k < 1 || k > m.layers)
        fail("plan: k = ", k, " is outside [1, ", m.layers, "] (the model has ", m.layers, " layers)");
    if (in.tokens <= 0 || in.seq_len <= 0 || in.micro_batch <= 0 || in.gpus <= 0 || in.bytes_per_value <= 0 ||
        in.gpu_flops <= 0 || in.utilization <= 0 || in.utilization > 1)
        fail("plan: tokens, seq_len, micro_batch, gpus, bytes, GPU FLOP/s must be positive and utilisation in (0, 1]");
    PlanRow r;
    r.k = k;
    r.blocks = (m.layers + k - 1) / k;
    // The hidden state entering each block, for every training token.
    r.disk_bytes = in.bytes_per_value * double(in.tokens) * double(m.hidden) * double(r.blocks);

    // GPU memory to train one block of k layers (modelled terms):
    //  weights: the k frozen layers in bytes_per_value;
    //  optimizer: trainable feature maps (2 x H x d x f) + gammas, fp32 value + grad + AdamW m, v = 16 B each;
    //  activations per layer, kept for the student's backward (fp32): q, k, v (3 B T H d), features
    //  (2 B H T 2f), window scores and weights (2 B H T 2w), chunk states (B H T/w 2f d); plus the block
    //  input and one layer's MLP intermediate (B T (hidden + 2 intermediate)) in bytes_per_value.
    const double B = double(in.micro_batch), T = double(in.seq_len), H = double(m.heads), d = double(m.head_dim);
    const double f2 = 2.0 * double(in.feature_dim), w = double(in.window);
    r.weights_bytes = double(k) * double(m.layer_parameters()) * in.bytes_per_value;
    r.optimizer_bytes = double(k) * (2 * H * d * double(in.feature_dim) + H) * 16;
    const double per_layer =
        4 * (3 * B * T * H * d + 2 * B * H * T * f2 + 2 * B * H * T * 2 * w + B * H * (T / w) * f2 * d);
    r.activation_bytes = double(k) * per_layer + in.bytes_per_value * B * T * double(m.hidden + 2 * m.intermediate);
    r.gpu_bytes_per_block = r.weights_bytes + r.optimizer_bytes + r.activation_bytes;

    // Time: the dump is one teacher forward over all tokens (2 FLOPs per parameter per token),
    // spread over every GPU; a block's training is a teacher forward plus the student's
    // forward and backward (about 3x its small attention FLOPs), on one GPU.
    const double rate = in.gpu_flops * in.utilization;
    const double dump_flops = 2.0 * double(m.parameters()) * double(in.tokens);
    r.dump_hours = dump_flops / (rate * double(in.gpus)) / 3600;
    const double attn = 3.0 * 4.0 * H * d * (2 * w + f2) * double(k);  // per token
    const double block_flops = (2.0 * double(k) * double(m.layer_parameters()) + attn) * double(in.tokens);
    r.block_hours = block_flops / rate / 3600;
    const double waves = std::ceil(double(r.blocks) / double(in.gpus));
    r.hours_wall = r.dump_hours + waves * r.block_hours;
    r.fits_gpu = r.gpu_bytes_per_block <= in.gpu_bytes;
    r.fits_disk = in.disk_limit_bytes <= 0 || r.disk_bytes <= in.disk_limit_bytes;
    r.fits = r.fits_gpu && r.fits_disk;
    return r;
}

Plan make_plan(const PlanInput& in) {
    Plan p;
    p.input = in;
    for (int64_t k = 1; k <= in.model.layers; ++k) p.rows.push_back(plan_row(in, k));
    const PlanRow* best = nullptr;
    for (auto& r : p.rows)
        if (r.fits && (!best || r.hours_wall < best->hours_wall - 1e-9 ||
                       (std::fabs(r.hours_wall - best->hours_wall) <= 1e-9 && r.disk_bytes < best->disk_bytes)))
            best = &r;
    if (best) {
        p.recommended_k = best->k;
        char buf[256];
        std::snprintf(buf, sizeof buf, "k = %lld: fastest wall time (%.1f h) among the k that fit %.0f GB per GPU%s",
                      (long long)best->k, best->hours_wall, in.gpu_bytes / 1e9,
                      in.disk_limit_bytes > 0 ? " and the disk limit" : "");
        p.reason = buf;
    } else {
        p.reason =
            "no k fits: a single layer needs more GPU memory than given, or every k needs more disk than the limit";
    }
    return p;
}

std::string plan_to_json(const Plan& p) {
    json rows = json::array();
    for (auto& r : p.rows)
        rows.push_back({{"k", r.k},
                        {"blocks", r.blocks},
                        {"disk_bytes", r.disk_bytes},
                        {"gpu_bytes_per_block", r.gpu_bytes_per_block},
                        {"weights_bytes", r.weights_bytes},
                        {"optimizer_bytes", r.optimizer_bytes},
                        {"activation_bytes", r.activation_bytes},
                        {"dump_hours", r.dump_hours},
                        {"block_hours", r.block_hours},
                        {"hours_wall", r.hours_wall},
                        {"fits_gpu", r.fits_gpu},
                        {"fits_disk", r.fits_disk},
                        {"fits", r.fits}});
    const PlanInput& in = p.input;
    json j = {{"model", in.model.name},
              {"input",
               {{"tokens", in.tokens},
                {"bytes_per_value", in.bytes_per_value},
                {"seq_len", in.seq_len},
                {"micro_batch", in.micro_batch},
                {"gpu_bytes", in.gpu_bytes},
                {"gpus", in.gpus},
                {"gpu_flops", in.gpu_flops},
                {"utilization", in.utilization},
                {"disk_limit_bytes", in.disk_limit_bytes}}},
              {"rows", rows},
              {"recommended_k", p.recommended_k == 0 ? json(nullptr) : json(p.recommended_k)},
              {"reason", p.reason}};
    return j.dump(1);
}

}  // namespace lincat
