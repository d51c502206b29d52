#include "plan/planner.h"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <vector>

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

double dump_flops_per_layer_token(const PlanModel& m) {
    return 2.0 * double(m.layer_parameters());
}

double block_flops_per_token(const PlanModel& m, int64_t k, int64_t window, int64_t feature_dim) {
    const double attn =
        3.0 * 4.0 * double(m.heads) * double(m.head_dim) * (2.0 * double(window) + 2.0 * double(feature_dim));
    return (dump_flops_per_layer_token(m) + attn) * double(k);
}

std::string plan_shape_key(const PlanModel& m) {
    return "L" + std::to_string(m.layers) + " h" + std::to_string(m.hidden) + " H" + std::to_string(m.heads) + "/" +
           std::to_string(m.kv_heads) + " d" + std::to_string(m.head_dim) + " i" + std::to_string(m.intermediate) +
           " v" + std::to_string(m.vocab);
}

PlanRow plan_row(const PlanInput& in, int64_t k) {
    const PlanModel& m = in.model;
    if (k < 1 || k > m.layers)
        fail("plan: k = ", k, " is outside [1, ", m.layers, "] (the model has ", m.layers, " layers)");
    if (in.tokens <= 0 || in.seq_len <= 0 || in.micro_batch <= 0 || in.gpus <= 0 || in.bytes_per_value <= 0 ||
        in.gpu_flops <= 0 || in.utilization <= 0 || in.utilization > 1 || in.weight_bytes_per_value <= 0 ||
        in.dump_micro_batch <= 0 || in.dump_flops_measured < 0 || in.block_flops_measured < 0 ||
        in.gpu_hour_price < 0 || in.disk_tb_price < 0)
        fail(
            "plan: tokens, seq_len, micro_batch, gpus, bytes, GPU FLOP/s must be positive, utilisation in (0, 1] "
            "and prices not negative");
    PlanRow r;
    r.k = k;
    r.blocks = (m.layers + k - 1) / k;
    // The hidden state entering each block, for every training token.
    r.disk_bytes = in.bytes_per_value * double(in.tokens) * double(m.hidden) * double(r.blocks);

    // GPU memory to train one block of k layers (modelled terms):
    //  weights: the k frozen layers in weight_bytes_per_value;
    //  optimizer: trainable feature maps (2 x H x d x f) + gammas, fp32 value + grad + AdamW m, v = 16 B each;
    //  activations per layer, kept for the student's backward (fp32): q, k, v (3 B T H d); for q and
    //  k each the Hedgehog features and the softmax outputs they are made of (4 B H T 2f); window
    //  scores and weights (2 B H T 2w); chunk states (B H T/w 2f d). The backward holds one more
    //  layer's worth as gradients while it runs (k + 1 layers). Plus the block input and one
    //  layer's MLP intermediate (B T (hidden + 2 intermediate)) in bytes_per_value. Checked against
    //  the tensor peak a block job records (tests/blocks/test_streaming.cpp).
    const double B = double(in.micro_batch), T = double(in.seq_len), H = double(m.heads), d = double(m.head_dim);
    const double f2 = 2.0 * double(in.feature_dim), w = double(in.window);
    const double wb = in.weight_bytes_per_value;
    r.weights_bytes = double(k) * double(m.layer_parameters()) * wb;
    r.optimizer_bytes = double(k) * (2 * H * d * double(in.feature_dim) + H) * 16;
    const double per_layer =
        4 * (3 * B * T * H * d + 4 * B * H * T * f2 + 2 * B * H * T * 2 * w + B * H * (T / w) * f2 * d);
    r.activation_bytes = double(k + 1) * per_layer + in.bytes_per_value * B * T * double(m.hidden + 2 * m.intermediate);
    r.gpu_bytes_per_block = r.weights_bytes + r.optimizer_bytes + r.activation_bytes;

    // A dump job: the larger of one block's layers and the embeddings, plus one micro-batch of
    // the teacher's forward without grad (hidden, q/k/v, MLP intermediate, one score matrix).
    const double Bd = double(in.dump_micro_batch), Hkv = double(m.kv_heads);
    const double dump_weights = std::max(double(k) * double(m.layer_parameters()), double(m.vocab * m.hidden)) * wb;
    r.dump_gpu_bytes = dump_weights +
                       wb * Bd * T * (3 * double(m.hidden) + H * d + 2 * Hkv * d + 2 * double(m.intermediate)) +
                       4 * Bd * H * T * T;

    // Time. Dump job b (b >= 1) pushes every token through block b-1's layers; job 0 only looks up
    // embeddings, and the last block's layers never run in the dump. A block's training is a teacher
    // forward plus the student's forward and backward (about 3x its small attention FLOPs).
    const double peak = in.gpu_flops * in.utilization;
    const double dump_rate = in.dump_flops_measured > 0 ? in.dump_flops_measured : peak;
    const double block_rate = in.block_flops_measured > 0 ? in.block_flops_measured : peak;
    std::vector<double> dump_job(size_t(r.blocks), 0.0);
    for (int64_t b = 1; b < r.blocks; ++b)
        dump_job[size_t(b)] = double(k) * dump_flops_per_layer_token(m) * double(in.tokens) / dump_rate / 3600;
    r.block_hours = block_flops_per_token(m, k, in.window, in.feature_dim) * double(in.tokens) / block_rate / 3600;
    // Schedule: the dump chain on one GPU; each block's training on the GPU free first once its
    // input exists (the emitted Slurm graph does the same with afterok dependencies).
    std::vector<double> gpu_free(size_t(in.gpus), 0.0);
    double t = 0;
    std::vector<double> ready(size_t(r.blocks));
    for (int64_t b = 0; b < r.blocks; ++b) ready[size_t(b)] = t += dump_job[size_t(b)];
    r.dump_hours = t;
    gpu_free[0] = t;
    r.hours_wall = t;
    for (int64_t b = 0; b < r.blocks; ++b) {
        auto g = std::min_element(gpu_free.begin(), gpu_free.end());
        *g = std::max(*g, ready[size_t(b)]) + r.block_hours;
        r.hours_wall = std::max(r.hours_wall, *g);
    }
    r.gpu_hours = r.dump_hours + double(r.blocks) * r.block_hours;
    r.cost_gpu = r.gpu_hours * in.gpu_hour_price;
    r.cost_disk = r.disk_bytes / 1e12 * in.disk_tb_price;
    r.cost = r.cost_gpu + r.cost_disk;
    r.fits_gpu = r.gpu_bytes_per_block <= in.gpu_bytes;
    r.fits_disk = in.disk_limit_bytes <= 0 || r.disk_bytes <= in.disk_limit_bytes;
    r.fits = r.fits_gpu && r.fits_disk;
    return r;
}

