// libFuzzer target: tokenizer.json (SentencePiece or byte-level BPE, with its regex), then
// encode/decode with it (added tokens inside the text too).
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
        lincat::Tokenizer t = lincat::Tokenizer::from_hf_json(text, "tokenizer.json");
        auto ids = t.encode("Once upon a time \xf0\x9f\x98\x80 ok<|eot|>\n", true);
        t.decode(ids, false);
        lincat::TokenTextStream stream(t);
        for (int32_t id : ids) stream.push(id);
    } catch (const std::exception&) {
    }
    return 0;
}
