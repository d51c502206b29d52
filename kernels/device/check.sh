#!/usr/bin/env bash
# Issue 8's GPU checks in one run on the lent H200 (device tool), well under 15 minutes:
#   1. the kernels alone (cmake -S kernels, no LibTorch): test_kernels_cuda, CUDA vs host emulation
#   2. the whole core against the machine's PyTorch 2.x LibTorch (CUDA), Studio off
#   3. the core's GPU tests: dispatch of CUDA tensors to the kernels vs the LibTorch forms
#   4. the pipeline with --device cuda on stories15M (bf16 copy): generate, ppl, distill, eval,
#      each also on the CPU where a comparison is cheap
#   5. lincat bench kernels: prefill 4K..64K, decode batch 1..256, vs SDPA softmax, with the
#      matmul rate of the same run
# Before: bash kernels/device/prepare.sh here; then device run, carry [".device"], command
#   bash kernels/device/check.sh   (timeout_s 600). Everything lands in $OUT (log.txt, *.txt).
set -u
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
root=$(pwd)
start=$(date +%s)
stage() { echo; echo "=== [$(($(date +%s) - start)) s] $*"; }
ok=0
failed() { echo "!!! FAILED: $*"; ok=1; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
nvcc --version | tail -1 || true
PY=/opt/torch/.venv/bin/python3
[ -x $PY ] || PY=python3
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'

stage "1. kernels alone: build + test_kernels_cuda"
cmake -S kernels -B /tmp/lk -G Ninja -DCMAKE_BUILD_TYPE=Release >/tmp/lk.cfg 2>&1 || { cat /tmp/lk.cfg; failed "kernels configure"; }
cmake --build /tmp/lk -j 16 || failed "kernels build"
/tmp/lk/test_kernels_cuda | tee "$OUT/kernels_cuda.txt"
[ "${PIPESTATUS[0]}" = 0 ] || failed "test_kernels_cuda"

stage "2. core against PyTorch's LibTorch"
TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
TORCH_LIB=$($PY -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
dep=$root/.device/usr
export TORCH_CUDA_ARCH_LIST=9.0
cmake -S . -B /tmp/lb -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINCAT_BUILD_STUDIO=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$dep" -DSQLite3_INCLUDE_DIR="$dep/include" \
  -DSQLite3_LIBRARY="$dep/lib/sqlite/libsqlite3.so" -DCMAKE_CUDA_ARCHITECTURES=90 >/tmp/lb.cfg 2>&1 \
  || { tail -40 /tmp/lb.cfg; failed "core configure"; }
grep "lincat:" /tmp/lb.cfg
cmake --build /tmp/lb -j 16 --target lincat test_kernels_host test_hybrid 2>&1 | grep -E "error|FAILED|\[[0-9]+/[0-9]+\] Linking" | tail -30
export LD_LIBRARY_PATH="$dep/lib/sqlite:$TORCH_LIB:${LD_LIBRARY_PATH:-}"
[ -x /tmp/lb/lincat ] || failed "lincat did not build"

stage "3. core GPU tests"
/tmp/lb/tests/test_kernels_host 2>&1 | tail -25 | tee "$OUT/test_kernels_host.txt"
/tmp/lb/tests/test_hybrid --gtest_brief=1 2>&1 | tail -5

stage "4. pipeline with --device cuda (stories15M in bf16)"
L=/tmp/lb/lincat
M=$root/.device/models/stories15M
ws=/tmp/ws
rm -rf $ws
for dev in cpu cuda; do
  timeout 120 $L generate --model $M --device $dev --dtype fp32 --prompt "Once upon a time" --max-new-tokens 40 --json \
    | tee "$OUT/generate_$dev.json" || failed "generate $dev"
done
$L generate --model $M --device cuda --prompt "Once upon a time" --max-new-tokens 40 --json | tee "$OUT/generate_cuda_bf16.json"
printf 'Once upon a time, there was a little boy named Tim. Tim liked to play with his red ball in the park. One day, he saw a big dog. The dog wanted to play too. Tim and the dog played all day and became friends.\n' > /tmp/story.txt
for dev in cpu cuda; do
  timeout 120 $L ppl --model $M --data /tmp/story.txt --device $dev --dtype fp32 2>&1 | tail -3 | tee "$OUT/ppl_$dev.txt" \
    || failed "ppl $dev"
done
timeout 240 $L distill --model $M --workspace $ws --device cuda --steps 40 --teacher-sequences 64 --json \
  2>&1 | tail -30 | tee "$OUT/distill_cuda.txt" || failed "distill cuda"
timeout 120 $L eval --model $M --workspace $ws --run 1 --device cuda --json 2>&1 | tail -30 | tee "$OUT/eval_cuda.txt" \
  || failed "eval cuda"
timeout 120 $L generate --model $M --workspace $ws --run 1 --device cuda --prompt "Once upon a time" \
  --max-new-tokens 40 --json | tee "$OUT/generate_linear_cuda.json" || failed "generate linearized cuda"
# The same greedy text with the kernels switched off: the dispatch changes nothing but speed.
for k in 0 1; do
  LINCAT_NO_KERNELS=$k timeout 120 $L generate --model $M --workspace $ws --run 1 --device cuda --dtype fp32 \
    --prompt "Once upon a time" --max-new-tokens 60 --json | tee "$OUT/generate_linear_fp32_nokernels$k.json"
done
$PY - "$OUT/generate_linear_fp32_nokernels0.json" "$OUT/generate_linear_fp32_nokernels1.json" <<'PY' || failed "kernels change the text"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ta, tb = a.get("text", a), b.get("text", b)
print("kernel text == LibTorch text:", ta == tb)
sys.exit(0 if ta == tb else 1)
PY
timeout 120 $L bench decode --model $M --workspace $ws --run 1 --device cuda 2>&1 | tail -15 | tee "$OUT/bench_decode.txt"

stage "5. bench kernels"
timeout 240 $L bench kernels --device cuda 2>&1 | tee "$OUT/bench_kernels.txt" || failed "bench kernels"
timeout 120 $L bench kernels --device cuda --variant sw --n 4K,64K --batch 1,256 2>&1 | tee "$OUT/bench_kernels_sw.txt"
timeout 120 $L bench kernels --device cuda --dtype fp32 --n 4K,16K --batch 1,64 2>&1 | tee "$OUT/bench_kernels_fp32.txt"

stage "done: $([ $ok = 0 ] && echo all passed || echo some FAILED)"
exit $ok
