#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "model/weights.h"
#include "train/transfer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

std::string linearization_to_json(const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash) {
    std::vector<int64_t> layers = o.layers;
    if (layers.empty())
        for (int64_t i = 0; i < num_layers; ++i) layers.push_back(i);
    json j = {{"format", "lincat-linearization"},
              {"version", 1},
              {"variant", window_kind_name(o.window.kind)},
              {"window", o.window.size},
              {"block_align", o.window.align == BlockAlign::End ? "end" : "start"},
              {"feature_map", feature_map_kind_name(o.feature_map)},
              {"feature_dim", o.feature_dim},
              {"affine", o.affine},
              {"decode_window", window_kind_name(o.decode_window)},
              {"layers", layers},
              {"base_model_hash", base_model_hash}};
    return j.dump(2) + "\n";
}

LinearizeOptions linearization_from_json(const std::string& text, const std::string& label, std::string* hash) {
    json j = parse_json(text, label);
    if (json_get_or<std::string>(j, "format", "", label) != "lincat-linearization")
        fail(label, ": field 'format' is not 'lincat-linearization'");
    if (json_get<int64_t>(j, "version", label) != 1) fail(label, ": unsupported version");
    LinearizeOptions o;
    o.window.kind = parse_window_kind(json_get<std::string>(j, "variant", label));
    o.window.size = json_get<int64_t>(j, "window", label);
    if (o.window.size <= 0 || o.window.size > 65536) fail(label, ": field 'window' out of range");
    o.window.align =
        json_get_or<std::string>(j, "block_align", "start", label) == "end" ? BlockAlign::End : BlockAlign::Start;
    o.feature_map = parse_feature_map_kind(json_get<std::string>(j, "feature_map", label));
    o.feature_dim = json_get<int64_t>(j, "feature_dim", label);
    if (o.feature_dim <= 0 || o.feature_dim > 65536) fail(label, ": field 'feature_dim' out of range");
    o.affine = json_get_or<bool>(j, "affine", false, label);
    o.decode_window = parse_window_kind(json_get_or<std::string>(j, "decode_window", "tk", label));
    const json& layers = json_get<json>(j, "layers", label);
    if (!layers.is_array()) fail(label, ": field 'layers' must be an array");
    for (const json& l : layers) {
        if (!l.is_number_integer() || l.get<int64_t>() < 0) fail(label, ": field 'layers' must hold layer indices");
        o.layers.push_back(l.get<int64_t>());
    }
    if (hash) *hash = json_get<std::string>(j, "base_model_hash", label);
    return o;
}

std::vector<std::pair<std::string, torch::Tensor>> linearized_tensors(const LlamaModel& model) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (int64_t l = 0; l < model->num_layers(); ++l) {
        auto core = model->layer(l)->self_attn->core();
        std::shared_ptr<HybridAttentionImpl> hybrid = std::dynamic_pointer_cast<HybridAttentionImpl>(core);
        if (auto* t = dynamic_cast<TransferAttentionImpl*>(core.get())) hybrid = t->student;
        if (!hybrid) continue;
        for (auto& p : hybrid->named_parameters())
            out.push_back({"model.layers." + std::to_string(l) + ".self_attn.attn." + p.key(), p.value()});
    }
    return out;
}

std::string save_linear_checkpoint(const std::string& dir, const LlamaModel& model, const LinearizeOptions& o,
                                   const std::string& base_model_hash) {
    fs::path out(dir), tmp = dir + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        save_tensors((tmp / "linear.safetensors").string(), linearized_tensors(model));
        write_file_atomic((tmp / "linearization.json").string(),
                          linearization_to_json(o, model->num_layers(), base_model_hash));
        std::string sha = sha256_file((tmp / "linear.safetensors").string());
        write_file_atomic((tmp / "checksum.txt").string(), sha + "  linear.safetensors\n");
        fs::path old = dir + ".old." + std::to_string(getpid());
        if (fs::exists(out)) fs::rename(out, old);
        fs::rename(tmp, out);
        fs::remove_all(old);
        return sha;
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        fail(dir, ": cannot write checkpoint: ", e.what());
    }
}

void load_linear_tensors(LlamaModel& model, const std::string& dir) {
    std::string file = dir + "/linear.safetensors";
    std::string recorded = read_file(dir + "/checksum.txt", 4096).substr(0, 64);
    std::string actual = sha256_file(file);
    if (recorded != actual)
        fail(file, ": sha256 ", actual, " does not match checksum.txt (", recorded, "); the checkpoint is corrupt");
    WeightStore w = WeightStore::open_file(file);
    torch::NoGradGuard ng;
    auto wanted = linearized_tensors(model);
    for (auto& [name, param] : wanted) {
        if (!w.has(name)) fail(file, ": tensor '", name, "' is missing");
        auto t = w.get(name, param.scalar_type());
        if (t.sizes() != param.sizes())
            fail(file, ": tensor '", name, "' has shape ", shape_str(t.sizes()), ", the model expects ",
                 shape_str(param.sizes()));
        param.copy_(t);
    }
    if (w.names().size() != wanted.size())
        fail(file, ": holds ", w.names().size(), " tensors, the linearization expects ", wanted.size());
}

LlamaModel load_linearized(const std::string& model_dir, const std::string& dir, torch::Dtype dtype) {
    std::string hash;
    LinearizeOptions o =
        linearization_from_json(read_file(dir + "/linearization.json", 1 << 20), dir + "/linearization.json", &hash);
    std::string actual = model_fingerprint(model_dir);
    if (hash != actual)
        fail(dir, "/linearization.json: base_model_hash ", hash.substr(0, 16), "... does not match the model in ",
             model_dir, " (", actual.substr(0, 16), "...)");
    LlamaModel model = load_llama(model_dir, torch::kFloat32);
    linearize(model, o);
    load_linear_tensors(model, dir);
    if (dtype != torch::kFloat32) model->to(dtype);
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    model->eval();
    return model;
}

std::string model_fingerprint(const std::string& model_dir) {
    Sha256 h;
    std::string config = read_file(model_dir + "/config.json", 16 << 20);
    h.update(config.data(), config.size());
    std::vector<std::string> files;
    for (auto& e : fs::directory_iterator(model_dir))
        if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
        MappedFile m = MappedFile::open(f);
        uint64_t n = 0;
        if (m.size() >= 8) std::memcpy(&n, m.data(), 8);
        size_t head = size_t(std::min<uint64_t>(m.size(), 8 + std::min<uint64_t>(n, kMaxSafetensorsHeaderBytes)));
        h.update(m.data(), head);
        uint64_t size = m.size();
        h.update(&size, 8);
    }
    return h.hex_digest();
}

}  // namespace lincat
