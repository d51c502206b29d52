#include "train/export.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "model/config.h"
#include "model/fingerprint.h"
#include "model/lora_model.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/file.h"

namespace lincat {

namespace fs = std::filesystem;

static torch::Dtype base_dtype(const std::string& torch_dtype) {
    if (torch_dtype == "bfloat16") return torch::kBFloat16;
    if (torch_dtype == "float16") return torch::kFloat16;
    return torch::kFloat32;
}

ExportReport export_linearized_model(const std::string& model_dir, const std::string& checkpoint_dir,
                                     const std::string& out_dir, const std::string& model_card) {
    if (fs::exists(out_dir)) fail(out_dir, ": already exists; export writes a new folder");
    ExportReport report;
    const ModelConfig mc = load_model_config(model_dir + "/config.json");
    const torch::Dtype dtype = base_dtype(mc.torch_dtype);
    report.dtype = mc.torch_dtype == "bfloat16" || mc.torch_dtype == "float16" ? mc.torch_dtype : "float32";
    LlamaModel model = load_linearized(model_dir, checkpoint_dir, torch::kFloat32, /*merge_adapters=*/false);
    {
        torch::NoGradGuard ng;
        for (auto& s : lora_slots(model, lora_target_names())) {
            if (!*s.adapter) continue;
            auto& a = **s.adapter;
            auto delta = torch::matmul(a.B, a.A) * a.scale;
            auto merged = (*s.base)->weight + delta;
            report.max_lora_update = std::max(report.max_lora_update, delta.abs().max().item<double>());
            report.max_cast_rounding = std::max(
                report.max_cast_rounding, (merged.to(dtype).to(torch::kFloat32) - merged).abs().max().item<double>());
            ++report.merged_projections;
        }
    }
    merge_lora(model);  // in fp32: the one cast to the base dtype comes at the save
    LinearizeOptions o = checkpoint_linearization(checkpoint_dir, nullptr);
    fs::path tmp = out_dir + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        std::vector<std::pair<std::string, torch::Tensor>> base;
        for (auto& p : model->named_parameters())
            if (p.key().find(".self_attn.attn.") == std::string::npos) base.push_back({p.key(), p.value().to(dtype)});
        save_tensors((tmp / "model.safetensors").string(), base, {{"format", "pt"}});
        for (auto& e : fs::directory_iterator(model_dir)) {
            std::string name = e.path().filename().string();
            if (!e.is_regular_file() || e.path().extension() == ".safetensors" ||
                name == "model.safetensors.index.json")
                continue;
            fs::copy_file(e.path(), tmp / name);
        }
        if (!model_card.empty()) write_file_atomic((tmp / "README.md").string(), model_card);
        std::string hash = model_fingerprint(tmp.string());
        save_linear_checkpoint((tmp / "linearization").string(), model, o, hash);
        fs::rename(tmp, out_dir);
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        fail(out_dir, ": cannot export: ", e.what());
    }
    report.linearization_dir = out_dir + "/linearization";
    return report;
}

}  // namespace lincat
