// Llama-2-style SentencePiece BPE with byte fallback, read from a Hugging Face
// tokenizer.json or a llama2.c tokenizer.bin. One BPE engine serves both: merges are
// ranked by the merges list (tokenizer.json) or by the score of the merged piece
// (tokenizer.bin), which is how SentencePiece itself ranks them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lincat {

class Tokenizer {
  public:
    // Picks tokenizer.json in `dir`, else tokenizer.bin.
    static Tokenizer load_dir(const std::string& dir);
    static Tokenizer from_hf_json(const std::string& json_text, const std::string& label);
    static Tokenizer from_llama2c_bin(const uint8_t* bytes, size_t size, int64_t vocab_size, const std::string& label);
    static Tokenizer load_hf_json(const std::string& path);
    static Tokenizer load_llama2c_bin(const std::string& path, int64_t vocab_size = 32000);

    std::vector<int32_t> encode(std::string_view text, bool add_bos = true) const;
    // Skips special tokens; strips the one leading space SentencePiece adds.
    std::string decode(const std::vector<int32_t>& ids) const;
    // Bytes of one token when streaming: `prev` decides the leading-space strip after BOS.
    std::string decode_token(int32_t prev, int32_t id) const;

    int64_t vocab_size() const;
    int32_t bos_id() const;
    int32_t eos_id() const;
    const std::string& piece(int32_t id) const;  // with ' ' for the SentencePiece word mark

    // A Hugging Face tokenizer.json equivalent to this tokenizer (merges derived from the
    // scores the way transformers' SentencePiece converter does).
    std::string to_hf_json() const;

    struct Impl;

  private:
    std::shared_ptr<const Impl> impl_;
};

}  // namespace lincat
