#include "train/ablation_spec.h"

#include <set>
#include <sstream>

#include "util/error.h"
#include "util/json.h"

namespace lincat {

static std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::pair<std::string, std::string>> lolcats_recipe() {
    return {{"feature_dim", "64"}, {"gate", "none"}, {"softmax_share", "0"}};
}

std::vector<AblationVariant> parse_ablation_variants(const std::string& spec) {
    std::vector<AblationVariant> out;
    std::stringstream all(spec);
    std::string item;
    std::set<std::string> names;
    while (std::getline(all, item, ';')) {
        item = trim(item);
        if (item.empty()) continue;
        AblationVariant v;
        v.name = item;
        if (!names.insert(item).second) fail("--variants: '", item, "' is given twice");
        std::stringstream words(item);
        std::string w;
        bool chose_softmax = false, chose_share = false;
        while (words >> w) {
            if (w == "default") continue;
            if (w == "lolcats") {  // LoLCATs' recipe; keys after it still apply
                for (auto& kv : lolcats_recipe()) v.stage1.push_back(kv);
                continue;
            }
            const size_t eq = w.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == w.size())
                fail("--variants: '", w, "' in '", item, "' is not key=value (or lolcats, default)");
            std::string key = w.substr(0, eq), value = w.substr(eq + 1);
            if (key == "stage2") {
                if (value != "off" && value != "on") fail("--variants: stage2=", value, " (on or off)");
                v.run_stage2 = value == "on";
            } else if (key.rfind("stage2_", 0) == 0) {
                v.stage2.push_back({key.substr(7), value});
            } else {
                chose_softmax |= key == "keep_softmax" || key == "layers";
                chose_share |= key == "softmax_share";
                v.stage1.push_back({key, value});
            }
        }
        // Layers a variant names stay as named, as on the command line.
        if (chose_softmax && !chose_share) v.stage1.push_back({"softmax_share", "0"});
        out.push_back(v);
    }
    if (out.empty()) fail("--variants: no variant given (e.g. \"lolcats; window=16\")");
    return out;
}

// A value as JSON: a number, bool or list where it parses as one ("1,2" is the list [1, 2]), else a string.
static json value_json(const std::string& text) {
    json v = json::parse(text, nullptr, false);
    if (v.is_discarded() && text.find(',') != std::string::npos) v = json::parse("[" + text + "]", nullptr, false);
    return v.is_discarded() ? json(text) : v;
}

template <typename Config>
static Config assign(const Config& base, const std::vector<std::pair<std::string, std::string>>& keys,
                     const std::string& label, const std::set<std::string>& refused) {
    json j = parse_json(base.to_json(), label);
    for (auto& [k, v] : keys) {
        if (!j.contains(k) || refused.count(k)) fail(label, ": '", k, "' is not an option that can be ablated here");
        json value = value_json(v);
        if (j[k].is_array() && !value.is_array()) value = json::array({value});  // layers=3: one layer
        j[k] = value;
    }
    return Config::from_json(j.dump(), label);
}

std::vector<int64_t> layers_keeping_softmax(const std::string& list, int64_t num_layers, const std::string& label) {
    json kept = value_json(list);
    if (kept.is_number_integer()) kept = json::array({kept});
    if (!kept.is_array()) fail(label, ": keep_softmax=", list, " is not a list of layers");
    std::set<int64_t> softmax;
    for (auto& l : kept) {
        if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() >= num_layers)
            fail(label, ": keep_softmax layer ", l.dump(), " not in [0, ", num_layers, ")");
        softmax.insert(l.get<int64_t>());
    }
    std::vector<int64_t> layers;
    for (int64_t l = 0; l < num_layers; ++l)
        if (!softmax.count(l)) layers.push_back(l);
    if (layers.empty()) fail(label, ": keep_softmax keeps every layer; nothing is linearized");
    return layers;
}

DistillConfig ablation_distill_config(const AblationVariant& v, const DistillConfig& base, int64_t num_layers) {
    std::vector<std::pair<std::string, std::string>> keys;
    for (auto& [k, value] : v.stage1) {
        if (k != "keep_softmax") {
            keys.push_back({k, value});
            continue;
        }
        keys.push_back({"layers", json(layers_keeping_softmax(value, num_layers, "variant '" + v.name + "'")).dump()});
    }
    // Data and stage-1 budget stay the same for every variant: the comparison is at the same tokens.
    static const std::set<std::string> refused = {"teacher_sequences", "seq_len",       "data_seed",    "text_files",
                                                  "jsonl_files",       "eval_fraction", "sample_dtype", "steps",
                                                  "batch_size",        "grad_accum"};
    return assign(base, keys, "variant '" + v.name + "'", refused);
}

FinetuneConfig ablation_finetune_config(const AblationVariant& v, const FinetuneConfig& base) {
    static const std::set<std::string> refused = {"stage1_run",  "stage1_checkpoint", "teacher_sequences",
                                                  "seq_len",     "data_seed",         "text_files",
                                                  "jsonl_files", "eval_fraction",     "sample_dtype"};
    return assign(base, v.stage2, "variant '" + v.name + "' stage 2", refused);
}

}  // namespace lincat
