#!/usr/bin/env bash
# Fault injection: `lincat distill` killed with SIGKILL at KILLS seeded random moments, each
# followed by `--resume`, until the run completes. Then: its final checkpoint must equal an
# uninterrupted run's (max |diff| <= 1e-5: same data order, restored optimizer; fp32 noise
# only), and the database must hold each step's train row exactly once.
# Without the teacher cache: a resumed run refills it from batches whose rows keep other company
# than the uninterrupted run's first epoch, and some BLAS kernels (OpenBLAS's AVX-512 sgemm)
# round a row by its place in the batch, which 300 steps grow to 2e-5.
#   tests/fault/kill_resume.sh LINCAT_BINARY [KILLS=20] [SEED=1]
set -euo pipefail
lincat="$1"; kills="${2:-20}"; seed="${3:-1}"
work="$(mktemp -d /tmp/lincat-kill-XXXXXX)"
trap 'rm -rf "$work"' EXIT
ws="$work/ws"
steps=300
args=(--workspace "$ws" --steps $steps --seq-len 64 --teacher-sequences 24 --batch-size 2 --window 16
      --eval-every 4 --checkpoint-every 4 --teacher-cache-mb 0)
export OMP_NUM_THREADS=1 LINCAT_THREADS=1

"$lincat" distill "${args[@]}" > "$work/reference.out" 2>&1   # run 1, uninterrupted (also caches the data)
start=$(date +%s.%N)
"$lincat" distill "${args[@]}" --resume 1 > /dev/null 2>&1 && { echo "resuming a completed run must fail"; exit 1; }
RANDOM=$seed
killed=0; resumed=0; finished_early=0
cmd=("$lincat" distill "${args[@]}")  # the first attempt creates run 2
while [ $killed -lt "$kills" ]; do
  "${cmd[@]}" > "$work/attempt.out" 2>&1 &
  pid=$!
  # 0.2 .. 2.2 s: from start-up (model load) through training, evaluations and checkpoint writes.
  sleep "$(printf '%d.%03d' $((RANDOM % 2)) $((200 + RANDOM % 800)))"
  if kill -9 $pid 2>/dev/null; then
    killed=$((killed + 1))
    wait $pid 2>/dev/null || true
  else
    finished_early=$((finished_early + 1))
    wait $pid || { echo "an attempt failed on its own:"; cat "$work/attempt.out"; exit 1; }
  fi
  state=$(/usr/bin/python3 - "$ws/lincat.db" <<'PY'
import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT status FROM runs WHERE id = 2").fetchone()
print(row[0] if row else "none")
PY
)
  [ "$state" = completed ] && break
  # Killed before the run was recorded (during start-up): start it afresh; else resume it.
  [ "$state" != none ] && cmd=("$lincat" distill "${args[@]}" --resume 2)
  resumed=$((resumed + 1))
done
# Finish the run if the last kill left it incomplete.
if ! "$lincat" distill "${args[@]}" --resume 2 > "$work/final.out" 2>&1; then
  grep -q "already completed" "$work/final.out" || { echo "the final resume failed:"; cat "$work/final.out"; exit 1; }
fi

/usr/bin/python3 - "$ws" $steps "$killed" "$resumed" "$finished_early" "$kills" <<'PY'
import json, sqlite3, struct, sys
import numpy as np
ws, steps, killed, resumed, early = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:6])
db = sqlite3.connect(ws + "/lincat.db")

def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, info in head.items():
        if name == "__metadata__": continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32)
    return out

def final(run):
    (path,) = db.execute("SELECT path FROM checkpoints WHERE run_id = ? AND is_best = 0 ORDER BY step DESC LIMIT 1",
                         (run,)).fetchone()
    return tensors(((ws + "/" + path) if not path.startswith("/") else path) + "/linear.safetensors")

status = db.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0]
rows = db.execute("SELECT step, COUNT(*) FROM metrics WHERE run_id = 2 AND split = 'train' GROUP BY step").fetchall()
a, b = final(1), final(2)
diff = max(float(np.abs(a[k] - b[k]).max()) for k in a)
print(f"kills {killed}, resumes {resumed}, attempts that finished before their kill {early}")
print(f"run 2 {status}; train rows: {len(rows)} distinct steps, max count per step "
      f"{max(c for _, c in rows) if rows else 0}; final checkpoint max |diff| vs uninterrupted: {diff:.3g}")
ok = (killed == int(sys.argv[6]) and status == "completed" and sorted(s for s, _ in rows) == list(range(steps)) and all(c == 1 for _, c in rows)
      and diff <= 1e-5 and set(a) == set(b))
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
