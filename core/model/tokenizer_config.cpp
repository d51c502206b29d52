#include "model/tokenizer_config.h"

#include <unistd.h>

#include "util/file.h"
#include "util/json.h"

namespace lincat {

// "<s>" or {"content": "<s>", ...} (AddedToken as transformers serialises it); nullopt for null.
static std::optional<std::string> token_text(const json& j, const char* field, const std::string& label) {
    const json& v = j.at(field);
    if (v.is_null()) return std::nullopt;
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    fail(label, ": field '", field, "' must be a string, an object with 'content', or null");
}

static std::vector<int64_t> id_list(const json& j, const char* field, const std::string& label) {
    std::vector<int64_t> out;
    if (!j.contains(field) || j.at(field).is_null()) return out;
    const json& v = j.at(field);
    auto check = [&](const json& x) {
        if (!x.is_number_integer() || x.get<int64_t>() < 0)
            fail(label, ": field '", field, "' must be a non-negative integer or a list of them");
        out.push_back(x.get<int64_t>());
    };
    if (v.is_array())
        for (const json& x : v) check(x);
    else
        check(v);
    return out;
}

// bos_token_id and eos_token_id of generation_config.json or config.json.
static void read_ids(const std::string& text, const std::string& label, std::optional<int64_t>& bos,
                     std::vector<int64_t>& eos) {
    json j = parse_json(text, label);
    if (!j.is_object()) fail(label, ": expected a JSON object at the top level");
    auto b = id_list(j, "bos_token_id", label);
    if (!b.empty()) bos = b[0];
    eos = id_list(j, "eos_token_id", label);
}

SpecialTokenConfig parse_special_token_config(const std::string* tok_cfg, const std::string* gen_cfg,
                                              const std::string* cfg, const std::string& dir) {
    SpecialTokenConfig s;
    if (tok_cfg) {
        std::string label = dir + "/tokenizer_config.json";
        s.tokenizer_config_path = label;
        json j = parse_json(*tok_cfg, label);
        if (!j.is_object()) fail(label, ": expected a JSON object at the top level");
        if (j.contains("bos_token")) {
            s.bos_token = token_text(j, "bos_token", label);
            s.bos_token_null = !s.bos_token;
        }
        if (j.contains("eos_token")) s.eos_token = token_text(j, "eos_token", label);
        if (j.contains("add_bos_token") && !j["add_bos_token"].is_null())
            s.add_bos_token = json_get<bool>(j, "add_bos_token", label);
    }
    if (gen_cfg) read_ids(*gen_cfg, dir + "/generation_config.json", s.generation_bos, s.generation_eos);
    if (cfg) read_ids(*cfg, dir + "/config.json", s.config_bos, s.config_eos);
    return s;
}

SpecialTokenConfig read_special_token_config(const std::string& dir) {
    auto read_if = [&](const char* name, std::string& text) -> const std::string* {
        std::string path = dir + "/" + name;
        if (access(path.c_str(), R_OK) != 0) return nullptr;
        text = read_file(path, 64 << 20);
        return &text;
    };
    std::string a, b, c;
    const std::string* tok = read_if("tokenizer_config.json", a);
    const std::string* gen = read_if("generation_config.json", b);
    const std::string* cfg = read_if("config.json", c);
    return parse_special_token_config(tok, gen, cfg, dir);
}

}  // namespace lincat
