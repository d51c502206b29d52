#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "attention/transfer.h"
#include "model/weights.h"
#include "store/checksums.h"
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
                                   const std::string& base_model_hash, const LoraOptions* lora,
                                   const std::function<void(const std::string&)>& extra) {
    std::vector<std::pair<std::string, torch::Tensor>> adapters;
    if (lora) {
        adapters = lora_tensors(model);
        if (adapters.empty()) fail(dir, ": cannot write checkpoint: the model has no LoRA adapters attached");
    }
    return save_checkpoint_tensors(dir, linearized_tensors(model), o, model->num_layers(), base_model_hash, lora,
                                   adapters, extra);
}

std::string save_checkpoint_tensors(const std::string& dir,
                                    const std::vector<std::pair<std::string, torch::Tensor>>& linear,
                                    const LinearizeOptions& o, int64_t num_layers, const std::string& base_model_hash,
                                    const LoraOptions* lora,
                                    const std::vector<std::pair<std::string, torch::Tensor>>& adapters,
                                    const std::function<void(const std::string&)>& extra) {
    fs::path out(dir), tmp = dir + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        save_tensors((tmp / "linear.safetensors").string(), linear);
        write_file_atomic((tmp / "linearization.json").string(), linearization_to_json(o, num_layers, base_model_hash));
        if (lora) {
            if (adapters.empty()) fail("the checkpoint has LoRA options but no adapter tensors");
            save_tensors((tmp / "adapter.safetensors").string(), adapters);
            write_file_atomic((tmp / "adapter.json").string(), lora_options_to_json(*lora));
        }
        if (extra) extra(tmp.string());
        write_checksums(tmp.string());
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

LinearizeOptions checkpoint_linearization(const std::string& dir, std::string* base_model_hash) {
    verify_checksum(dir, "linearization.json");
    const std::string path = dir + "/linearization.json";
    return linearization_from_json(read_file(path, 1 << 20), path, base_model_hash);
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
    verify_checksum(dir, "adapter.json");
    return lora_options_from_json(read_file(dir + "/adapter.json", 1 << 20), dir + "/adapter.json");
}

void load_lora_tensors(LlamaModel& model, const std::string& dir) {
    verify_checksum(dir, "adapter.safetensors");
    load_named_tensors(dir + "/adapter.safetensors", lora_tensors(model), "the LoRA adapters");
}

}  // namespace lincat
