#include "util/json.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace lincat {

json parse_json(const std::string& text, const std::string& label) {
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        fail(label, ": malformed JSON: ", e.what());
    }
}

static const json& field_of(const json& j, const std::string& field, const std::string& label) {
    if (!j.is_object()) fail(label, ": expected a JSON object, got ", j.type_name());
    auto it = j.find(field);
    if (it == j.end()) fail(label, ": missing field '", field, "'");
    return *it;
}

template <>
int64_t json_get<int64_t>(const json& j, const std::string& field, const std::string& label) {
    const json& v = field_of(j, field, label);
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
    }
    fail(label, ": field '", field, "' must be an integer, got ", v.type_name(), " ", v.dump());
}

template <>
double json_get<double>(const json& j, const std::string& field, const std::string& label) {
    const json& v = field_of(j, field, label);
    if (!v.is_number()) fail(label, ": field '", field, "' must be a number, got ", v.type_name());
    double d = v.get<double>();
    if (!std::isfinite(d)) fail(label, ": field '", field, "' is not finite");
    return d;
}

template <>
bool json_get<bool>(const json& j, const std::string& field, const std::string& label) {
    const json& v = field_of(j, field, label);
    if (!v.is_boolean()) fail(label, ": field '", field, "' must be true or false, got ", v.type_name());
    return v.get<bool>();
}

template <>
std::string json_get<std::string>(const json& j, const std::string& field, const std::string& label) {
    const json& v = field_of(j, field, label);
    if (!v.is_string()) fail(label, ": field '", field, "' must be a string, got ", v.type_name());
    return v.get<std::string>();
}

template <>
json json_get<json>(const json& j, const std::string& field, const std::string& label) {
    return field_of(j, field, label);
}

}  // namespace lincat
