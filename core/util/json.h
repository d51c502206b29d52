// Typed field access on nlohmann::json with errors that name the file and the field.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "util/error.h"

namespace lincat {

using json = nlohmann::json;

json parse_json(const std::string& text, const std::string& label);

inline const char* json_type_name(const json& j) {
    return j.type_name();
}

template <typename T>
T json_get(const json& j, const std::string& field, const std::string& label);

template <typename T>
T json_get_or(const json& j, const std::string& field, const T& fallback, const std::string& label) {
    if (!j.contains(field) || j.at(field).is_null()) return fallback;
    return json_get<T>(j, field, label);
}

}  // namespace lincat
