// libFuzzer target: llama2.c tokenizer.bin, then encode/decode with it.
// Any input must give a value or a lincat error (std::exception), never a crash, a sanitizer
// report or a hang.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        // The first byte picks a small vocab size, so short inputs can be whole files.
        if (size < 1) return 0;
        const int64_t vocab = 1 + data[0] % 64;
        lincat::Tokenizer t = lincat::Tokenizer::from_llama2c_bin(data + 1, size - 1, vocab, "tokenizer.bin");
        t.decode(t.encode(text.substr(1, 64), true));
    } catch (const std::exception&) {
    }
    return 0;
}
