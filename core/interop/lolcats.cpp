#include "interop/lolcats.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "interop/lolcats_format.h"
#include "interop/torch_file.h"
#include "model/config.h"
#include "model/fingerprint.h"
#include "model/weights.h"
#include "store/checksums.h"
#include "train/checkpoint.h"
#include "train/distill_config.h"
#include "train/finetune_config.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

namespace fs = std::filesystem;

namespace {

struct Collected {
    std::map<std::string, torch::Tensor> linear;    // our names
    std::map<std::string, torch::Tensor> adapters;  // our names
    int64_t rank = 0;
    std::set<std::string> projections;
};

void collect(const NamedTensors& tensors, const std::string& file, const ModelConfig& mc, const LinearizeOptions& o,
             const std::string& config_file, Collected& c) {
    const std::vector<int64_t> layers = linearized_layers(o, mc.num_hidden_layers);
    const std::set<int64_t> linear(layers.begin(), layers.end());
    const int64_t H = mc.num_attention_heads, d = mc.head_dim, f = o.feature_dim;
    std::set<std::string> seen_here;
    for (auto& [key, t] : tensors) {
        auto k = parse_lolcats_key(key);
        if (!k)
            fail(file, ": key '", key,
                 "' is not a LoLCATs tensor (layers.N.self_attn.feature_map_{q,k}.mlp.layer, window_factors, "
                 "{q,k,v,o}_proj.lora_{A,B}.weight)");
        if (k->layer >= mc.num_hidden_layers)
            fail(file, ": '", key, "' names layer ", k->layer, "; the model has ", mc.num_hidden_layers, " layers");
        if (!torch::isFloatingType(t.scalar_type()))
            fail(file, ": '", key, "' holds ", t.dtype().name(), " values, not floating point");
        std::vector<int64_t> want;
        const bool lora = k->tensor == LolcatsTensor::LoraA || k->tensor == LolcatsTensor::LoraB;
        if (!lora && !linear.count(k->layer))
            fail(file, ": '", key, "' trains layer ", k->layer, ", which ", config_file,
                 " keeps softmax (softmax_attentions)");
        if (k->tensor == LolcatsTensor::FeatureMapQ || k->tensor == LolcatsTensor::FeatureMapK) want = {H, d, f};
        if (k->tensor == LolcatsTensor::WindowFactors) want = {1, H, 1, 1};
        if (lora) {
            auto [in, out] = mc.projection_features(k->projection);
            const int64_t r = t.dim() == 2 ? (k->tensor == LolcatsTensor::LoraA ? t.size(0) : t.size(1)) : -1;
            if (c.rank == 0 && r > 0) c.rank = r;
            want = k->tensor == LolcatsTensor::LoraA ? std::vector<int64_t>{c.rank, in}
                                                     : std::vector<int64_t>{out, c.rank};
            c.projections.insert(k->projection);
        }
        if (t.sizes().vec() != want)
            fail(file, ": '", key, "' has shape ", shape_str(t.sizes()), "; ", config_file, " and the model give ",
                 shape_str(want), lora ? " (every adapter must have the same rank)" : "");
        const std::string ours = lincat_tensor_name(*k);
        if (seen_here.count(ours)) fail(file, ": '", key, "' appears twice (under two prefixes)");
        seen_here.insert(ours);
        torch::Tensor v = t.to(torch::kFloat32).contiguous();
        if (k->tensor == LolcatsTensor::WindowFactors) v = v.view({H});
        if (!torch::isfinite(v).all().item<bool>()) fail(file, ": '", key, "' holds NaN or infinite values");
        (lora ? c.adapters : c.linear)[ours] = v;  // a finetune file's feature maps replace the distill file's
    }
}

NamedTensors sorted(const std::map<std::string, torch::Tensor>& m) {
    return NamedTensors(m.begin(), m.end());
}

json imported_from(const LolcatsImportFiles& f, int64_t step) {
    auto abs = [](const std::string& p) { return p.empty() ? p : fs::absolute(p).lexically_normal().string(); };
    return {{"format", "lolcats"},
            {"distill", abs(f.distill)},
            {"finetune", abs(f.finetune)},
            {"config", abs(f.config)},
            {"finetune_config", abs(f.finetune_config)},
            {"step", step}};
}

// Records a completed run whose best checkpoint is written by `save`; a failure marks it failed.
int64_t record_imported_run(Workspace& ws, RunKind kind, const json& config, const std::string& hash, int64_t step,
                            const std::function<std::string(const std::string& dir)>& save, std::string* dir_out) {
    const int64_t run = ws.create_run("default", kind, config.dump(), hash);
    const std::string dir = ws.dir() + "/checkpoints/run-" + std::to_string(run) + "/best";
    try {
        fs::create_directories(fs::path(dir).parent_path());
        const std::string sha = save(dir);
        ws.record_checkpoint(run, step, dir, sha, /*is_best=*/true);
    } catch (const std::exception& e) {
        ws.set_run_status(run, RunStatus::Failed, e.what());
        throw;
    }
    ws.set_run_status(run, RunStatus::Completed, "imported from LoLCATs");
    *dir_out = dir;
    return run;
}

// Writes into a temp folder beside out_dir and renames it into place.
void write_folder(const std::string& out_dir, const std::function<void(const fs::path&)>& body) {
    if (fs::exists(out_dir)) fail(out_dir, ": already exists; export writes a new folder");
    fs::path tmp = out_dir + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        body(tmp);
        fs::rename(tmp, out_dir);
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        fail(out_dir, ": cannot export: ", e.what());
    }
}

