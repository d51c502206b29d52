// lincat export (a whole merged Hugging Face folder, a LoLCATs checkpoint or a PEFT adapter,
// each with a model card) and lincat import-lolcats (LoLCATs checkpoints into workspace runs).
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "interop/lolcats.h"
#include "interop/model_card.h"
#include "model/config.h"
#include "model/model_dir.h"
#include "train/checkpoint.h"
#include "train/export.h"
#include "util/error.h"
#include "util/events.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat::cli {

// What the card says about the base model: its Hugging Face name when config.json has one.
static std::string base_model_name(const std::string& model_dir) {
    json c = json::parse(read_file(model_dir + "/config.json", 1 << 20), nullptr, false);
    if (c.is_object() && c.contains("_name_or_path") && c["_name_or_path"].is_string() &&
        !c["_name_or_path"].get<std::string>().empty())
        return c["_name_or_path"];
    return std::filesystem::path(model_dir).lexically_normal().filename().string();
}

int cmd_export(const Argv& argv) {
    Args a(
        "export",
        {{"model", "base model folder or cache name", false, "default"},
         {"workspace", "workspace folder (with --run)"},
         {"run", "export this run's best checkpoint"},
         {"checkpoint", "or: a linearized checkpoint folder"},
         {"format", "hf (whole merged model folder), lolcats (distill.pt + finetune.pt + YAML) or peft (LoRA adapter)",
          false, "hf"},
         {"out", "new output folder"}},
        argv);
    if (!a.has("out")) fail("--out DIR is required\n", a.help());
    const ExportFormat format = parse_export_format(a.get("format", "hf"));
    std::string model_dir = resolve_model_dir(a.get("model", "default"));
    std::string checkpoint = checkpoint_from_args(a);
    if (checkpoint.empty()) fail("give --run N (with --workspace) or --checkpoint DIR\n", a.help());

    ModelConfig mc = load_model_config(model_dir + "/config.json");
    ModelCardFacts card;
    card.format = format;
    card.base_model = base_model_name(model_dir);
    card.family = model_family_name(mc);
    card.num_layers = mc.num_hidden_layers;
    card.linearize = checkpoint_linearization(checkpoint, nullptr);
    card.lora = checkpoint_lora(checkpoint);
    card.source = checkpoint;
    if (a.has("run")) fill_model_card_from_run(Workspace::open(a.get("workspace")), a.get_int("run", 0), card);
    const std::string text = model_card_markdown(card);
    const std::string out = a.get("out");

    std::vector<std::string> files;
    if (format == ExportFormat::HuggingFace) {
        ExportReport r = export_linearized_model(model_dir, checkpoint, out, text);
        std::printf("exported %s + %s -> %s (%s weights; README.md is its model card)\n", model_dir.c_str(),
                    checkpoint.c_str(), out.c_str(), r.dtype.c_str());
        if (r.merged_projections > 0) {
            std::printf(
                "LoRA merged into %lld projections in fp32, cast once to %s: rounding up to %.3g against LoRA "
                "updates up to %.3g\n",
                (long long)r.merged_projections, r.dtype.c_str(), r.max_cast_rounding, r.max_lora_update);
            if (r.max_cast_rounding >= 0.5 * r.max_lora_update)
                std::printf(
                    "warning: %s rounding is as large as the LoRA updates; the merged weights keep little of "
                    "stage 2 (use --format peft or lolcats to keep the adapters apart)\n",
                    r.dtype.c_str());
        }
        std::printf("use: lincat generate --model %s --checkpoint %s\n", out.c_str(), r.linearization_dir.c_str());
        emit_event("result", {{"format", "hf"},
                              {"out", out},
                              {"dtype", r.dtype},
                              {"merged_projections", r.merged_projections},
                              {"max_lora_update", r.max_lora_update},
                              {"max_cast_rounding", r.max_cast_rounding}});
        return 0;
    }
    files = format == ExportFormat::Lolcats ? export_lolcats(model_dir, checkpoint, out, text)
                                            : export_peft(model_dir, checkpoint, out, text);
    std::printf("exported %s as %s -> %s:", checkpoint.c_str(), export_format_name(format), out.c_str());
    for (auto& f : files) std::printf(" %s", f.c_str());
    std::printf("\n");
    emit_event("result", {{"format", export_format_name(format)}, {"out", out}, {"files", files}});
    return 0;
}

int cmd_import_lolcats(const Argv& argv) {
    Args a("import-lolcats",
           {{"model", "base model folder or cache name (the model the LoLCATs run converted)", false, "default"},
            {"workspace", "workspace folder the runs are recorded in"},
            {"checkpoint", "LoLCATs distill checkpoint (.pt: feature maps, window factors)"},
            {"finetune", "LoLCATs finetune checkpoint (.pt: LoRA), optional"},
            {"config", "the LoLCATs model config (.yaml, its attention: block)"},
            {"finetune-config", "the LoLCATs finetune config (.yaml: LoRA r, alpha, targets)", false,
             "alpha 16, targets from the tensors"},
            {"json", "print the result as JSON", true}},
           argv);
    for (const char* required : {"workspace", "checkpoint", "config"})
        if (!a.has(required)) fail("--", required, " is required\n", a.help());
    if (a.has("finetune-config") && !a.has("finetune")) fail("--finetune-config needs --finetune");
    const std::string model_dir = resolve_model_dir(a.get("model", "default"));
    Workspace ws = Workspace::open(a.get("workspace"));
    LolcatsImportFiles f;
    f.distill = a.get("checkpoint");
    f.finetune = a.get("finetune", "");
    f.config = a.get("config");
    f.finetune_config = a.get("finetune-config", "");
    LolcatsImport r = import_lolcats(ws, model_dir, f);
    json doc = {{"distill_run", r.distill_run},
                {"finetune_run", r.finetune_run},
                {"checkpoint", r.checkpoint},
                {"notes", r.notes}};
    emit_event("result", doc);
    if (a.flag("json")) {
        std::printf("%s\n", doc.dump().c_str());
        return 0;
    }
    for (auto& n : r.notes) std::printf("note: %s\n", n.c_str());
    std::printf("imported %s%s%s -> run %lld (distill)", f.distill.c_str(), f.finetune.empty() ? "" : " + ",
                f.finetune.c_str(), (long long)r.distill_run);
    if (r.finetune_run) std::printf(", run %lld (finetune)", (long long)r.finetune_run);
    const long long last = (long long)(r.finetune_run ? r.finetune_run : r.distill_run);
    std::printf("\nnext: lincat eval --model %s --workspace %s --run %lld [--data FILE]\n", model_dir.c_str(),
                ws.dir().c_str(), last);
    return 0;
}

}  // namespace lincat::cli
