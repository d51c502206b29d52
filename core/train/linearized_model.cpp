#include "train/linearized_model.h"

#include "attention/linearize.h"
#include "model/fingerprint.h"
#include "model/lora_model.h"
#include "train/checkpoint.h"
#include "util/compute.h"
#include "util/error.h"
#include "util/file.h"

namespace lincat {

void apply_checkpoint(LlamaModel& model, const std::string& base_hash, const std::string& model_dir,
                      const std::string& dir, bool merge_adapters) {
    std::string hash;
    LinearizeOptions o = checkpoint_linearization(dir, &hash);
    if (hash != base_hash)
        fail(dir, "/linearization.json: base_model_hash ", hash.substr(0, 16), "... does not match the model in ",
             model_dir, " (", base_hash.substr(0, 16), "...)");
    linearize(model, o);
    load_linear_tensors(model, dir);
    if (auto lora = checkpoint_lora(dir)) {
        attach_lora(model, *lora);
        load_lora_tensors(model, dir);
        if (merge_adapters) merge_lora(model);
    }
    for (auto& p : model->parameters()) p.set_requires_grad(false);
}

LlamaModel load_linearized(const std::string& model_dir, const std::string& dir, std::optional<torch::Dtype> dtype_arg,
                           bool merge_adapters) {
    const torch::Dtype dtype = dtype_arg.value_or(compute().dtype);  // fp32 weights are loaded, then cast
    const std::string hash = model_fingerprint(model_dir);
    checkpoint_linearization(dir, nullptr);  // a bad checkpoint is refused before the weights load
    LlamaModel model = load_llama(model_dir, torch::kFloat32);
    apply_checkpoint(model, hash, model_dir, dir, merge_adapters);
    if (dtype != torch::kFloat32) {
        model->to(dtype);
        for (auto& s : lora_slots(model, lora_target_names()))
            if (*s.adapter) (*s.adapter)->to(dtype);
    }
    for (auto& p : model->parameters()) p.set_requires_grad(false);
    model->eval();
    return model;
}

}  // namespace lincat
