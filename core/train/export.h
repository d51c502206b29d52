// Exporting a linearized checkpoint as a whole Hugging Face model folder.
#pragma once

#include <cstdint>
#include <string>

namespace lincat {

// What the merge did: LoRA is folded into W in fp32 and cast once to the base model's dtype
// (config.json's torch_dtype), so the folder's weights match its config. The rounding of that
// one cast is measured against the size of the LoRA updates: where it is as large, the base
// dtype cannot hold what stage 2 learned.
struct ExportReport {
    std::string linearization_dir;  // out_dir + "/linearization"
    std::string dtype;              // of model.safetensors
    int64_t merged_projections = 0;
    double max_lora_update = 0;    // max |scale * B A| over the merged projections
    double max_cast_rounding = 0;  // max |cast(W + scale B A) - (W + scale B A)|, fp32 reference
};

// Folds a checkpoint's adapters (if any) into the base weights and writes a whole Hugging Face
// model folder: config.json, model.safetensors (in the base dtype), the tokenizer files, and
// linearization/ (the linearization keyed to the exported weights; its trained tensors stay
// fp32), and model_card as README.md when given (in place of the base model's). Atomic:
// out_dir appears whole or not at all.
ExportReport export_linearized_model(const std::string& model_dir, const std::string& checkpoint_dir,
                                     const std::string& out_dir, const std::string& model_card = "");

}  // namespace lincat
