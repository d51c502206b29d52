// The pieces of byte-level BPE (GPT-2, Llama 3, Qwen) that are not BPE itself: the byte-to-
// unicode map, the regex Split pre-tokenizer (PCRE2 with UTF + UCP, the file's own pattern)
// and NFC normalization (utf8proc).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lincat {

// Each byte becomes the UTF-8 of its GPT-2 stand-in character (printable bytes stay).
std::string byte_level_map(std::string_view bytes);
// The inverse; false when `mapped` holds a character that stands for no byte.
bool byte_level_unmap(std::string_view mapped, std::string& out);

// NFC of UTF-8 text; text that is not valid UTF-8 is returned unchanged.
std::string nfc_normalize(std::string_view text);

// Hugging Face's Split pre-tokenizer with behavior "Isolated" (invert false): every match
// is a piece, and so is every stretch between matches.
class RegexSplit {
  public:
    RegexSplit(const std::string& pattern, const std::string& label);
    void split(std::string_view text, std::vector<std::string_view>& pieces) const;

    struct Code;

  private:
    std::shared_ptr<const Code> code_;
};

}  // namespace lincat
