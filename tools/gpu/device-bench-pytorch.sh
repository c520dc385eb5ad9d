#!/usr/bin/env bash
# Issue 10's GPU check as one device call: ours (bench train: fp32 with the multi-tensor AdamW; bf16 + channels-last)
# and PyTorch's twin (tools/gpu/pytorch_bench.py: foreach fp32; bf16 autocast + channels_last + fused AdamW +
# cudnn.benchmark) on the same card, widths 1.0/0.5/0.25 at batch 64 and 256, then bench epoch at bf16.
# Prepare here: tools/gpu/make-kit.sh --src TORCHSHARP_NATIVE_SOURCES; carry .gpu. Results land in $OUT.
set -uo pipefail
source .gpu/device-env.sh
T="dotnet .gpu/app/Train.dll"
{ nvidia-smi -L; date -u; nproc; } | tee $OUT/card.txt
for b in 64 256; do
  timeout 120 $T bench train --device cuda --width 1,0.5,0.25 --batch-size $b --steps 30 --warmup 5 --min-seconds 1 --json \
    > $OUT/ours_fp32_b$b.json; echo "ours fp32 b$b exit $?"
  timeout 120 $T bench train --device cuda --width 1,0.5,0.25 --batch-size $b --steps 30 --warmup 5 --min-seconds 1 --json \
    --precision bf16 --memory-format channels_last > $OUT/ours_bf16_b$b.json; echo "ours bf16 b$b exit $?"
done
timeout 200 python3 tools/gpu/pytorch_bench.py $OUT/pytorch.json --widths 1,0.5,0.25 --batches 64,256; echo "pytorch exit $?"
timeout 120 $T bench epoch --device cuda --width 1.0 --batch-size 256 --images 5120 --epochs 2 --workers $(nproc) --json \
  --precision bf16 > $OUT/bench_epoch_bf16.json; echo "epoch exit $?"
