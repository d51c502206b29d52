// libFuzzer target: what import-lolcats parses from outside files: the pickle inside a .pt
// (restricted reader), the tensor keys it holds, and the LoLCATs YAML configs. Any input must
// give a value or a lincat error (std::exception), never a crash, a sanitizer report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "interop/lolcats_format.h"
#include "interop/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        lincat::PickleDocument d = lincat::read_torch_pickle(text, "data.pkl");
        // Walk the keys of every dict, as the import does with model_state_dict's.
        for (auto& n : d.nodes)
            for (auto& [k, v] : n.entries)
                if (d.at(k).kind == lincat::PickleNode::Kind::String)
                    if (auto key = lincat::parse_lolcats_key(d.at(k).text)) lincat::lolcats_key_name(*key);
    } catch (const std::exception&) {
    }
    if (auto key = lincat::parse_lolcats_key(text)) {
        lincat::lincat_tensor_name(*key);
        lincat::lolcats_key_name(*key);
    }
    try {
        lincat::LolcatsAttention a = lincat::lolcats_attention_from_yaml(text, "model.yaml", 8);
        lincat::lolcats_attention_from_yaml(lincat::lolcats_model_yaml(a.linearize, 8, "m", "bfloat16"), "round trip",
                                            8);
    } catch (const std::exception&) {
    }
    try {
        lincat::lolcats_lora_from_yaml(text, "finetune.yaml");
    } catch (const std::exception&) {
    }
    return 0;
}
