// libFuzzer target: the llama2.c model.bin header (7 int32 fields).
// Any input must give a value or a lincat error (std::exception), never a crash, a sanitizer
// report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "model/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        (void)text;
        lincat::parse_llama2c_header(data, size, "model.bin");
    } catch (const std::exception&) {
    }
    return 0;
}
