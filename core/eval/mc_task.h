// Multiple-choice task files: JSONL, one {"context", "choices": [...], "gold"} per line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lincat {

struct McItem {
    std::string context;
    std::vector<std::string> choices;
    int64_t gold = 0;
};

struct McTask {
    std::string name;  // the file's stem
    std::vector<McItem> items;
};

// Errors name the file, the line and the field.
McTask load_mc_task(const std::string& path);
McTask parse_mc_task(const std::string& text, const std::string& path);

}  // namespace lincat
