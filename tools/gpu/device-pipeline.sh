#!/usr/bin/env bash
# The pipeline issue's GPU check as one device call (not yet run on a card): bench pipeline with the gather on the GPU,
# then bench epoch at bf16, batch 256, widths 1.0 and 0.25, each epoch through the three paths (decoded and resized:
# per sample on the host's workers; gather: the resized images on the GPU, one gather per batch) against the same
# steps on batches made in advance. Goals: the gather's images/s >= the pure step's, and each epoch >= 95% of it.
# Prepare here first: tools/gpu/make-kit.sh --src TORCHSHARP_NATIVE_SOURCES (then carry .gpu).
set -uo pipefail
source .gpu/device-env.sh
T="dotnet .gpu/app/Train.dll"
{ nvidia-smi -L; date -u; nproc; } | tee $OUT/card.txt
timeout 150 $T bench pipeline --images 1024 --workers $(nproc) --device cuda > $OUT/bench_pipeline.json 2> $OUT/bench_pipeline.log; echo "pipeline exit $?"
for w in 1.0 0.25; do
  timeout 200 $T bench epoch --device cuda --precision bf16 --width $w --batch-size 256 --images 5120 --epochs 2 --workers $(nproc) \
    --paths decoded,resized,gather --json > $OUT/bench_epoch_w$w.json 2> $OUT/bench_epoch_w$w.log; echo "epoch w$w exit $?"
done
