#!/usr/bin/env bash
# Installs the Debian packages Lincat needs (DESIGN.md section 5); nothing when all are there.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp   # without an OpenBLAS LibTorch's BLAS is ~30x slower
  libblas-dev                        # util/batched_matmul links the BLAS (libblas.so.3: OpenBLAS) itself
  python3-torch python3-yaml         # independent numeric references in tests (/usr/bin/python3)
  qt6-base-dev qt6-svg-dev libqt6sql6-sqlite libqcustomplot-dev libqcustomplot2.1-qt6 libgl-dev
  libsqlite3-dev libgtest-dev nlohmann-json3-dev xvfb xauth
  libpcre2-dev libutf8proc-dev       # byte-level BPE: Unicode regex (PCRE2, UTF + UCP) and NFC (utf8proc)
  libyaml-cpp-dev                    # LoLCATs model configs (YAML) in import-lolcats / export --format lolcats
)
command -v npm >/dev/null 2>&1 || packages+=(npm)
# --hardening: also clang and libFuzzer for the sanitizer and fuzz steps (.ci/run, tests/fuzz/run.sh).
# --slurm: also a Slurm controller, node daemon and munge for the localhost Slurm test.
for flag in "$@"; do
  case "$flag" in
    --hardening) packages+=(clang libclang-rt-14-dev) ;;
    --slurm) packages+=(slurmctld slurmd slurm-client munge) ;;
    *) echo "install-deps: unknown option $flag (--hardening, --slurm)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
