#!/usr/bin/env bash
# The whole GPU check, as one command on the lent machine (see README "GPU"). Writes everything into $OUT.
# Prepare here first:  ../shared/gpu/make-kit.sh src/Train   (then carry .gpu)
set -uo pipefail
source .gpu/device-env.sh
T="dotnet .gpu/app/Train.dll"
nvidia-smi -L | tee $OUT/card.txt; date -u >> $OUT/card.txt
nproc >> $OUT/card.txt
# 1. train step and inference, ours vs TorchVision.NET, same process
for b in 64 256; do
  timeout 150 $T bench train --device cuda --width 1,0.75,0.5,0.25 --batch-size $b --steps 15 --warmup 5 --rounds 2 --json \
    > $OUT/bench_train_b$b.json 2> $OUT/bench_train_b$b.log; tail -n 6 $OUT/bench_train_b$b.log
done
# 2. one epoch through the pipeline vs pure steps, on the card's host cores
timeout 120 $T bench epoch --device cuda --width 1.0 --batch-size 64 --images 2560 --epochs 2 --workers $(nproc) --json \
  > $OUT/bench_epoch.json 2> $OUT/bench_epoch.log; tail -n 4 $OUT/bench_epoch.log
# 3. a short real training on generated data: loss falls, checkpoints, curves
$T synth --out /tmp/shapes --classes 4 --train 400 --val 100 --size 64 > /dev/null
timeout 150 $T --dataset folder --data /tmp/shapes --image-size 64 --epochs 6 --batch-size 64 --width 0.5 --arch paper \
  --lr 3e-3 --device cuda --workers $(nproc) --out /tmp/gpurun > $OUT/train.log 2>&1; tail -n 8 $OUT/train.log
cp /tmp/gpurun/curves.png /tmp/gpurun/history.csv /tmp/gpurun/summary.json $OUT/ 2>/dev/null
# 4. PyTorch reference and cross-checks
timeout 120 python3 tools/gpu/pytorch_checks.py "$T" /tmp/gpurun "$(ls /tmp/shapes/val/square/*.png | head -n 1)" $OUT/pytorch_checks.json \
  > $OUT/pytorch_checks.log 2>&1; tail -n 30 $OUT/pytorch_checks.log
