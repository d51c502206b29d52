// The special-token facts a model folder states outside tokenizer.json: tokenizer_config.json
// (bos_token, eos_token, add_bos_token), generation_config.json (bos_token_id, eos_token_id,
// which may be a list: Llama 3.1 Instruct stops on 128001, 128008 and 128009) and config.json
// (bos_token_id, eos_token_id). Torch-free; files that are absent state nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lincat {

struct SpecialTokenConfig {
    // tokenizer_config.json; a token written as null there means "this model has none".
    std::optional<std::string> bos_token, eos_token;
    bool bos_token_null = false;
    std::optional<bool> add_bos_token;
    std::string tokenizer_config_path;
    // generation_config.json, then config.json.
    std::optional<int64_t> generation_bos, config_bos;
    std::vector<int64_t> generation_eos, config_eos;
};

SpecialTokenConfig parse_special_token_config(const std::string* tokenizer_config_json,
                                              const std::string* generation_config_json, const std::string* config_json,
                                              const std::string& dir);
SpecialTokenConfig read_special_token_config(const std::string& dir);

}  // namespace lincat
