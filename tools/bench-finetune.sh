#!/usr/bin/env bash
# A fine-tuning epoch on this CPU with each --inference-engine (docs/benchmarks.md): width 1.0, 224 px crops, batch 32,
# starting from a run's weights; epoch 1 is phase 1 (--unfreeze-epoch 1: all of features frozen) and epoch 2 phase 2
# from block 14. Prints each epoch's training seconds (validation excluded) from the run's log.
# Usage: bash tools/bench-finetune.sh [TRAIN_IMAGES_PER_CLASS]   (4 classes; default 64: 256 images an epoch)
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/Train -c Release -v quiet -nologo >/dev/null
km=(dotnet src/Train/bin/Release/net10.0/Train.dll)
per=${1:-64}
work=$(mktemp -d /tmp/km-bench-finetune-XXXXXX); trap 'rm -rf "$work"' EXIT
"${km[@]}" synth --out "$work/data" --size 256 --train "$per" --val 4 >/dev/null
# The starting weights: a width-1.0 network's checkpoint (one epoch on a few images is enough: only the shapes matter).
"${km[@]}" --dataset folder --data "$work/data" --image-size 64 --width 1.0 --epochs 1 --batch-size 64 --out "$work/start" >/dev/null 2>&1
common=(--dataset folder --data "$work/data" --image-size 224 --width 1.0 --batch-size 32 --weights "$work/start/best.safetensors" --workers 2)
echo "| phase | engine | images | train seconds | images/s |"
echo "| --- | --- | ---: | ---: | ---: |"
rows=()
for engine in torch onnxruntime; do
  # Epoch 1: phase 1 (every child of features frozen); epoch 2: phase 2 from block 14.
  log=$("${km[@]}" "${common[@]}" --epochs 2 --unfreeze-epoch 1 --unfreeze-from 14 --inference-engine "$engine" --out "$work/$engine" 2>&1)
  for e in 1 2; do
    secs=$(grep -oP "^Epoch $e/2 - \K[0-9.]+(?=s)" <<<"$log")
    rows+=("$e|$engine|$secs")
  done
done
for e in 1 2; do
  for r in "${rows[@]}"; do
    IFS='|' read -r epoch engine secs <<<"$r"
    [ "$epoch" = "$e" ] || continue
    awk -v p="$([ "$e" = 1 ] && echo "1 (features frozen)" || echo "2 (from block 14)")" -v e="$engine" -v n=$((per * 4)) -v s="$secs" \
      'BEGIN { printf "| %s | %s | %d | %.1f | %.1f |\n", p, e, n, s, n / s }'
  done
done
echo "($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
