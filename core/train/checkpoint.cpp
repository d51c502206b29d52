#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "model/weights.h"
#include "train/transfer.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"
#include "util/sha256.h"

namespace lincat {

namespace fs = std::filesystem;

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
                                   const std::string& base_model_hash, const LoraOptions* lora) {
    fs::path out(dir), tmp = dir + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        save_tensors((tmp / "linear.safetensors").string(), linearized_tensors(model));
        write_file_atomic((tmp / "linearization.json").string(),
                          linearization_to_json(o, model->num_layers(), base_model_hash));
        std::string sums = sha256_file((tmp / "linear.safetensors").string()) + "  linear.safetensors\n";
        if (lora) {
            auto tensors = lora_tensors(model);
            if (tensors.empty()) fail("the model has no LoRA adapters attached");
            save_tensors((tmp / "adapter.safetensors").string(), tensors);
            write_file_atomic((tmp / "adapter.json").string(), lora_options_to_json(*lora));
            sums += sha256_file((tmp / "adapter.safetensors").string()) + "  adapter.safetensors\n";
        }
        write_file_atomic((tmp / "checksum.txt").string(), sums);
        fs::path old = dir + ".old." + std::to_string(getpid());
        if (fs::exists(out)) fs::rename(out, old);
        fs::rename(tmp, out);
        fs::remove_all(old);
        return sha256_file(dir + "/checksum.txt");
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        fail(dir, ": cannot write checkpoint: ", e.what());
    }
}

// Checks `file` (a name inside dir) against its line in dir/checksum.txt.
static void verify_checksum(const std::string& dir, const std::string& file) {
    std::string sums = read_file(dir + "/checksum.txt", 1 << 16);
    std::string recorded;
    size_t pos = 0;
    while (pos < sums.size()) {
        size_t end = sums.find('\n', pos);
        if (end == std::string::npos) end = sums.size();
        std::string line = sums.substr(pos, end - pos);
        if (line.size() > 66 && line.substr(66) == file) recorded = line.substr(0, 64);
        pos = end + 1;
    }
    if (recorded.empty()) fail(dir, "/checksum.txt: no sha256 recorded for ", file);
    std::string actual = sha256_file(dir + "/" + file);
    if (recorded != actual)
        fail(dir, "/", file, ": sha256 ", actual, " does not match checksum.txt (", recorded,
             "); the checkpoint is corrupt");
}

// Copies each wanted tensor from a safetensors file; every one must be there with its shape, nothing else.
static void load_named_tensors(const std::string& file,
                               const std::vector<std::pair<std::string, torch::Tensor>>& wanted,
                               const std::string& what) {
    WeightStore w = WeightStore::open_file(file);
    torch::NoGradGuard ng;
    for (auto& [name, param] : wanted) {
        if (!w.has(name)) fail(file, ": tensor '", name, "' is missing");
        auto t = w.get(name, param.scalar_type());
        if (t.sizes() != param.sizes())
            fail(file, ": tensor '", name, "' has shape ", shape_str(t.sizes()), ", the model expects ",
                 shape_str(param.sizes()));
        param.copy_(t);
    }
    if (w.names().size() != wanted.size())
        fail(file, ": holds ", w.names().size(), " tensors, ", what, " expects ", wanted.size());
}

void load_linear_tensors(LlamaModel& model, const std::string& dir) {
    verify_checksum(dir, "linear.safetensors");
    load_named_tensors(dir + "/linear.safetensors", linearized_tensors(model), "the linearization");
}

std::vector<std::string> load_linear_tensors_into(LlamaModel& model, const std::string& dir) {
    verify_checksum(dir, "linear.safetensors");
    const std::string file = dir + "/linear.safetensors";
    std::map<std::string, torch::Tensor> params;
    for (auto& [name, t] : linearized_tensors(model)) params[name] = t;
    WeightStore w = WeightStore::open_file(file);
    torch::NoGradGuard ng;
    std::vector<std::string> loaded;
    for (auto& name : w.names()) {
        auto it = params.find(name);
        if (it == params.end()) fail(file, ": tensor '", name, "' has no place in the linearized model");
        auto t = w.get(name, it->second.scalar_type());
        if (t.sizes() != it->second.sizes())
            fail(file, ": tensor '", name, "' has shape ", shape_str(t.sizes()), ", the model expects ",
                 shape_str(it->second.sizes()));
        it->second.copy_(t);
        loaded.push_back(name);
    }
    return loaded;
}

std::optional<LoraOptions> checkpoint_lora(const std::string& dir) {
    if (!fs::exists(dir + "/adapter.json")) return std::nullopt;
    return lora_options_from_json(read_file(dir + "/adapter.json", 1 << 20), dir + "/adapter.json");
}

void load_lora_tensors(LlamaModel& model, const std::string& dir) {
    verify_checksum(dir, "adapter.safetensors");
    load_named_tensors(dir + "/adapter.safetensors", lora_tensors(model), "the LoRA adapters");
}

LlamaModel load_linearized(const std::string& model_dir, const std::string& dir, std::optional<torch::Dtype> dtype_arg,
                           bool merge_adapters) {
    const torch::Dtype dtype = dtype_arg.value_or(compute().dtype);  // fp32 weights are loaded, then cast
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
    if (auto lora = checkpoint_lora(dir)) {
        attach_lora(model, *lora);
        load_lora_tensors(model, dir);
        if (merge_adapters) merge_lora(model);
    }
    if (dtype != torch::kFloat32) {
        model->to(dtype);
        for (auto& s : lora_slots(model, lora_target_names()))
            if (*s.adapter) (*s.adapter)->to(dtype);
    }
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    model->eval();
    return model;
}

std::string export_linearized_model(const std::string& model_dir, const std::string& checkpoint_dir,
                                    const std::string& out_dir) {
    if (fs::exists(out_dir)) fail(out_dir, ": already exists; export writes a new folder");
    LlamaModel model = load_linearized(model_dir, checkpoint_dir, torch::kFloat32);  // adapters merged
    LinearizeOptions o = linearization_from_json(read_file(checkpoint_dir + "/linearization.json", 1 << 20),
                                                 checkpoint_dir + "/linearization.json", nullptr);
    fs::path tmp = out_dir + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        std::vector<std::pair<std::string, torch::Tensor>> base;
        for (auto& p : model->named_parameters())
            if (p.key().find(".self_attn.attn.") == std::string::npos) base.push_back({p.key(), p.value()});
        save_tensors((tmp / "model.safetensors").string(), base, {{"format", "pt"}});
        for (auto& e : fs::directory_iterator(model_dir)) {
            std::string name = e.path().filename().string();
            if (!e.is_regular_file() || e.path().extension() == ".safetensors" ||
                name == "model.safetensors.index.json")
                continue;
            fs::copy_file(e.path(), tmp / name);
        }
        std::string hash = model_fingerprint(tmp.string());
        save_linear_checkpoint((tmp / "linearization").string(), model, o, hash);
        fs::rename(tmp, out_dir);
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        fail(out_dir, ": cannot export: ", e.what());
    }
    return out_dir + "/linearization";
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
