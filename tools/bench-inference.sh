#!/usr/bin/env bash
# evaluate and predict images/s on this machine with each --inference-engine, whole commands (start-up, decoding and
# the export included), for the README (docs/benchmarks.md). Usage: bash tools/bench-inference.sh [WIDTH...]
# It makes its own data (synth, 256 val images of 256 px) and a one-epoch run per width at 224 px in a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/Train -c Release -v quiet -nologo >/dev/null
km=(dotnet src/Train/bin/Release/net10.0/Train.dll)
work=$(mktemp -d /tmp/km-bench-inference-XXXXXX); trap 'rm -rf "$work"' EXIT
"${km[@]}" synth --out "$work/data" --size 256 --train 4 --val 64 >/dev/null
images=$(find "$work/data/val" -name '*.png' | sort)
n=$(wc -l <<<"$images")
echo "| width | command | images | torch s | torch img/s | onnxruntime s | onnxruntime img/s | x |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for w in "${@:-1.0 0.5}"; do
  for width in $w; do
    "${km[@]}" --dataset folder --data "$work/data" --image-size 224 --width "$width" --epochs 1 --batch-size 16 --out "$work/w$width" --inference-engine torch >/dev/null 2>&1
    for cmd in evaluate predict; do
      declare -A secs=()
      for engine in torch onnxruntime; do
        start=$(date +%s.%N)
        if [ "$cmd" = evaluate ]; then "${km[@]}" evaluate --checkpoint "$work/w$width" --data "$work/data" --batch-size 32 --inference-engine "$engine" >/dev/null
        else "${km[@]}" predict --checkpoint "$work/w$width" --inference-engine "$engine" $images >/dev/null; fi
        secs[$engine]=$(echo "$(date +%s.%N) - $start" | bc)
      done
      awk -v w="$width" -v c="$cmd" -v n="$n" -v t="${secs[torch]}" -v o="${secs[onnxruntime]}" \
        'BEGIN { printf "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1fx |\n", w, c, n, t, n / t, o, n / o, t / o }'
    done
  done
done
echo "($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
