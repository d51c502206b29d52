// libFuzzer target: the safetensors header (length prefix, JSON, dtypes, shapes, offsets).
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
        // The input is the whole file: its size bounds every tensor byte range.
        (void)text;
        lincat::parse_safetensors_header(data, size, size, "fuzz.safetensors");
    } catch (const std::exception&) {
    }
    return 0;
}