Plan make_plan(const PlanInput& in) {
    Plan p;
    p.input = in;
    for (int64_t k = 1; k <= in.model.layers; ++k) p.rows.push_back(plan_row(in, k));
    // The cheapest k among those that fit and finish within 5% of the fastest: wall time is
    // nearly flat in k once the dump chain dominates, while disk (and so money) falls with k.
    const PlanRow* fastest = nullptr;
    for (auto& r : p.rows)
        if (r.fits && (!fastest || r.hours_wall < fastest->hours_wall)) fastest = &r;
    const PlanRow* best = nullptr;
    if (fastest)
        for (auto& r : p.rows)
            if (r.fits && r.hours_wall <= fastest->hours_wall * 1.05 && (!best || r.cost < best->cost)) best = &r;
    if (best) {
        p.recommended_k = best->k;
        char buf[320];
        std::snprintf(buf, sizeof buf,
                      "k = %lld: cheapest (%.0f: %.0f GPU-hours, %.1f TB) of the k within 5%% of the fastest wall "
                      "time (%.1f h) that fit %.0f GB per GPU%s",
                      (long long)best->k, best->cost, best->gpu_hours, best->disk_bytes / 1e12, fastest->hours_wall,
                      in.gpu_bytes / 1e9, in.disk_limit_bytes > 0 ? " and the disk limit" : "");
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
                        {"dump_gpu_bytes", r.dump_gpu_bytes},
                        {"dump_hours", r.dump_hours},
                        {"block_hours", r.block_hours},
                        {"hours_wall", r.hours_wall},
                        {"gpu_hours", r.gpu_hours},
                        {"cost_gpu", r.cost_gpu},
                        {"cost_disk", r.cost_disk},
                        {"cost", r.cost},
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
                {"weight_bytes_per_value", in.weight_bytes_per_value},
                {"seq_len", in.seq_len},
                {"micro_batch", in.micro_batch},
                {"window", in.window},
                {"feature_dim", in.feature_dim},
                {"gpu_bytes", in.gpu_bytes},
                {"gpus", in.gpus},
                {"gpu_flops", in.gpu_flops},
                {"utilization", in.utilization},
                {"disk_limit_bytes", in.disk_limit_bytes},
                {"dump_micro_batch", in.dump_micro_batch},
                {"dump_flops_measured", in.dump_flops_measured},
                {"block_flops_measured", in.block_flops_measured},
                {"gpu_hour_price", in.gpu_hour_price},
                {"disk_tb_price", in.disk_tb_price}}},
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
    // Plans written before weights and states had their own byte counts used one for both.
    pi.weight_bytes_per_value = in.contains("weight_bytes_per_value")
                                    ? plan_number(in, "weight_bytes_per_value", 0.125, 16, il)
                                    : pi.bytes_per_value;
    pi.seq_len = plan_int(in, "seq_len", 1, 1 << 24, il);
    pi.micro_batch = plan_int(in, "micro_batch", 1, 1 << 20, il);
    pi.window = json_get_or<int64_t>(in, "window", pi.window, il);
    pi.feature_dim = json_get_or<int64_t>(in, "feature_dim", pi.feature_dim, il);
    pi.gpu_bytes = plan_number(in, "gpu_bytes", 1, 1e18, il);
    pi.gpus = plan_int(in, "gpus", 1, 1 << 24, il);
    pi.gpu_flops = plan_number(in, "gpu_flops", 1, 1e20, il);
    pi.utilization = plan_number(in, "utilization", 1e-6, 1, il);
    pi.disk_limit_bytes = plan_number(in, "disk_limit_bytes", 0, 1e21, il);
    if (in.contains("dump_micro_batch")) pi.dump_micro_batch = plan_int(in, "dump_micro_batch", 1, 1 << 20, il);
    if (in.contains("dump_flops_measured"))
        pi.dump_flops_measured = plan_number(in, "dump_flops_measured", 0, 1e20, il);
    if (in.contains("block_flops_measured"))
        pi.block_flops_measured = plan_number(in, "block_flops_measured", 0, 1e20, il);
    if (in.contains("gpu_hour_price")) pi.gpu_hour_price = plan_number(in, "gpu_hour_price", 0, 1e9, il);
    if (in.contains("disk_tb_price")) pi.disk_tb_price = plan_number(in, "disk_tb_price", 0, 1e9, il);
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
        row.dump_gpu_bytes = json_get_or<double>(r, "dump_gpu_bytes", 0, rl);
        row.gpu_hours = json_get_or<double>(r, "gpu_hours", 0, rl);
        row.cost_gpu = json_get_or<double>(r, "cost_gpu", 0, rl);
        row.cost_disk = json_get_or<double>(r, "cost_disk", 0, rl);
        row.cost = json_get_or<double>(r, "cost", 0, rl);
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
