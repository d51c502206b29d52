// Tokenizers read from a Hugging Face tokenizer.json (or a llama2.c tokenizer.bin). The file
// describes a pipeline and we mirror its stages: added tokens split out first, then a
// normalizer, a pre-tokenizer, the BPE model and a decoder. Two kinds share one BPE engine:
//   SentencePiece  Llama 2, Mistral, stories15M: word mark U+2581, byte fallback <0xNN>;
//   ByteLevel      Llama 3.x, Qwen 2.5/3: GPT-2 byte map, regex Split pre-tokenizer (PCRE2),
//                  NFC normalizer (Qwen), ignore_merges (Llama 3).
// BOS, EOS and whether BOS is added come from the model folder's tokenizer_config.json,
// generation_config.json and config.json (tokenizer_config.h), never guessed from "<s>".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lincat {

enum class TokenizerKind { SentencePiece, ByteLevel };
const char* tokenizer_kind_name(TokenizerKind kind);

class Tokenizer {
  public:
    // tokenizer.json in `dir` (else tokenizer.bin), with the folder's special-token configs.
    static Tokenizer load_dir(const std::string& dir);
    static Tokenizer from_hf_json(const std::string& json_text, const std::string& label);
    static Tokenizer from_llama2c_bin(const uint8_t* bytes, size_t size, int64_t vocab_size, const std::string& label);
    static Tokenizer load_hf_json(const std::string& path);
    static Tokenizer load_llama2c_bin(const std::string& path, int64_t vocab_size = 32000);

    // Added tokens written in the text ("<|eot_id|>") become their ids. With add_special,
    // BOS is prepended when the tokenizer's configuration asks for it (adds_bos()).
    std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;
    // Special tokens are skipped unless asked for; SentencePiece's leading space is stripped.
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

    TokenizerKind kind() const;
    int64_t vocab_size() const;
    int32_t bos_id() const;  // -1 when the model has none (Qwen); generation may start from it
    bool adds_bos() const;
    int32_t eos_id() const;                       // the main end token
    const std::vector<int32_t>& eos_ids() const;  // every id generation stops at (Llama 3.1: 3)
    bool is_special(int32_t id) const;
    // The token's text as a person reads it (byte-level pieces unmapped, word mark as ' ').
    std::string piece(int32_t id) const;
    int32_t token_id(const std::string& content) const;  // an added token or vocab piece; -1 if none

    // Overrides from the model folder (tokenizer_config.h).
    void set_special_ids(int32_t bos, bool adds_bos, const std::vector<int32_t>& eos);

    // A Hugging Face tokenizer.json equivalent to this SentencePiece tokenizer (merges derived
    // from the scores the way transformers' SentencePiece converter does).
    std::string to_hf_json() const;

    struct Impl;

  private:
    friend class TokenTextStream;
    std::shared_ptr<const Impl> impl_;
};

// Streaming decode for generation: text is released once its bytes form whole UTF-8
// characters (a byte-level token may end inside one); decode() of all ids pushed so far
// equals the concatenation of everything push() and finish() returned.
class TokenTextStream {
  public:
    explicit TokenTextStream(const Tokenizer& tokenizer) : tok_(tokenizer) {}
    std::string push(int32_t id);
    std::string finish();  // whatever is held back (an incomplete sequence, as raw bytes)

  private:
    const Tokenizer& tok_;
    std::string pending_;
    bool started_ = false;
};

}  // namespace lincat
