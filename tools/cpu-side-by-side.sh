#!/usr/bin/env bash
# The CPU side-by-side of docs/benchmarks.md from one run: our train step (bench train: ours against TorchVision.NET,
# contiguous and channels-last) and PyTorch's (Debian's python3-torch, tools/gpu/pytorch_bench.py) at the same thread
# count, 224 px, batch 32, widths 1.0 and 0.5, one after the other with nothing else running.
#   bash tools/cpu-side-by-side.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /tmp/km-side-by-side-XXXXXX)}; mkdir -p "$out"
threads=$(nproc)
dotnet build src/Train -c Release -v quiet -nologo >/dev/null
km=(dotnet src/Train/bin/Release/net10.0/Train.dll)
for format in contiguous channels_last; do
  "${km[@]}" bench train --device cpu --width 1,0.5 --batch-size 32 --steps 5 --warmup 2 --memory-format $format --json \
    > "$out/ours_$format.json" 2> "$out/ours_$format.log"
  grep -E "width" "$out/ours_$format.log" | sed "s/^/ours $format: /" || true
done
/usr/bin/python3 tools/gpu/pytorch_bench.py "$out/pytorch.json" --device cpu --widths 1,0.5 --batches 32 --size 224 \
  --steps 5 --warmup 2 --modes fp32,fp32_cl --threads "$threads"
echo "files in $out"
