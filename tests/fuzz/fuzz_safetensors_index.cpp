// libFuzzer target: model.safetensors.index.json (weight_map, shard names).
// Any input must give a value or a lincat error (std::exception), never a crash, a sanitizer
// report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        lincat::parse_safetensors_index(text, "model.safetensors.index.json");
    } catch (const std::exception&) {
    }
    return 0;
}
