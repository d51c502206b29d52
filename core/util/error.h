// Errors: core throws std::runtime_error with the file and the field; the CLI and the
// studio each have one place that turns it into a message (see app/).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lincat {

template <typename... Args>
std::string str_cat(const Args&... args) {
    std::ostringstream out;
    (out << ... << args);
    return out.str();
}

// "[2,3,4]": a shape (or any list of integers) for error messages.
template <typename Ints>
std::string shape_str(const Ints& dims) {
    std::ostringstream out;
    out << '[';
    bool first = true;
    for (auto d : dims) {
        if (!first) out << ',';
        out << d;
        first = false;
    }
    out << ']';
    return out.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
    throw std::runtime_error(str_cat(args...));
}

}  // namespace lincat
