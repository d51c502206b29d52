#include "util/options.h"

#include <algorithm>
#include <cstdio>

namespace lincat {

const char* field_type_name(FieldType t) {
    switch (t) {
        case FieldType::Int:
            return "an integer";
        case FieldType::Double:
            return "a number";
        case FieldType::Bool:
            return "true or false";
        case FieldType::Text:
            return "a string";
        case FieldType::IntList:
            return "an array of integers";
        case FieldType::TextList:
            return "an array of strings";
    }
    return "?";
}

bool json_has_type(const json& j, FieldType t) {
    switch (t) {
        case FieldType::Int:
            return j.is_number_integer();
        case FieldType::Double:
            return j.is_number();
        case FieldType::Bool:
            return j.is_boolean();
        case FieldType::Text:
            return j.is_string();
        case FieldType::IntList:
            return j.is_array() && std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_number_integer(); });
        case FieldType::TextList:
            return j.is_array() && std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_string(); });
    }
    return false;
}

std::string field_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", v.get<double>());
        return buf;
    }
    if (v.is_array()) {
        std::string out;
        for (auto& e : v) out += (out.empty() ? "" : ",") + field_text(e);
        return out;
    }
    return v.dump();
}

static std::string number_text(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
}

std::string field_problem(const json& v, FieldType type, double lo, double hi, bool lo_open, bool hi_open,
                          const std::vector<std::string>& choices) {
    if (type == FieldType::IntList)
        for (auto& e : v)
            if (std::string why = field_problem(e, FieldType::Int, lo, hi, lo_open, hi_open, {}); !why.empty())
                return "items " + why;
    if (type == FieldType::Int || type == FieldType::Double) {
        const double x = v.get<double>();
        if (!std::isfinite(x)) return "must be a finite number";
        const bool low = lo_open ? !(x > lo) : !(x >= lo), high = hi_open ? !(x < hi) : !(x <= hi);
        if (low || high) {
            std::string range = std::string(lo_open ? "in (" : "in [") + number_text(lo) + ", " + number_text(hi) +
                                (hi_open ? ")" : "]");
            if (!std::isfinite(hi)) range = std::string(lo_open ? "> " : ">= ") + number_text(lo);
            return "must be " + range + ", not " + field_text(v);
        }
    }
    if (!choices.empty()) {
        auto known = [&](const std::string& s) {
            return std::find(choices.begin(), choices.end(), s) != choices.end();
        };
        std::string all;
        for (auto& c : choices) all += (all.empty() ? "" : ", ") + c;
        if (type == FieldType::Text && !known(v.get<std::string>()))
            return "must be one of " + all + ", not '" + v.get<std::string>() + "'";
        if (type == FieldType::TextList)
            for (auto& e : v)
                if (!known(e.get<std::string>()))
                    return "items must be among " + all + ", not '" + e.get<std::string>() + "'";
    }
    return "";
}

}  // namespace lincat
