#include "eval/mc_task.h"

#include <filesystem>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace lincat {

McTask load_mc_task(const std::string& path) {
    return parse_mc_task(read_file(path, 1ull << 30), path);
}

McTask parse_mc_task(const std::string& text, const std::string& path) {
    McTask task;
    task.name = std::filesystem::path(path).stem().string();
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::string label = path + ":" + std::to_string(line_no);
        json j = parse_json(line, label);
        if (!j.is_object()) fail(label, ": each line must be a JSON object");
        McItem item;
        item.context = json_get<std::string>(j, "context", label);
        const json& choices = json_get<json>(j, "choices", label);
        if (!choices.is_array() || choices.size() < 2) fail(label, ": field 'choices' must be an array of 2 or more");
        for (auto& c : choices) {
            if (!c.is_string() || c.get<std::string>().empty())
                fail(label, ": field 'choices' must hold non-empty strings");
            item.choices.push_back(c.get<std::string>());
        }
        item.gold = json_get<int64_t>(j, "gold", label);
        if (item.gold < 0 || item.gold >= int64_t(item.choices.size()))
            fail(label, ": field 'gold' is ", item.gold, ", outside the ", item.choices.size(), " choices");
        task.items.push_back(std::move(item));
    }
    if (task.items.empty()) fail(path, ": no tasks in the file");
    return task;
}

}  // namespace lincat
