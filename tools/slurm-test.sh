#!/usr/bin/env bash
# The Slurm test: a one-node Slurm cluster on this machine (tools/slurm/cluster.sh: Debian's slurm-wlm and munge,
# installed if missing), then
#  1. `Train sweep slurm` for a 2 widths x 2 seeds grid, its submit.sh (array job + afterok merge job), waited for:
#     four complete run folders, the merged figures and report with mean +- sd;
#  2. one array task requeued (`scontrol requeue`) after it has committed an epoch, mid-run: its run folder must equal
#     the uninterrupted task's (history but the seconds, best and final accuracy, best.safetensors byte for byte).
# Every daemon it started is stopped on exit. Needs the Release build. Run by CI (about 2 minutes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
T=(dotnet "$root/src/Train/bin/Release/net10.0/Train.dll")
work=$(mktemp -d /tmp/km-slurm-XXXXXX)
source "$root/tools/slurm/cluster.sh"
trap 'cluster_down; [ -n "${KM_KEEP:-}" ] || rm -rf "$work"' EXIT
start=$(date +%s)
cluster_up "$work/cluster"
"${T[@]}" synth --out "$work/data" --classes 3 --train 8 --val 4 --size 32 >/dev/null
train=(--dataset folder --data "$work/data" --image-size 32 --epochs 3 --batch-size 8 --workers 1 --lr 3e-3)

wait_jobs() {  # until the queue is empty (at most $1 seconds)
  local i
  for i in $(seq 1 "$1"); do
    [ -z "$(squeue -h -o %i)" ] && return 0
    sleep 1
  done
  echo "slurm test: jobs still queued after $1 s:"; squeue; tail -n 5 "$work"/*/logs/* 2>/dev/null; return 1
}
fingerprint() {
  cut -d, -f1-7 "$1/history.csv"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["best_val_accuracy"], s["best_epoch"], s["final_val_accuracy"], s["epochs"])' "$1/summary.json"
  sha256sum < "$1/best.safetensors"
}

# 1. The whole grid through the scheduler.
"${T[@]}" sweep slurm --width 0.5,0.25 --seeds 0,1 --arch notebook --out "$work/grid" --job-name km-test -- "${train[@]}" > "$work/sweep.txt"
bash "$work/grid/slurm/submit.sh"
wait_jobs 600
failed=0
for cell in notebook-w0.5-s0 notebook-w0.5-s1 notebook-w0.25-s0 notebook-w0.25-s1; do
  [ -f "$work/grid/$cell/summary.json" ] && [ -f "$work/grid/$cell/best.safetensors" ] || { echo "slurm test: $cell is not complete"; failed=1; }
done
for f in report.md curves.png accuracy_vs_cost.png lr.png; do
  [ -s "$work/grid/$f" ] || { echo "slurm test: the merge job did not write $f"; failed=1; }
done
grep -q "± " "$work/grid/report.md" || { echo "slurm test: report.md has no mean ± sd"; failed=1; }
[ $failed = 0 ] || { tail -n 20 "$work/grid/logs/"*; exit 1; }
echo "slurm test: 4 array tasks and the merge job done in $(( $(date +%s) - start )) s"

# 2. One task requeued mid-run (after its first epoch's commit) resumes to the same run folder.
"${T[@]}" sweep slurm --width 0.25 --seeds 1 --arch notebook --out "$work/requeue" --job-name km-requeue -- "${train[@]}" > /dev/null
job=$(KM_THROTTLE_MS=400 sbatch --parsable --export=ALL "$work/requeue/slurm/train.sbatch"); job=${job%%;*}
cell=$work/requeue/notebook-w0.25-s1
for i in $(seq 1 300); do [ -f "$cell/trainer_state.json" ] && break; sleep 0.2; done
[ -f "$cell/trainer_state.json" ] || { echo "slurm test: the task committed no epoch"; cat "$work/requeue/logs/"*; exit 1; }
scontrol requeue "${job}_0"
# A requeued job waits two minutes before it may start again (Slurm's guard against a requeue loop); here, at once.
for i in $(seq 1 60); do
  [ "$(squeue -h -j "$job" -o %T)" = PENDING ] && { scontrol update JobId="${job}_0" StartTime=now 2>/dev/null || true; break; }
  sleep 0.5
done
wait_jobs 600
grep -q "resuming $cell after epoch" "$work/requeue/logs/"* || { echo "slurm test: the requeued task did not resume:"; cat "$work/requeue/logs/"*; exit 1; }
if ! diff <(fingerprint "$cell") <(fingerprint "$work/grid/notebook-w0.25-s1"); then
  echo "slurm test: the requeued task's run folder differs from the uninterrupted one"; exit 1
fi
echo "slurm test: a task requeued after epoch $(grep -o 'resuming .* after epoch [0-9]*' "$work/requeue/logs/"* | grep -o '[0-9]*$' | head -n 1) resumed and equals the uninterrupted one; $(( $(date +%s) - start )) s in all"
