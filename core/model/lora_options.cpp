#include "model/lora_options.h"

#include "util/error.h"
#include "util/json.h"

namespace lincat {

const std::vector<std::string>& lora_target_names() {
    static const std::vector<std::string> names = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"};
    return names;
}

const FieldTable<LoraOptions>& lora_fields() {
    using L = LoraOptions;
    static const FieldTable<L> t = {
        field<L>(
            "rank", "LoRA rank r", [](L & l) -> auto& { return l.rank; })
            .at_least(1)
            .at_most(65536),
        field<L>(
            "alpha", "LoRA alpha", [](L & l) -> auto& { return l.alpha; })
            .above(0),
        field<L>(
            "dropout", "LoRA dropout", [](L & l) -> auto& { return l.dropout; })
            .at_least(0)
            .below(1),
        field<L>(
            "targets", "projections to adapt", [](L & l) -> auto& { return l.targets; })
            .one_of(lora_target_names()),
    };
    return t;
}

std::string lora_options_to_json(const LoraOptions& o) {
    json j = {{"format", "lincat-lora"}, {"version", 1},          {"rank", o.rank},
              {"alpha", o.alpha},        {"dropout", o.dropout},  {"target_modules", o.targets},
              {"peft_type", "LORA"},     {"lora_alpha", o.alpha}, {"r", o.rank}};
    return j.dump(2) + "\n";
}

LoraOptions lora_options_from_json(const std::string& text, const std::string& label) {
    json j = parse_json(text, label);
    if (json_get_or<std::string>(j, "format", "", label) != "lincat-lora")
        fail(label, ": field 'format' is not 'lincat-lora'");
    LoraOptions o;
    o.rank = json_get<int64_t>(j, "rank", label);
    if (o.rank <= 0 || o.rank > 65536) fail(label, ": field 'rank' out of range");
    o.alpha = json_get<double>(j, "alpha", label);
    o.dropout = json_get_or<double>(j, "dropout", 0.0, label);
    const json& t = json_get<json>(j, "target_modules", label);
    if (!t.is_array() || t.empty()) fail(label, ": field 'target_modules' must be a non-empty array");
    o.targets.clear();
    for (auto& x : t) {
        if (!x.is_string()) fail(label, ": field 'target_modules' must hold strings");
        o.targets.push_back(x.get<std::string>());
    }
    table_validate(lora_fields(), o, label);
    return o;
}

}  // namespace lincat
