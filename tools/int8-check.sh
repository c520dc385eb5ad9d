#!/usr/bin/env bash
# int8 against float32 on a run's val images: exports both (export --onnx, export --onnx --int8 calibrated on
# DATA/train), predicts every val image with each (predict --onnx --json), and prints each file's top-1 and how many
# images get the same top-1 class from both. docs/deployment.md has the numbers and the run it was made on.
#   bash tools/int8-check.sh RUN DATA [export options...]     e.g. --calibration-images 1000 --int8-weights u8
set -euo pipefail
run=$1; data=$2; shift 2
T="dotnet run --project src/Train -c Release --"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
$T export --onnx "$work/fp32.onnx" --checkpoint "$run" > /dev/null
$T export --onnx "$work/int8.onnx" --checkpoint "$run" --int8 --calibrate "$data/train" "$@"
mapfile -t files < <(find "$data/val" -type f \( -name '*.png' -o -name '*.jpg' -o -name '*.jpeg' \) | sort)
$T predict --onnx "$work/fp32.onnx" --top 1 --json "${files[@]}" > "$work/fp32.json"
$T predict --onnx "$work/int8.onnx" --top 1 --json "${files[@]}" > "$work/int8.json"
python3 - "$work/fp32.json" "$work/int8.json" <<'PY'
import json, os, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert [x["image"] for x in a] == [x["image"] for x in b]
truth = lambda x: os.path.basename(os.path.dirname(x["image"]))
top1 = lambda r: sum(truth(x) == x["top"][0]["class"] for x in r) / len(r)
same = sum(x["top"][0]["index"] == y["top"][0]["index"] for x, y in zip(a, b))
print(f"val images {len(a)}: float32 top-1 {top1(a):.2%}, int8 top-1 {top1(b):.2%}, same top-1 class {same}/{len(a)} ({same / len(a):.2%})")
PY