struct CheckpointTensors {
    LinearizeOptions linearize;
    ModelConfig model;
    NamedTensors distill;  // LoLCATs names
    std::optional<LoraOptions> lora;
    std::vector<std::pair<LolcatsKey, torch::Tensor>> adapters;
};

CheckpointTensors read_checkpoint_tensors(const std::string& model_dir, const std::string& dir) {
    CheckpointTensors c;
    std::string hash;
    c.linearize = checkpoint_linearization(dir, &hash);
    if (c.linearize.gate != GateKind::None)
        fail(dir, "/linearization.json: field 'gate' is '", gate_kind_name(c.linearize.gate),
             "'; LoLCATs' layout (and a PEFT adapter over it) has no gated linear attention, so this checkpoint "
             "exports only as a lincat checkpoint");
    const std::string base = model_fingerprint(model_dir);
    if (hash != base)
        fail(dir, "/linearization.json: base_model_hash ", hash.substr(0, 16), "... does not match the model in ",
             model_dir, " (", base.substr(0, 16), "...)");
    c.model = load_model_config(model_dir + "/config.json");
    const int64_t H = c.model.num_attention_heads;
    verify_checksum(dir, "linear.safetensors");
    WeightStore w = WeightStore::open_file(dir + "/linear.safetensors");
    size_t used = 0;
    for (int64_t l : linearized_layers(c.linearize, c.model.num_hidden_layers))
        for (LolcatsTensor t : {LolcatsTensor::FeatureMapQ, LolcatsTensor::FeatureMapK, LolcatsTensor::WindowFactors}) {
            LolcatsKey k{l, t, ""};
            const std::string name = lincat_tensor_name(k);
            if (!w.has(name)) fail(dir, "/linear.safetensors: tensor '", name, "' is missing");
            torch::Tensor v = w.get(name, torch::kFloat32);
            if (t == LolcatsTensor::WindowFactors) v = v.view({1, H, 1, 1});
            c.distill.push_back({lolcats_key_name(k), v.contiguous()});
            ++used;
        }
    if (used != w.names().size())
        fail(dir, "/linear.safetensors: holds ", w.names().size(), " tensors; LoLCATs' layout has a place for ", used,
             " (feature maps with a bias have none)");
    c.lora = checkpoint_lora(dir);
    if (c.lora) {
        verify_checksum(dir, "adapter.safetensors");
        WeightStore a = WeightStore::open_file(dir + "/adapter.safetensors");
        for (int64_t l = 0; l < c.model.num_hidden_layers; ++l)
            for (auto& p : c.lora->targets)
                for (LolcatsTensor t : {LolcatsTensor::LoraA, LolcatsTensor::LoraB}) {
                    LolcatsKey k{l, t, p};
                    const std::string name = lincat_tensor_name(k);
                    if (!a.has(name)) fail(dir, "/adapter.safetensors: tensor '", name, "' is missing");
                    c.adapters.push_back({k, a.get(name, torch::kFloat32).contiguous()});
                }
    }
    return c;
}

}  // namespace

