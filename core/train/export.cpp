#include "train/export.h"

#include <unistd.h>

#include <filesystem>

#include "model/fingerprint.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/linearized_model.h"
#include "util/error.h"
#include "util/file.h"

namespace lincat {

namespace fs = std::filesystem;

std::string export_linearized_model(const std::string& model_dir, const std::string& checkpoint_dir,
                                    const std::string& out_dir, const std::string& model_card) {
    if (fs::exists(out_dir)) fail(out_dir, ": already exists; export writes a new folder");
    LlamaModel model = load_linearized(model_dir, checkpoint_dir, torch::kFloat32);  // adapters merged
    LinearizeOptions o = checkpoint_linearization(checkpoint_dir, nullptr);
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
        if (!model_card.empty()) write_file_atomic((tmp / "README.md").string(), model_card);
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

}  // namespace lincat
