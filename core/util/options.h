// One field table per options struct: each field's JSON key, CLI name, help, limits and
// accessor. The JSON record (run configs, linearization.json), the CLI options and their
// parsing, and the studio's form defaults are all derived from the table, so the forms cannot
// drift apart; a field's default is the struct's own default member value. Torch-free.
#pragma once

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "util/error.h"
#include "util/json.h"

namespace lincat {

enum class FieldType { Int, Double, Bool, Text, IntList, TextList };

template <class C>
struct Field {
    std::string key;   // JSON key
    std::string cli;   // option name without dashes; "" = not on the command line
    std::string help;  // also the studio's row label
    FieldType type = FieldType::Int;
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    bool lo_open = false, hi_open = false;
    std::vector<std::string> choices;  // Text: the accepted names; TextList: the accepted items
    std::vector<std::string> aliases;  // older JSON keys, read when `key` is absent
    bool required = true;              // false: records written before the field existed read the default
    std::function<json(const C&)> get;
    std::function<void(C&, const json&)> set;  // the JSON value's type is checked before

    Field& at_least(double v) { return lo = v, lo_open = false, *this; }
    Field& above(double v) { return lo = v, lo_open = true, *this; }
    Field& at_most(double v) { return hi = v, hi_open = false, *this; }
    Field& below(double v) { return hi = v, hi_open = true, *this; }
    Field& no_cli() { return cli.clear(), *this; }
    Field& cli_name(std::string name) { return cli = std::move(name), *this; }
    Field& alias(std::string old_key) { return aliases.push_back(std::move(old_key)), *this; }
    Field& added_later() { return required = false, *this; }
    Field& one_of(std::vector<std::string> names) { return choices = std::move(names), *this; }
};

template <class C>
using FieldTable = std::vector<Field<C>>;

namespace detail {
template <class T>
constexpr FieldType field_type_of() {
    if constexpr (std::is_same_v<T, bool>)
        return FieldType::Bool;
    else if constexpr (std::is_integral_v<T>)
        return FieldType::Int;
    else if constexpr (std::is_floating_point_v<T>)
        return FieldType::Double;
    else if constexpr (std::is_same_v<T, std::string>)
        return FieldType::Text;
    else if constexpr (std::is_same_v<T, std::vector<std::string>>)
        return FieldType::TextList;
    else
        return FieldType::IntList;
}
inline std::string dashed(std::string key) {
    for (char& c : key)
        if (c == '_') c = '-';
    return key;
}
}  // namespace detail

// A plain field: `ref` maps the struct to the member (`[](C& c) -> auto& { return c.steps; }`).
template <class C, class Ref>
Field<C> field(std::string key, std::string help, Ref ref) {
    using T = std::remove_cvref_t<decltype(ref(std::declval<C&>()))>;
    Field<C> f;
    f.cli = detail::dashed(key);
    f.key = std::move(key);
    f.help = std::move(help);
    f.type = detail::field_type_of<T>();
    f.get = [ref](const C& c) { return json(ref(const_cast<C&>(c))); };
    f.set = [ref](C& c, const json& j) { ref(c) = j.get<T>(); };
    return f;
}

// An enum stored by name: `name` gives the text, `parse` reads it (and refuses what it does not know).
template <class C, class Ref, class Name, class Parse>
Field<C> enum_field(std::string key, std::string help, Ref ref, Name name, Parse parse,
                    std::vector<std::string> choices) {
    Field<C> f;
    f.cli = detail::dashed(key);
    f.key = std::move(key);
    f.help = std::move(help);
    f.type = FieldType::Text;
    f.choices = std::move(choices);
    f.get = [ref, name](const C& c) { return json(std::string(name(ref(const_cast<C&>(c))))); };
    f.set = [ref, parse](C& c, const json& j) { ref(c) = parse(j.get<std::string>()); };
    return f;
}

// A sub-struct's table inside a parent's: `sub` maps the parent to the member. `rename` gives
// the parent's key for a child key where they differ (the JSON stays flat).
template <class P, class C, class Sub>
FieldTable<P> nest(const FieldTable<C>& fields, Sub sub,
                   const std::vector<std::pair<std::string, std::string>>& rename = {}) {
    FieldTable<P> out;
    for (const Field<C>& c : fields) {
        Field<P> f;
        f.key = c.key, f.cli = c.cli, f.help = c.help, f.type = c.type, f.lo = c.lo, f.hi = c.hi;
        f.lo_open = c.lo_open, f.hi_open = c.hi_open, f.choices = c.choices, f.aliases = c.aliases;
        f.required = c.required;
        for (auto& [from, to] : rename)
            if (c.key == from) f.key = to, f.cli = c.cli.empty() ? "" : detail::dashed(to);
        f.get = [sub, get = c.get](const P& p) { return get(sub(const_cast<P&>(p))); };
        f.set = [sub, set = c.set](P& p, const json& j) { set(sub(p), j); };
        out.push_back(std::move(f));
    }
    return out;
}

template <class C>
void append(FieldTable<C>& to, const FieldTable<C>& more) {
    to.insert(to.end(), more.begin(), more.end());
}

template <class C>
Field<C>& field_of(FieldTable<C>& t, const std::string& key) {
    for (auto& f : t)
        if (f.key == key) return f;
    fail("no option field '", key, "'");
}
template <class C>
const Field<C>& field_of(const FieldTable<C>& t, const std::string& key) {
    return field_of(const_cast<FieldTable<C>&>(t), key);
}

const char* field_type_name(FieldType type);
// Whether a JSON value has the field's type (an integer for Int, any number for Double, ...).
bool json_has_type(const json& j, FieldType type);
// The default as the command line would spell it: "64", "1e-2", "a,b", "" for an empty list.
std::string field_text(const json& value);
// Checks one value against a field's limits and choices; "" when fine, else why not.
std::string field_problem(const json& value, FieldType type, double lo, double hi, bool lo_open, bool hi_open,
                          const std::vector<std::string>& choices);

template <class C>
std::string default_text(const Field<C>& f) {
    return field_text(f.get(C{}));
}

template <class C>
json table_to_json(const FieldTable<C>& t, const C& c) {
    json j = json::object();
    for (auto& f : t) j[f.key] = f.get(c);
    return j;
}

// Checks every field's limits; `name` says how a field is called to the user.
template <class C>
void table_validate(const FieldTable<C>& t, const C& c, const std::string& label, bool cli_names = false) {
    for (auto& f : t) {
        std::string why = field_problem(f.get(c), f.type, f.lo, f.hi, f.lo_open, f.hi_open, f.choices);
        if (why.empty()) continue;
        std::string name = cli_names && !f.cli.empty() ? "--" + f.cli : "field '" + f.key + "'";
        fail(label, ": ", name, " ", why);
    }
}

// Reads every field of the table from `j` into c, type-checked; a missing required field is
// an error naming `label` and the key; missing optional ones keep c's values. Then validates.
template <class C>
void table_from_json(const FieldTable<C>& t, const json& j, C& c, const std::string& label) {
    if (!j.is_object()) fail(label, ": expected a JSON object, got ", j.type_name());
    for (auto& f : t) {
        const json* v = nullptr;
        if (j.contains(f.key) && !j.at(f.key).is_null()) v = &j.at(f.key);
        for (size_t i = 0; !v && i < f.aliases.size(); ++i)
            if (j.contains(f.aliases[i]) && !j.at(f.aliases[i]).is_null()) v = &j.at(f.aliases[i]);
        if (!v) {
            if (f.required) fail(label, ": field '", f.key, "' is missing");
            continue;
        }
        if (!json_has_type(*v, f.type))
            fail(label, ": field '", f.key, "' must be ", field_type_name(f.type), ", not ", v->type_name());
        try {
            f.set(c, *v);
        } catch (const std::exception& e) {
            fail(label, ": field '", f.key, "': ", e.what());
        }
    }
    table_validate(t, c, label);
}

}  // namespace lincat