LolcatsImport import_lolcats(Workspace& ws, const std::string& model_dir, const LolcatsImportFiles& f) {
    const ModelConfig mc = load_model_config(model_dir + "/config.json");
    LolcatsAttention att = lolcats_attention_from_yaml(read_file(f.config, 1 << 20), f.config, mc.num_hidden_layers);
    const LinearizeOptions& o = att.linearize;
    LolcatsImport out;

    int64_t step = 0;
    Collected c;
    collect(read_torch_state_dict(f.distill, "model_state_dict", &step), f.distill, mc, o, f.config, c);
    if (!c.adapters.empty()) fail(f.distill, ": holds LoRA tensors; give the finetune checkpoint as --finetune");
    if (!f.finetune.empty()) {
        int64_t ft_step = 0;
        const size_t before = c.linear.size();
        std::map<std::string, torch::Tensor> distilled = c.linear;
        collect(read_torch_state_dict(f.finetune, "model_state_dict", &ft_step), f.finetune, mc, o, f.config, c);
        if (c.adapters.empty()) fail(f.finetune, ": holds no LoRA tensors (lora_A / lora_B)");
        if (c.linear.size() != before)
            fail(f.finetune, ": trains feature maps of layers the distill checkpoint has not");
        for (auto& [name, t] : distilled)
            if (!c.linear[name].equal(t)) {
                out.notes.push_back(f.finetune +
                                    " also holds feature maps and window factors (trained in stage 2); "
                                    "they replace the distill checkpoint's");
                break;
            }
    }

    // Every linearized layer needs both feature maps; window factors are all there or all absent
    // (train_window_factor: false keeps them at init_window_factor, a buffer LoLCATs never saves).
    const int64_t H = mc.num_attention_heads;
    size_t factors = 0;
    const std::vector<int64_t> layers = linearized_layers(o, mc.num_hidden_layers);
    for (int64_t l : layers) {
        for (LolcatsTensor t : {LolcatsTensor::FeatureMapQ, LolcatsTensor::FeatureMapK})
            if (!c.linear.count(lincat_tensor_name({l, t, ""})))
                fail(f.distill, ": has no '", lolcats_key_name({l, t, ""}), "' (", f.config, " linearizes layer ", l,
                     ")");
        factors += c.linear.count(lincat_tensor_name({l, LolcatsTensor::WindowFactors, ""}));
    }
    if (factors == 0) {
        for (int64_t l : layers)
            c.linear[lincat_tensor_name({l, LolcatsTensor::WindowFactors, ""})] =
                torch::full({H}, att.init_window_factor, torch::kFloat32);
        out.notes.push_back("no window_factors in " + f.distill + ": every head uses init_window_factor " +
                            std::to_string(att.init_window_factor) + " from " + f.config);
    } else if (factors != layers.size()) {
        fail(f.distill, ": has window_factors for ", factors, " of the ", layers.size(), " linearized layers");
    }

    std::optional<LoraOptions> lora;
    if (!c.adapters.empty()) {
        LoraOptions lo;
        if (!f.finetune_config.empty()) {
            lo = lolcats_lora_from_yaml(read_file(f.finetune_config, 1 << 20), f.finetune_config);
            if (lo.rank != c.rank)
                fail(f.finetune_config, ": r ", lo.rank, " but the adapters in ", f.finetune, " have rank ", c.rank);
            if (std::set<std::string>(lo.targets.begin(), lo.targets.end()) != c.projections)
                fail(f.finetune_config, ": target_modules differ from the projections adapted in ", f.finetune);
        } else {
            lo.rank = c.rank;
            lo.targets.clear();
            for (auto& p : {"q_proj", "k_proj", "v_proj", "o_proj"})
                if (c.projections.count(p)) lo.targets.push_back(p);
            out.notes.push_back("LoRA alpha " + std::to_string(int(lo.alpha)) +
                                " assumed (LoLCATs' default); give --finetune-config for the run's own");
        }
        for (int64_t l = 0; l < mc.num_hidden_layers; ++l)
            for (auto& p : lo.targets)
                for (LolcatsTensor t : {LolcatsTensor::LoraA, LolcatsTensor::LoraB})
                    if (!c.adapters.count(lincat_tensor_name({l, t, p})))
                        fail(f.finetune, ": has no '", lolcats_key_name({l, t, p}),
                             "' (every layer's adapted projections need lora_A and lora_B)");
        lora = lo;
    }

    // Everything is checked: record the runs.
    const std::string hash = model_fingerprint(model_dir);
    const NamedTensors linear = sorted(c.linear);
    DistillConfig dc;
    dc.linearize = o;
    json config = parse_json(dc.to_json(), "config");
    config["imported_from"] = imported_from(f, step);
    out.distill_run = record_imported_run(
        ws, RunKind::Distill, config, hash, step,
        [&](const std::string& dir) { return save_checkpoint_tensors(dir, linear, o, mc.num_hidden_layers, hash); },
        &out.checkpoint);
    if (lora) {
        FinetuneConfig fc;
        fc.stage1_run = out.distill_run;
        fc.stage1_checkpoint = out.checkpoint;
        fc.lora = *lora;
        fc.data = dc.data;
        json fconfig = parse_json(fc.to_json(), "config");
        fconfig["imported_from"] = imported_from(f, step);
        const NamedTensors adapters = sorted(c.adapters);
        out.finetune_run = record_imported_run(
            ws, RunKind::Finetune, fconfig, hash, step,
            [&](const std::string& dir) {
                return save_checkpoint_tensors(dir, linear, o, mc.num_hidden_layers, hash, &*lora, adapters);
            },
            &out.checkpoint);
    }
    return out;
}

