// libFuzzer target: config.json of a Llama-family model, and its round trip.
// Any input must give a value or a lincat error (std::exception), never a crash, a sanitizer
// report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        lincat::ModelConfig c = lincat::parse_model_config(text, "config.json");
        lincat::parse_model_config(lincat::model_config_to_json(c), "config.json (round trip)");
    } catch (const std::exception&) {
    }
    return 0;
}
