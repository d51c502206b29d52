#include "plan/planner.h"

#include <cmath>
#include <cstdio>

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

std::string si_bytes(double bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    int u = 0;
    while (bytes >= 1000 && u < 5) bytes /= 1000, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
    return buf;
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
    const PlanModel& m = in.model;
    json j = {{"model", m.name},
              {"model_shape",
               {{"layers", m.layers},
                {"hidden", m.hidden},
                {"heads", m.heads},
                {"kv_heads", m.kv_heads},
                {"head_dim", m.head_dim},
                {"intermediate", m.intermediate},
                {"vocab", m.vocab}}},
              {"input",
               {{"tokens", in.tokens},
                {"bytes_per_value", in.bytes_per_value},
                {"seq_len", in.seq_len},
                {"micro_batch", in.micro_batch},
                {"window", in.window},
                {"feature_dim", in.feature_dim},
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

static double plan_number(const json& j, const std::string& field, double lo, double hi, const std::string& label) {
    double v = json_get<double>(j, field, label);
    if (!std::isfinite(v) || v < lo || v > hi) fail(label, ": ", field, " = ", v, " is outside [", lo, ", ", hi, "]");
    return v;
}

static int64_t plan_int(const json& j, const std::string& field, int64_t lo, int64_t hi, const std::string& label) {
    int64_t v = json_get<int64_t>(j, field, label);
    if (v < lo || v > hi) fail(label, ": ", field, " = ", v, " is outside [", lo, ", ", hi, "]");
    return v;
}

Plan plan_from_json(const std::string& text, const std::string& label) {
    if (text.size() > (16u << 20)) fail(label, ": plan larger than 16 MB");
    json j = parse_json(text, label);
    if (!j.is_object()) fail(label, ": a plan must be a JSON object (from lincat plan --json)");
    Plan p;
    PlanModel& m = p.input.model;
    m.name = json_get<std::string>(j, "model", label);
    json shape = json_get<json>(j, "model_shape", label);
    if (!shape.is_object()) fail(label, ": model_shape must be an object");
    const std::string sl = label + " model_shape";
    m.layers = plan_int(shape, "layers", 1, 1 << 16, sl);
    m.hidden = plan_int(shape, "hidden", 1, 1 << 20, sl);
    m.heads = plan_int(shape, "heads", 1, 1 << 16, sl);
    m.kv_heads = plan_int(shape, "kv_heads", 1, m.heads, sl);
    m.head_dim = plan_int(shape, "head_dim", 1, 1 << 16, sl);
    m.intermediate = plan_int(shape, "intermediate", 1, 1 << 24, sl);
    m.vocab = plan_int(shape, "vocab", 1, 1 << 24, sl);
    json in = json_get<json>(j, "input", label);
    if (!in.is_object()) fail(label, ": input must be an object");
    const std::string il = label + " input";
    PlanInput& pi = p.input;
    pi.tokens = plan_int(in, "tokens", 1, int64_t(1) << 50, il);
    pi.bytes_per_value = plan_number(in, "bytes_per_value", 0.125, 16, il);
    pi.seq_len = plan_int(in, "seq_len", 1, 1 << 24, il);
    pi.micro_batch = plan_int(in, "micro_batch", 1, 1 << 20, il);
    pi.window = json_get_or<int64_t>(in, "window", pi.window, il);
    pi.feature_dim = json_get_or<int64_t>(in, "feature_dim", pi.feature_dim, il);
    pi.gpu_bytes = plan_number(in, "gpu_bytes", 1, 1e18, il);
    pi.gpus = plan_int(in, "gpus", 1, 1 << 24, il);
    pi.gpu_flops = plan_number(in, "gpu_flops", 1, 1e20, il);
    pi.utilization = plan_number(in, "utilization", 1e-6, 1, il);
    pi.disk_limit_bytes = plan_number(in, "disk_limit_bytes", 0, 1e21, il);
    json rows = json_get<json>(j, "rows", label);
    if (!rows.is_array()) fail(label, ": rows must be an array");
    if (rows.size() > size_t(m.layers)) fail(label, ": ", rows.size(), " rows for a ", m.layers, "-layer model");
    for (size_t i = 0; i < rows.size(); ++i) {
        const json& r = rows[i];
        const std::string rl = label + " rows[" + std::to_string(i) + "]";
        if (!r.is_object()) fail(rl, ": must be an object");
        PlanRow row;
        row.k = plan_int(r, "k", 1, m.layers, rl);
        row.blocks = plan_int(r, "blocks", 1, m.layers, rl);
        if (row.blocks != (m.layers + row.k - 1) / row.k)
            fail(rl, ": blocks = ", row.blocks, " but ceil(", m.layers, " / ", row.k,
                 ") = ", (m.layers + row.k - 1) / row.k);
        row.disk_bytes = plan_number(r, "disk_bytes", 0, 1e24, rl);
        row.gpu_bytes_per_block = plan_number(r, "gpu_bytes_per_block", 0, 1e24, rl);
        row.weights_bytes = json_get_or<double>(r, "weights_bytes", 0, rl);
        row.optimizer_bytes = json_get_or<double>(r, "optimizer_bytes", 0, rl);
        row.activation_bytes = json_get_or<double>(r, "activation_bytes", 0, rl);
        row.dump_hours = plan_number(r, "dump_hours", 0, 1e9, rl);
        row.block_hours = plan_number(r, "block_hours", 0, 1e9, rl);
        row.hours_wall = plan_number(r, "hours_wall", 0, 1e9, rl);
        row.fits_gpu = json_get<bool>(r, "fits_gpu", rl);
        row.fits_disk = json_get<bool>(r, "fits_disk", rl);
        row.fits = json_get<bool>(r, "fits", rl);
        for (auto& prev : p.rows)
            if (prev.k == row.k) fail(rl, ": k = ", row.k, " is listed twice");
        p.rows.push_back(row);
    }
    p.recommended_k = j.contains("recommended_k") && !j.at("recommended_k").is_null()
                          ? plan_int(j, "recommended_k", 1, m.layers, label)
                          : 0;
    p.reason = json_get_or<std::string>(j, "reason", "", label);
    return p;
}

const PlanRow* Plan::row(int64_t k) const {
    for (auto& r : rows)
        if (r.k == k) return &r;
    return nullptr;
}

}  // namespace lincat
