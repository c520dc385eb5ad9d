#!/usr/bin/env bash
# Re-measure `bench train` on the lent GPU with timing windows of at least --min-seconds (see README "GPU").
set -uo pipefail
source .gpu/device-env.sh
T="dotnet .gpu/app/Train.dll"
nvidia-smi -L | tee $OUT/card.txt; date -u >> $OUT/card.txt
for b in 64 256; do
  timeout 140 $T bench train --device cuda --width 1,0.75,0.5,0.25 --batch-size $b --steps 40 --warmup 5 --min-seconds 1 --json \
    > $OUT/bench_train_b$b.json
done
