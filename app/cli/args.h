// A small command-line parser: `lincat COMMAND [--name value | --flag]...`. Every command
// declares its options, so a typo is an error that lists what the command accepts.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

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

}  // namespace lincat::cli
