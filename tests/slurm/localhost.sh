#!/bin/bash
# A real single-node Slurm on localhost (munged + slurmctld + slurmd from a generated
# slurm.conf) runs the scripts `lincat slurm --emit` writes for stories15M, k = 3: one dump job
# per block chained with afterok (each holds one block's layers), each block's training after its
# own dump job, and the stitch after both. The stitched run must evaluate like the same pipeline
# run locally (dump-states, distill --parallel 2, stitch).
# Usage: localhost.sh LINCAT_BINARY. Exit 77 (ctest: skipped) with the reason when Slurm is absent.
set -euo pipefail
LINCAT=$(readlink -f "$1")
for tool in munged slurmctld slurmd sbatch squeue; do
  if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
    echo "SKIPPED: $tool not installed (packaging/install-deps.sh --slurm installs Slurm; CI does)"; exit 77
  fi
done
if [ "$(id -u)" != 0 ]; then echo "SKIPPED: starting munged and slurmd needs root"; exit 77; fi
export PATH=/usr/sbin:$PATH OMP_NUM_THREADS=1

D=$(mktemp -d /tmp/lincat-slurm-XXXXXX)
cleanup() {
  for p in slurmd slurmctld; do [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null || true; done
  [ -n "${MUNGED_STARTED:-}" ] && pkill -x munged 2>/dev/null || true
  sleep 1; rm -rf "$D"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$D"/log/*.log "$D"/ws/logs/*.log; do [ -f "$f" ] && { echo "== $f"; tail -20 "$f"; }; done; exit 1; }

# munge: the key comes with the Debian package; one daemon per machine.
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge; chown -R munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  [ -f /etc/munge/munge.key ] || { mungekey -c 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  su -s /bin/sh munge -c /usr/sbin/munged || /usr/sbin/munged --force
  MUNGED_STARTED=1
fi

H=$(hostname -s); CPUS=$(nproc); MEM=$(free -m | awk '/Mem:/ {print $2}')
PORT=$((16800 + RANDOM % 1000))
mkdir -p "$D/state" "$D/spool" "$D/log"
cat > "$D/slurm.conf" <<CONF
ClusterName=lincattest
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$H NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$D/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for i in $(seq 1 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %T | grep -q idle || fail "the Slurm node did not come up"
echo "slurm up on $H (port $PORT) after ${SECONDS}s"

DUMP_ARGS="--seq-len 64 --teacher-sequences 24 --shard-rows 8"
TRAIN_ARGS="--steps 8 --batch-size 2 --eval-every 4 --checkpoint-every 4 --window 16"
"$LINCAT" plan --config default --tokens 1536 --seq-len 64 --json > "$D/plan.json"
"$LINCAT" slurm --plan "$D/plan.json" --emit "$D/jobs" --workspace "$D/ws" --k 3 --gpus 0 --cpus 1 --mem 2G \
  --dump-args "$DUMP_ARGS" --distill-args "$TRAIN_ARGS"
grep -q -- "seq 0 1" "$D/jobs/submit.sh" || fail "k = 3 should give 2 blocks"
grep -q -- '--block "$BLOCK"' "$D/jobs/dump.sbatch" || fail "the dump job should dump one block"
"$D/jobs/submit.sh" | tee "$D/submit.txt"
grep -c "^block [01]: dump [0-9]*, training [0-9]*" "$D/submit.txt" | grep -qx 2 || fail "submit.sh did not submit 2 dump + 2 training jobs"

# Wait for the five jobs (each dump ~5 s, each block ~10 s, stitch ~5 s here).
for i in $(seq 1 300); do
  [ -z "$(squeue -h -o %i)" ] && break; sleep 2
done
[ -z "$(squeue -h -o %i)" ] && echo "queue drained after ${SECONDS}s" || fail "jobs still queued after 600 s: $(squeue)"

STITCHED=$("$LINCAT" eval --workspace "$D/ws" --run 4 --json 2>/dev/null) || fail "the stitched run 4 does not evaluate"
grep -q "stitched 2 blocks" "$D"/ws/logs/stitch-*.log || fail "the stitch job did not stitch"
[ "$(ls "$D"/ws/logs/dump-*.log | wc -l)" = 2 ] || fail "expected 2 dump job logs"
grep -q "blocks 0..0 of 2 are ready" "$D"/ws/logs/dump-*.log || fail "the first dump job did not hand block 0 over"

# The same pipeline run locally.
"$LINCAT" dump-states --k 3 --workspace "$D/local" $DUMP_ARGS >/dev/null
"$LINCAT" distill --states "$D/local/states/k3" --workspace "$D/local" --parallel 2 $TRAIN_ARGS >/dev/null
"$LINCAT" stitch --states "$D/local/states/k3" --workspace "$D/local" >/dev/null
LOCAL=$("$LINCAT" eval --workspace "$D/local" --run 4 --json 2>/dev/null)

# CPU training is deterministic with one thread per process: the two must agree to 1e-4
# relative (a bound that still allows another BLAS thread split, not another model).
/usr/bin/python3 - "$STITCHED" "$LOCAL" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("slurm: teacher ppl %.4f, stitched %.4f | local: teacher %.4f, stitched %.4f" %
      (a["teacher_ppl"], a["student_ppl"], b["teacher_ppl"], b["student_ppl"]))
for key in ("teacher_ppl", "student_ppl", "top1_agreement", "kl"):
    if abs(a[key] - b[key]) > 1e-4 * max(1.0, abs(b[key])):
        sys.exit("FAIL: %s differs: slurm %r vs local %r" % (key, a[key], b[key]))
for x, y in zip(a["layer_mse"], b["layer_mse"]):
    if abs(x - y) > 1e-4 * abs(y) + 1e-9:
        sys.exit("FAIL: layer MSE differs: %r vs %r" % (a["layer_mse"], b["layer_mse"]))
PY
echo "PASS: slurm-trained stitched checkpoint evaluates like the local one (${SECONDS}s)"
