// LoRA settings as plain data (no torch), and adapter.json of a stage-2 checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/options.h"

namespace lincat {

struct LoraOptions {
    int64_t rank = 8;
    double alpha = 16.0;
    double dropout = 0.0;
    std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
    bool operator==(const LoraOptions&) const = default;
};

// {"rank", "alpha", "dropout", "targets"}: rank in [1, 65536], alpha > 0, dropout in [0, 1),
// targets among lora_target_names().
const FieldTable<LoraOptions>& lora_fields();

// The projections a Llama layer can adapt.
const std::vector<std::string>& lora_target_names();

std::string lora_options_to_json(const LoraOptions& o);
LoraOptions lora_options_from_json(const std::string& text, const std::string& label);

}  // namespace lincat
