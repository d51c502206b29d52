// libFuzzer target: Alpaca-style JSONL instruction data.
// Any input must give a value or a lincat error (std::exception), never a crash, a sanitizer
// report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "data/alpaca.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        lincat::parse_alpaca_jsonl(text, "data.jsonl");
    } catch (const std::exception&) {
    }
    return 0;
}
