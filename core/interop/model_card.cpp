#include "interop/model_card.h"

#include <algorithm>
#include <cstdio>

#include "store/run_evaluation.h"
#include "util/error.h"
#include "util/json.h"

namespace lincat {

ExportFormat parse_export_format(const std::string& name) {
    if (name == "hf") return ExportFormat::HuggingFace;
    if (name == "lolcats") return ExportFormat::Lolcats;
    if (name == "peft") return ExportFormat::Peft;
    fail("--format '", name, "': hf (a whole merged Hugging Face folder), lolcats or peft");
}

const char* export_format_name(ExportFormat format) {
    switch (format) {
        case ExportFormat::HuggingFace:
            return "hf";
        case ExportFormat::Lolcats:
            return "lolcats";
        case ExportFormat::Peft:
            return "peft";
    }
    return "?";
}

static int64_t trained_tokens(const Workspace& ws, int64_t run) {
    int64_t tokens = -1;
    for (auto& s : ws.steps(run, "train")) tokens = std::max(tokens, s.tokens);
    return tokens;
}

void fill_model_card_from_run(const Workspace& ws, int64_t run, ModelCardFacts& f) {
    RunRecord r = ws.run(run);
    f.source = "run " + std::to_string(run) + " (" + run_kind_name(r.kind) + ") of the workspace " + ws.dir();
    json config = json::parse(r.config_json, nullptr, false);
    if (r.kind == RunKind::Finetune) {
        f.stage2_tokens = trained_tokens(ws, run);
        const int64_t s1 = config.is_object() ? config.value("stage1_run", int64_t(0)) : 0;
        if (s1 > 0) f.stage1_tokens = trained_tokens(ws, s1);
    } else {
        f.stage1_tokens = trained_tokens(ws, run);
    }
    if (config.is_object() && config.contains("imported_from"))
        f.source += ", imported from the LoLCATs checkpoint " + config["imported_from"].value("distill", std::string());
    f.eval_json = newest_evaluation(ws, run).value_or("");
}

static std::string layer_list(const std::vector<int64_t>& layers) {
    std::string s;
    for (size_t i = 0; i < layers.size(); ++i) s += (i ? ", " : "") + std::to_string(layers[i]);
    return s;
}

static std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string model_card_markdown(const ModelCardFacts& f) {
    const LinearizeOptions& o = f.linearize;
    const std::vector<int64_t> linear = linearized_layers(o, f.num_layers);
    std::vector<int64_t> kept;
    for (int64_t l = 0; l < f.num_layers; ++l)
        if (std::find(linear.begin(), linear.end(), l) == linear.end()) kept.push_back(l);
    const bool tk = o.window.kind == WindowKind::Terraced;
    const char* what = f.format == ExportFormat::HuggingFace ? "a whole model folder, LoRA merged into the weights"
                       : f.format == ExportFormat::Lolcats
                           ? "a LoLCATs checkpoint (distill.pt, finetune.pt and their YAML, as HazyResearch/lolcats "
                             "writes and reads them)"
                           : "a PEFT LoRA adapter (adapter_model.safetensors + adapter_config.json)";

    std::string s = "---\nbase_model: " + f.base_model + "\ntags:\n- linear-attention\n- lolcats\n- lincat\n";
    if (f.format == ExportFormat::Peft) s += "library_name: peft\n";
    s += "---\n\n# " + (f.family.empty() ? f.base_model : f.family) + ", linearized (LoLCATs, made with Lincat)\n\n";
    s += "This is " + std::string(what) + " of `" + f.base_model + "` whose softmax attention in " +
         std::to_string(linear.size()) + " of " + std::to_string(f.num_layers) +
         " layers was replaced by hybrid attention: softmax over a small window plus learned linear attention over "
         "everything before it, so attention costs O(n) in the sequence length and decoding keeps a constant-size "
         "state.\n\n";
    s += "## Method\n\n| | |\n|---|---|\n";
    s += "| window | " + std::string(tk ? "tk (terraced blocks" : "sw (sliding") + " of " +
         std::to_string(o.window.size) + ")" +
         (tk ? std::string(", blocks aligned to the sequence ") + (o.window.align == BlockAlign::End ? "end" : "start")
             : "") +
         " |\n";
    s += "| decoding window | " + std::string(o.decode_window == WindowKind::Terraced ? "tk" : "sliding") + " |\n";
    s += "| feature map | " + feature_map_kind_name(o.feature_map) + ", feature dim " + std::to_string(o.feature_dim) +
         " per head, separate maps for queries and keys |\n";
    s += "| attention factors | " +
         std::string(o.affine ? "affine (linear part weighted 1 - gamma)"
                              : "gamma_h = sigmoid(window_factors) on the window, 1 on the linear part") +
         " |\n";
    s += "| linearized layers | " + layer_list(linear) + " |\n";
    if (!kept.empty()) s += "| softmax layers | " + layer_list(kept) + " |\n";
    s += "| stage 1 | attention transfer: MSE of each layer's attention output against the softmax teacher";
    s += f.stage1_tokens >= 0 ? ", " + std::to_string(f.stage1_tokens) + " tokens |\n" : " |\n";
    if (f.lora) {
        std::string targets;
        for (auto& t : f.lora->targets) targets += (targets.empty() ? "" : ", ") + t;
        s += "| stage 2 | LoRA rank " + std::to_string(f.lora->rank) + ", alpha " + fixed(f.lora->alpha, 1) + " on " +
             targets;
        s += f.stage2_tokens >= 0 ? ", " + std::to_string(f.stage2_tokens) + " tokens |\n" : " |\n";
    } else {
        s += "| stage 2 | none |\n";
    }
    if (!f.source.empty()) s += "| source | " + f.source + " |\n";
    if (tk && o.window.align == BlockAlign::Start)
        s += "\nThe tk blocks were aligned to the sequence start in training; LoLCATs' own forward aligns them to the "
             "end. Both give the same outputs whenever the window divides the sequence length.\n";

    s += "\n## Evaluation\n\n";
    json e = f.eval_json.empty() ? json() : json::parse(f.eval_json, nullptr, false);
    if (e.is_object() && e.contains("teacher_ppl") && e.contains("student_ppl")) {
        const double t = e["teacher_ppl"].get<double>(), st = e["student_ppl"].get<double>();
        s += "Held-out text, " + std::to_string(e.value("tokens", int64_t(0))) +
             " tokens, against the softmax base model (`lincat eval`):\n\n";
        s += "| | base model | linearized |\n|---|---|---|\n";
        s += "| perplexity | " + fixed(t, 3) + " | " + fixed(st, 3) + " (" + (st >= t ? "+" : "") +
             fixed(100 * (st / t - 1), 1) + "%) |\n";
        if (e.contains("top1_agreement"))
            s += "| top-1 agreement with the base model | | " + fixed(100 * e["top1_agreement"].get<double>(), 2) +
                 "% |\n";
        if (e.contains("kl"))
            s += "| KL(base \\|\\| linearized), nats/token | | " + fixed(e["kl"].get<double>(), 4) + " |\n";
        if (e.contains("layers") && e.contains("layer_mse") && e["layers"].size() == e["layer_mse"].size()) {
            s += "\n| layer | attention-output MSE |\n|---|---|\n";
            for (size_t i = 0; i < e["layers"].size(); ++i) {
                char buf[64];
                std::snprintf(buf, sizeof buf, "%.4g", e["layer_mse"][i].get<double>());
                s += "| " + std::to_string(e["layers"][i].get<int64_t>()) + " | " + buf + " |\n";
            }
        }
    } else {
        s += "No evaluation was recorded for this checkpoint. Run `lincat eval` on it and export again to fill this "
             "section.\n";
    }

    s += "\n## Use\n\n";
    if (f.format == ExportFormat::HuggingFace)
        s += "The weights load in any Llama-style loader, but only as a softmax model: the hybrid attention lives in "
             "`linearization/` and needs Lincat (or LoLCATs' code) to run.\n\n"
             "    lincat generate --model . --checkpoint linearization --prompt \"Once upon a time\"\n";
    else if (f.format == ExportFormat::Lolcats)
        s += "With LoLCATs: load the base model, convert its attention with `model.yaml`, then load `distill.pt` (and "
             "`finetune.pt` with the LoRA of `finetune.yaml`) with `load_state_dict(..., strict=False)`. With "
             "Lincat:\n\n"
             "    lincat import-lolcats --model BASE --checkpoint distill.pt --finetune finetune.pt \\\n"
             "        --config model.yaml --finetune-config finetune.yaml --workspace WS\n";
    else
        s += "`PeftModel.from_pretrained(base, \".\")` attaches the LoRA adapters. The linear-attention feature maps "
             "are not part of a PEFT adapter: export them with `lincat export --format lolcats`.\n";
    return s;
}

}  // namespace lincat
