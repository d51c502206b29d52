// libFuzzer target: a checkpoint's linearization.json (and its round trip) and adapter.json.
// Any input must give a value or a lincat error (std::exception), never a crash, a sanitizer
// report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "attention/spec.h"
#include "model/lora_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        try {
            std::string hash;
            lincat::LinearizeOptions o = lincat::linearization_from_json(text, "linearization.json", &hash);
            lincat::linearization_from_json(lincat::linearization_to_json(o, 4, hash), "round trip", nullptr);
        } catch (const std::exception&) {
        }
        lincat::lora_options_from_json(text, "adapter.json");
    } catch (const std::exception&) {
    }
    return 0;
}
