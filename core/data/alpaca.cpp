#include "data/alpaca.h"

#include "util/error.h"
#include "util/json.h"

namespace lincat {

std::vector<std::string> parse_alpaca_jsonl(const std::string& text, const std::string& path) {
    std::vector<std::string> out;
    size_t pos = 0;
    int64_t n = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::string label = path + " line " + std::to_string(n);
        json j = parse_json(line, label);
        if (!j.is_object()) fail(label, ": each line must be a JSON object");
        std::string instruction = json_get<std::string>(j, "instruction", label);
        std::string input = json_get_or<std::string>(j, "input", "", label);
        std::string output = json_get<std::string>(j, "output", label);
        out.push_back("### Instruction:\n" + instruction + (input.empty() ? "" : "\n\n### Input:\n" + input) +
                      "\n\n### Response:\n" + output);
    }
    if (out.empty()) fail(path, ": no records");
    return out;
}

}  // namespace lincat
