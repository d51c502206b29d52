#include "cli/args.h"

#include <cmath>
#include <cstdlib>

#include "util/error.h"

namespace lincat::cli {

Args::Args(std::string command, std::vector<OptionSpec> specs, const std::vector<std::string>& argv)
    : command_(std::move(command)), specs_(std::move(specs)) {
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a == "--help" || a == "-h") throw HelpRequested(help());
        if (a.rfind("--", 0) != 0) fail(command_, ": unexpected argument '", a, "'\n", help());
        std::string name = a.substr(2), value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const OptionSpec* spec = nullptr;
        for (auto& s : specs_)
            if (s.name == name) spec = &s;
        if (!spec) fail(command_, ": unknown option --", name, "\n", help());
        if (!spec->is_flag && a.find('=') == std::string::npos) {
            if (i + 1 >= argv.size()) fail(command_, ": option --", name, " needs a value");
            value = argv[++i];
        }
        values_[name] = spec->is_flag ? "1" : value;
    }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        if (comma > start) out.push_back(s.substr(start, comma - start));
        start = comma + 1;
    }
    return out;
}

int64_t parse_count(const std::string& text, const std::string& what, bool binary) {
    if (text.empty()) fail(what, ": expected a number, got nothing");
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    std::string suffix(end);
    double mult = 1;
    if (suffix == "K" || suffix == "k")
        mult = binary ? 1024.0 : 1e3;
    else if (suffix == "M" || suffix == "m")
        mult = binary ? 1048576.0 : 1e6;
    else if (suffix == "B" || suffix == "G" || suffix == "b")
        mult = binary ? 1073741824.0 : 1e9;
    else if (suffix == "T")
        mult = 1e12;
    else if (!suffix.empty())
        fail(what, ": cannot read '", text, "' as a number");
    v *= mult;
    if (!std::isfinite(v) || std::fabs(v) > 9e18 || v != std::floor(v))
        fail(what, ": '", text, "' is not a whole number in range");
    return int64_t(v);
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
    return has(name) ? parse_count(get(name), command_ + " --" + name) : fallback;
}

double Args::get_double(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    std::string s = get(name);
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v))
        fail(command_, " --", name, ": cannot read '", s, "' as a number");
    return v;
}

std::string Args::help() const {
    std::string out = "usage: lincat " + command_ + " [options]\n";
    for (auto& s : specs_) {
        std::string left = "  --" + s.name + (s.is_flag ? "" : " VALUE");
        if (left.size() < 28) left.resize(28, ' ');
        out += left + " " + s.help + (s.fallback.empty() ? "" : " (default " + s.fallback + ")") + "\n";
    }
    return out;
}

}  // namespace lincat::cli
