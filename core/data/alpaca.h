// Alpaca-style instruction data: JSONL with "instruction", optional "input", "output" per
// line, rendered into the Alpaca prompt format. Torch-free (fuzzed).
#pragma once

#include <string>
#include <vector>

namespace lincat {

// One prompt text per record; errors name `label`, the line and the field.
std::vector<std::string> parse_alpaca_jsonl(const std::string& text, const std::string& label);

}  // namespace lincat
