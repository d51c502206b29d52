#!/usr/bin/env bash
# Lincat set-up on Debian 12, idempotent: Debian packages, build, default model.
# A second run changes nothing and takes seconds.
#   LINCAT_BUILD_DIR  build folder (default: build/ in the checkout)
#   LINCAT_CACHE      model cache (default: ~/.cache/lincat)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${LINCAT_BUILD_DIR:-$root/build}

"$root/packaging/install-deps.sh"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
echo "setup: building in $build"
cmake --build "$build"

"$root/packaging/fetch-model.sh" "$build/lincat"
echo "setup: done"
