#include "model/lora_model.h"

#include <algorithm>

#include "util/error.h"
#include "util/json.h"
#include "util/precision.h"

namespace lincat {

std::vector<LoraSlot> lora_slots(const LlamaModel& model, const std::vector<std::string>& targets) {
    for (auto& t : targets)
        if (std::find(lora_target_names().begin(), lora_target_names().end(), t) == lora_target_names().end())
            fail("LoRA target '", t, "' is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    std::vector<LoraSlot> out;
    for (int64_t l = 0; l < model->num_layers(); ++l) {
        auto layer = model->layer(l);
        auto& at = *layer->self_attn;
        auto& mlp = *layer->mlp;
        std::string prefix = "model.layers." + std::to_string(l) + ".";
        std::vector<LoraSlot> all = {{prefix + "self_attn.q_proj", &at.q_proj, &at.q_lora},
                                     {prefix + "self_attn.k_proj", &at.k_proj, &at.k_lora},
                                     {prefix + "self_attn.v_proj", &at.v_proj, &at.v_lora},
                                     {prefix + "self_attn.o_proj", &at.o_proj, &at.o_lora},
                                     {prefix + "mlp.gate_proj", &mlp.gate_proj, &mlp.gate_lora},
                                     {prefix + "mlp.up_proj", &mlp.up_proj, &mlp.up_lora},
                                     {prefix + "mlp.down_proj", &mlp.down_proj, &mlp.down_lora}};
        for (auto& s : all) {
            std::string shortname = s.name.substr(s.name.rfind('.') + 1);
            if (std::find(targets.begin(), targets.end(), shortname) != targets.end()) out.push_back(s);
        }
    }
    return out;
}

void attach_lora(const LlamaModel& model, const LoraOptions& o) {
    if (o.rank <= 0) fail("LoRA rank must be positive");
    if (!(o.alpha > 0)) fail("LoRA alpha must be positive");
    if (o.dropout < 0 || o.dropout >= 1) fail("LoRA dropout must be in [0, 1)");
    if (o.targets.empty()) fail("LoRA needs at least one target projection");
    for (auto& s : lora_slots(model, o.targets)) {
        auto w = (*s.base)->weight;
        *s.adapter = LoraAdapter(w.size(1), w.size(0), o.rank, o.alpha, o.dropout);
        (*s.adapter)->to(w.device(), kMasterDtype);  // fp32 masters (util/precision.h)
    }
}

static std::vector<LoraSlot> attached(const LlamaModel& model) {
    std::vector<LoraSlot> out;
    for (auto& s : lora_slots(model, lora_target_names()))
        if (*s.adapter) out.push_back(s);
    return out;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_tensors(const LlamaModel& model) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& s : attached(model)) {
        out.push_back({s.name + ".lora_A.weight", (*s.adapter)->A});
        out.push_back({s.name + ".lora_B.weight", (*s.adapter)->B});
    }
    return out;
}

std::vector<torch::Tensor> lora_parameters(const LlamaModel& model) {
    std::vector<torch::Tensor> out;
    for (auto& [name, t] : lora_tensors(model)) out.push_back(t);
    return out;
}

void set_lora_training(const LlamaModel& model, bool on) {
    for (auto& s : attached(model)) (*s.adapter)->train(on);
}

void merge_lora(const LlamaModel& model) {
    torch::NoGradGuard ng;
    for (auto& s : attached(model)) {
        auto& a = **s.adapter;
        auto w = (*s.base)->weight;
        auto delta = torch::matmul(a.B.to(torch::kFloat32), a.A.to(torch::kFloat32)) * a.scale;
        w.copy_((w.to(torch::kFloat32) + delta).to(w.scalar_type()));
        *s.adapter = nullptr;
    }
}

void detach_lora(const LlamaModel& model) {
    for (auto& s : attached(model)) *s.adapter = nullptr;
}

}  // namespace lincat
