#!/usr/bin/env bash
# The kill test: a small 3-epoch fine-tuning is SIGKILLed at each rename and delete of its run folder in turn
# (KM_FAULT_KILL_AT=N, see Backend/FaultPoints.cs), then started again (--resume where it had committed an epoch,
# else afresh, as a user would), and each result must equal the uninterrupted run's: history.csv (every column but
# the wall-clock seconds), summary.json (best and final val accuracy, best epoch, epochs), best.safetensors, byte
# for byte, and the TensorBoard event files (one per epoch). Needs the Release build (dotnet build -c Release). Run by CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
T=(dotnet "$root/src/Train/bin/Release/net10.0/Train.dll")
work=$(mktemp -d /tmp/km-kill-XXXXXX)
trap 'rm -rf "$work"' EXIT
"${T[@]}" synth --out "$work/data" --classes 3 --train 8 --val 4 --size 32 >/dev/null
base=(--dataset folder --data "$work/data" --image-size 32 --batch-size 8 --width 0.25 --arch notebook --workers 1 --lr 3e-3)
# A fine-tuning run (phase 1 in epoch 1, phase 2 from block 3 after it) from a first run's weights: on a CPU its frozen
# part and its validation run in ONNX Runtime, so resuming through that path is checked too.
"${T[@]}" "${base[@]}" --epochs 1 --out "$work/start" >"$work/start.log" 2>&1 || { cat "$work/start.log"; exit 1; }
args=("${base[@]}" --epochs 3 --weights "$work/start/best.safetensors" --unfreeze-epoch 1 --unfreeze-from 3)
KM_FAULT_COUNT="$work/count" "${T[@]}" "${args[@]}" --out "$work/ref" >"$work/ref.log" 2>&1 || { cat "$work/ref.log"; exit 1; }
points=$(cat "$work/count")
fingerprint() {  # what must not depend on where the run was killed
  local d=$1
  cut -d, -f1-7 "$d/history.csv"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["best_val_accuracy"], s["best_epoch"], s["final_val_accuracy"], s["epochs"], s["stop_reason"])' "$d/summary.json"
  sha256sum < "$d/best.safetensors"
  ls -A "$d/tensorboard"  # one event file per committed epoch, nothing else (their values: EndToEndTests)
}
fingerprint "$work/ref" > "$work/ref.txt"
failed=0
start=$(date +%s)
for k in $(seq 1 "$points"); do
  out="$work/k$k"
  set +e; KM_FAULT_KILL_AT=$k "${T[@]}" "${args[@]}" --out "$out" >"$work/k$k.log" 2>&1; code=$?; set -e
  if [ $code -ne 137 ]; then echo "point $k of $points: expected SIGKILL (137), got $code"; failed=1; continue; fi
  again=(); [ -f "$out/trainer_state.json" ] && again=(--resume)
  if ! "${T[@]}" "${args[@]}" --out "$out" "${again[@]}" >>"$work/k$k.log" 2>&1; then
    echo "point $k of $points: the second start failed:"; tail -n 3 "$work/k$k.log"; failed=1; continue
  fi
  if ! fingerprint "$out" | diff -q - "$work/ref.txt" >/dev/null; then
    echo "point $k of $points (${again[*]:-fresh}): differs from the uninterrupted run:"; fingerprint "$out" | diff - "$work/ref.txt" | head -n 8; failed=1
  fi
  left=$(find "$out" -name '*.tmp' | wc -l)
  [ "$left" = 0 ] || { echo "point $k: $left temp file(s) left behind"; failed=1; }
done
echo "kill test: $points kill points, $(( $(date +%s) - start )) s, $([ $failed = 0 ] && echo 'every resumed run equals the uninterrupted one' || echo FAILED)"
exit $failed