std::vector<std::string> export_lolcats(const std::string& model_dir, const std::string& checkpoint_dir,
                                        const std::string& out_dir, const std::string& model_card) {
    CheckpointTensors c = read_checkpoint_tensors(model_dir, checkpoint_dir);
    // Fails for maps LoLCATs has no name for, before anything is written.
    const std::string yaml =
        lolcats_model_yaml(c.linearize, c.model.num_hidden_layers, fs::absolute(model_dir).lexically_normal().string(),
                           c.model.torch_dtype);
    std::vector<std::string> files = {"distill.pt", "model.yaml"};
    write_folder(out_dir, [&](const fs::path& tmp) {
        write_torch_state_dict((tmp / "distill.pt").string(), "model_state_dict", c.distill, 0);
        write_file_atomic((tmp / "model.yaml").string(), yaml);
        if (c.lora) {
            NamedTensors ft;
            for (auto& [k, t] : c.adapters) ft.push_back({lolcats_key_name(k), t});
            write_torch_state_dict((tmp / "finetune.pt").string(), "model_state_dict", ft, 0);
            write_file_atomic((tmp / "finetune.yaml").string(), lolcats_finetune_yaml(*c.lora));
        }
        if (!model_card.empty()) write_file_atomic((tmp / "README.md").string(), model_card);
    });
    if (c.lora) files.insert(files.end(), {"finetune.pt", "finetune.yaml"});
    if (!model_card.empty()) files.push_back("README.md");
    return files;
}

std::vector<std::string> export_peft(const std::string& model_dir, const std::string& checkpoint_dir,
                                     const std::string& out_dir, const std::string& model_card) {
    CheckpointTensors c = read_checkpoint_tensors(model_dir, checkpoint_dir);
    if (!c.lora)
        fail(checkpoint_dir,
             ": has no LoRA adapters (a stage-1 checkpoint); PEFT adapters come from stage 2. "
             "The feature maps export with --format lolcats");
    NamedTensors tensors;
    for (auto& [k, t] : c.adapters) tensors.push_back({peft_tensor_name(k), t});
    const std::string config = peft_adapter_config(*c.lora, fs::absolute(model_dir).lexically_normal().string());
    write_folder(out_dir, [&](const fs::path& tmp) {
        save_tensors((tmp / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
        write_file_atomic((tmp / "adapter_config.json").string(), config);
        if (!model_card.empty()) write_file_atomic((tmp / "README.md").string(), model_card);
    });
    std::vector<std::string> files = {"adapter_model.safetensors", "adapter_config.json"};
    if (!model_card.empty()) files.push_back("README.md");
    return files;
}

}  // namespace lincat
