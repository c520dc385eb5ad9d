#!/usr/bin/env bash
# The whole GPU check, as one command on the lent machine (see docs/gpu.md). Writes everything into $OUT.
# Prepare here first:  tools/gpu/make-kit.sh --src TORCHSHARP_NATIVE_SOURCES   (then carry .gpu)
set -uo pipefail
source .gpu/device-env.sh
T="dotnet .gpu/app/Train.dll"
nvidia-smi -L | tee $OUT/card.txt; date -u >> $OUT/card.txt
nproc >> $OUT/card.txt
# ONLY_TRAINING=1 skips the benchmarks (steps 1 and 2; tools/gpu/device-bench.sh has them) for a short call.
if [ "${ONLY_TRAINING:-0}" != 1 ]; then
# 1. train step and inference, ours vs TorchVision.NET, same process
# (batch 64 is launch-bound and jittery on an H100: more alternating rounds, the median kept)
for b in 64 256; do
  timeout $([ $b = 64 ] && echo 110 || echo 170) $T bench train --device cuda --width 1,0.75,0.5,0.25 --batch-size $b --steps 40 --warmup 5 --json \
    > $OUT/bench_train_b$b.json
done
# 2. one epoch through the pipeline vs pure steps, on the card's host cores
timeout 90 $T bench epoch --device cuda --width 1.0 --batch-size 64 --images 2560 --epochs 2 --workers $(nproc) --json \
  > $OUT/bench_epoch.json
fi
# 3. a short real training on generated data: loss falls, checkpoints, curves
$T synth --out /tmp/shapes --classes 4 --train 400 --val 100 --size 64 > /dev/null
timeout 90 $T --dataset folder --data /tmp/shapes --image-size 64 --epochs 6 --batch-size 64 --width 0.5 --arch paper \
  --lr 3e-3 --device cuda --workers $(nproc) --out /tmp/gpurun 2>&1 | tail -n 4; echo "train exit ${PIPESTATUS[0]}"
cp /tmp/gpurun/curves.png /tmp/gpurun/history.csv $OUT/ 2>/dev/null
# 4. PyTorch reference and cross-checks
timeout 100 python3 tools/gpu/pytorch_checks.py "$T" /tmp/gpurun "$(ls /tmp/shapes/val/square/*.png | head -n 1)" $OUT/pytorch_checks.json \
  2>&1 | tail -n 40
# at most 8 files come back: card.txt, bench_train_b64.json, bench_train_b256.json, bench_epoch.json, curves.png,
# history.csv, pytorch_checks.json
