// A small command-line parser: `lincat COMMAND [--name value | --flag]...`. Every command
// declares its options, so a typo is an error that lists what the command accepts.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/options.h"

namespace lincat::cli {

struct OptionSpec {
    std::string name;  // without the leading dashes
    std::string help;
    bool is_flag = false;
    std::string fallback;  // shown in help
};

class Args {
  public:
    Args(std::string command, std::vector<OptionSpec> specs, const std::vector<std::string>& argv);

    bool has(const std::string& name) const { return values_.count(name) != 0; }
    bool flag(const std::string& name) const { return has(name); }
    std::string get(const std::string& name, const std::string& fallback = "") const;
    int64_t get_int(const std::string& name, int64_t fallback) const;  // accepts 10K, 4M, 2B
    double get_double(const std::string& name, double fallback) const;
    std::string help() const;

  private:
    std::string command_;
    std::vector<OptionSpec> specs_;
    std::map<std::string, std::string> values_;
};

// Thrown by Args when --help is given; main prints what() to stdout and exits 0.
struct HelpRequested : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "a,b,,c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_list(const std::string& text);

// "50M" -> 50000000; with binary, K/M/G are powers of 1024 (sequence lengths: "4K" -> 4096).
int64_t parse_count(const std::string& text, const std::string& what, bool binary = false);

// A field of an options table as a command-line option; `cli` renames it (linearize's
// --stage1-steps). Its default is the table's.
template <class C>
OptionSpec option_of(const Field<C>& f, const std::string& cli = "") {
    const bool flag = f.type == FieldType::Bool;
    return {cli.empty() ? f.cli : cli, f.help, flag, flag ? "" : default_text(f)};
}

// Sets the field from the command line when given there (type as the table says).
template <class C>
void read_option(const Args& a, const Field<C>& f, C& c, const std::string& cli_in = "") {
    const std::string cli = cli_in.empty() ? f.cli : cli_in;
    if (!a.has(cli)) return;
    json v;
    switch (f.type) {
        case FieldType::Int:
            v = a.get_int(cli, 0);
            break;
        case FieldType::Double:
            v = a.get_double(cli, 0);
            break;
        case FieldType::Bool:
            v = true;
            break;
        case FieldType::Text:
            v = a.get(cli);
            break;
        case FieldType::IntList:
            v = json::array();
            for (auto& item : split_list(a.get(cli))) v.push_back(parse_count(item, "--" + cli));
            break;
        case FieldType::TextList:
            v = split_list(a.get(cli));
            break;
    }
    try {
        f.set(c, v);
    } catch (const std::exception& e) {
        throw std::runtime_error("--" + cli + ": " + e.what());
    }
}

// Every field of the table that has a command-line name.
template <class C>
std::vector<OptionSpec> table_options(const FieldTable<C>& t) {
    std::vector<OptionSpec> out;
    for (auto& f : t)
        if (!f.cli.empty()) out.push_back(option_of(f));
    return out;
}

// Reads every such field given on the command line, then checks the table's limits (errors
// name the option: "distill: --window must be >= 1, not 0").
template <class C>
void read_table_options(const Args& a, const FieldTable<C>& t, C& c, const std::string& command) {
    for (auto& f : t)
        if (!f.cli.empty()) read_option(a, f, c);
    table_validate(t, c, command, /*cli_names=*/true);
}

}  // namespace lincat::cli
