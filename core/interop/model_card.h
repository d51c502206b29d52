// The README.md model card every export writes (Hugging Face's model-card layout: YAML front
// matter, then what the model is, how it was made, how it scores, how to run it). Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attention/spec.h"
#include "model/lora_options.h"
#include "store/workspace.h"

namespace lincat {

enum class ExportFormat { HuggingFace, Lolcats, Peft };
ExportFormat parse_export_format(const std::string& name);  // hf | lolcats | peft
const char* export_format_name(ExportFormat format);

struct ModelCardFacts {
    ExportFormat format = ExportFormat::HuggingFace;
    std::string base_model;  // what config.json's _name_or_path or the folder says
    std::string family;      // "Llama 3.1", ...
    int64_t num_layers = 0;
    LinearizeOptions linearize;
    std::optional<LoraOptions> lora;
    int64_t stage1_tokens = -1, stage2_tokens = -1;  // -1: not known (no workspace run)
    std::string source;                              // "run 3 of /path/ws" or the checkpoint folder
    std::string eval_json;                           // an evaluation document (lincat eval's), empty when none
};

// Tokens trained and the newest evaluation of `run` (and of its stage-1 run) from the workspace.
void fill_model_card_from_run(const Workspace& ws, int64_t run, ModelCardFacts& facts);

std::string model_card_markdown(const ModelCardFacts& facts);

}  // namespace lincat
