#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60),
# as many at once as there are cores (LINCAT_FUZZ_JOBS),
# on its committed seed corpus (tests/fuzz/corpus/TARGET), or for RUNS executions with
# LINCAT_FUZZ_RUNS. Prints a table: target, executions, seconds, crashes. A crash leaves its
# input in build-fuzz/crashes/TARGET/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
build=build-fuzz
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLINCAT_FUZZ=ON \
  > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" > "$build/build.log" 2>&1 || { tail -50 "$build/build.log"; exit 1; }
targets="${LINCAT_FUZZ_TARGETS:-$(ls tests/fuzz/fuzz_*.cpp | sed 's|.*/fuzz_||; s|\.cpp$||')}"
jobs="${LINCAT_FUZZ_JOBS:-$(nproc)}"  # targets fuzzed at once, one core each

# Fuzzes one target; writes its table row to $build/row_$t and exits with the fuzzer's status.
fuzz_one() {
  local t=$1 work="$build/corpus/$1"  # the grown corpus stays out of the repo; seeds are read-only
  mkdir -p "$work" "$build/crashes/$t"
  local limit=(-max_total_time="$seconds")
  [ -n "${LINCAT_FUZZ_RUNS:-}" ] && limit=(-runs="$LINCAT_FUZZ_RUNS")
  local start end rc execs crashes
  start=$(date +%s)
  set +e
  "$build/tests/fuzz/fuzz_$t" "${limit[@]}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$t/" "$work" "tests/fuzz/corpus/$t" > "$build/fuzz_$t.log" 2>&1
  rc=$?
  set -e
  end=$(date +%s)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz_$t.log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(ls "$build/crashes/$t" | wc -l)
  printf "%-20s %14s %9.0f %8s\n" "$t" "$execs" "$((end - start))" "$crashes" > "$build/row_$t"
  return $rc
}

declare -A pid_of
for t in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
  pid_of[$t]=$!
done
status=0
failed=""
for t in $targets; do
  wait "${pid_of[$t]}" || { status=1; failed="$failed $t"; }
done
printf "%-20s %14s %9s %8s\n" target executions seconds crashes
for t in $targets; do cat "$build/row_$t"; done
for t in $failed; do
  echo "fuzz_$t failed; last lines of $build/fuzz_$t.log:" >&2
  tail -40 "$build/fuzz_$t.log" >&2
done
exit $status
