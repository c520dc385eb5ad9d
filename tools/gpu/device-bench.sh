#!/usr/bin/env bash
# The GPU speed check as one device call (see docs/gpu.md): bench train at batch 64 and 256 (step-paired medians),
# bench epoch (each epoch against its own batches made in advance), and width 0.25 at batch 64 twice more, since
# that launch-bound cell is the noisiest. Prepare here first: tools/gpu/make-kit.sh --src TORCHSHARP_NATIVE_SOURCES (then carry .gpu).
set -uo pipefail
source .gpu/device-env.sh
T="dotnet .gpu/app/Train.dll"
{ nvidia-smi -L; date -u; nproc; } | tee $OUT/card.txt
timeout 150 $T bench train --device cuda --width 1,0.75,0.5,0.25 --batch-size 64 --steps 100 --warmup 10 --min-seconds 1 --json \
  > $OUT/bench_train_b64.json; echo "b64 exit $?"
timeout 150 $T bench train --device cuda --width 1,0.75,0.5,0.25 --batch-size 256 --steps 30 --warmup 5 --min-seconds 1 --json \
  > $OUT/bench_train_b256.json; echo "b256 exit $?"
timeout 120 $T bench epoch --device cuda --width 1.0 --batch-size 64 --images 2560 --epochs 2 --workers $(nproc) --json \
  > $OUT/bench_epoch.json; echo "epoch exit $?"
for r in 2 3; do
  timeout 60 $T bench train --device cuda --width 0.25 --batch-size 64 --steps 100 --warmup 10 --min-seconds 1 --json \
    > $OUT/bench_train_b64_w025_run$r.json; echo "w0.25 run $r exit $?"
done
