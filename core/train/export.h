// Exporting a linearized checkpoint as a whole Hugging Face model folder.
#pragma once

#include <string>

namespace lincat {

// Folds a checkpoint's adapters (if any) into the base weights and writes a whole Hugging Face
// model folder: config.json, model.safetensors, the tokenizer files, and linearization/ (the
// linearization keyed to the exported weights), and model_card as README.md when given (in
// place of the base model's). Atomic: out_dir appears whole or not at all.
// Returns out_dir + "/linearization".
std::string export_linearized_model(const std::string& model_dir, const std::string& checkpoint_dir,
                                    const std::string& out_dir, const std::string& model_card = "");

}  // namespace lincat
