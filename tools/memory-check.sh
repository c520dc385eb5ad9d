#!/usr/bin/env bash
# Peak memory of every command on small hostile inputs (issue 22): each input is under 2 MB, and each command's peak
# resident set (GNU time's %M) must stay under 2 GB, whether it succeeds or refuses. Needs the Release build
# (dotnet build -c Release) and GNU time (Debian's package "time"; installed here if missing). Run by CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
T=(dotnet "$root/src/Train/bin/Release/net10.0/Train.dll")
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
work=$(mktemp -d /tmp/km-memory-XXXXXX)
trap 'rm -rf "$work"' EXIT
limit_kb=$((2 * 1024 * 1024))
failed=0
# measure NAME INPUT_BYTES COMMAND...: runs it, prints its peak, fails the check over the limit or on an internal error.
measure() {
  local name=$1 bytes=$2; shift 2
  /usr/bin/time -f '%M' -o "$work/peak" "$@" >"$work/out" 2>"$work/err" || true
  local peak; peak=$(tail -n 1 "$work/peak")
  local said; said=$(grep -m1 '^error:' "$work/err" || tail -n 1 "$work/out")
  printf '%-34s input %7d bytes  peak %5d MB  %s\n' "$name" "$bytes" $((peak / 1024)) "${said:0:90}"
  if [ "$peak" -ge "$limit_kb" ]; then echo "  over 2 GB"; failed=1; fi
  if grep -q 'internal error' "$work/err"; then echo "  an internal error"; failed=1; fi
}
size() { du -cb "$@" | tail -n 1 | cut -f1; }

"${T[@]}" synth --out "$work/data" --classes 3 --train 10 --val 4 --size 32 >/dev/null
args=(--dataset folder --data "$work/data" --image-size 32 --epochs 1 --batch-size 8 --width 0.25 --arch notebook --workers 2)
"${T[@]}" "${args[@]}" --out "$work/run" >/dev/null

# 120 photos for predict: they go through the network 16 at a time (before: one 1.05 GB batch).
mkdir -p "$work/many"
for i in $(seq 1 120); do cp "$work/data/val/circle/0000.png" "$work/many/$i.png"; done
measure "predict, 120 files" "$(size "$work/many")" "${T[@]}" predict --checkpoint "$work/run" "$work/many"/*.png

# Eight 49-megapixel PNGs of about 143 KB each (before: a 1.18 GB in-memory dataset).
python3 - "$work/big" <<'EOF'
import os, struct, sys, zlib
def png(path, w, h):
    row = b"\x00" + b"\x80" * (3 * w)
    raw = zlib.compress(row * h, 9)
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
for split, n in (("train", 3), ("val", 1)):
    for c in ("a", "b"):
        os.makedirs(f"{sys.argv[1]}/{split}/{c}", exist_ok=True)
        for i in range(n):
            png(f"{sys.argv[1]}/{split}/{c}/{i}.png", 7000, 7000)
EOF
measure "train on 8 x 49-MP PNGs" "$(size "$work/big")" "${T[@]}" --dataset folder --data "$work/big" --image-size 32 --epochs 1 --batch-size 2 --width 0.25 --arch notebook --workers 2 --out "$work/big-run"

# The estimate at --batch-size 3000 on 30 images (before: 2.67 GB).
measure "estimate, batch 3000 on 30 images" "$(size "$work/data")" "${T[@]}" --dataset folder --data "$work/data" --image-size 32 --epochs 1 \
  --batch-size 3000 --width 0.25 --arch notebook --estimate-only --out "$work/est"

# A figure of 20000 px and a model card asking for 9000 px (before: about 4 GB and 3.6 GB).
measure "plot --width-px 20000" "$(size "$work/run")" "${T[@]}" plot "$work/run" --out "$work/fig" --width-px 20000 --height-px 20000
mkdir -p "$work/card9000"
cp "$work/run/best.safetensors" "$work/card9000/"
sed 's/"image_size": [0-9]*/"image_size": 9000/' "$work/run/model.json" > "$work/card9000/model.json"
measure "predict, card image_size 9000" "$(size "$work/card9000")" "${T[@]}" predict --checkpoint "$work/card9000/best.safetensors" "$work/many/1.png"

# A safetensors header claiming 5e8 floats in a 1 KB file.
python3 - "$work/claim.safetensors" <<'EOF'
import json, struct, sys
h = json.dumps({"w": {"dtype": "F32", "shape": [500000000], "data_offsets": [0, 2000000000]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 1000)
EOF
cp "$work/run/model.json" "$work/claim-model.json"
mkdir -p "$work/claim" && mv "$work/claim.safetensors" "$work/claim/best.safetensors" && mv "$work/claim-model.json" "$work/claim/model.json"
measure "predict, safetensors claiming 2 GB" "$(size "$work/claim")" "${T[@]}" predict --checkpoint "$work/claim" "$work/many/1.png"

# A 1.9 KB .pth whose zip entry declares 2 GB unpacked (before: 2.18 GB allocated from a 1.9 MB file).
python3 - "$work/bomb.pth" <<'EOF'
import struct, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    z.writestr("archive/data/0", b"\0" * 4096)
b = bytearray(open(sys.argv[1], "rb").read())
name = b"archive/data/0"
for i in range(len(b) - 4):
    sig = struct.unpack_from("<I", b, i)[0]
    at, off = {0x04034b50: (30, 22), 0x02014b50: (46, 24)}.get(sig, (None, None))
    if at and b[i + at:i + at + len(name)] == name:
        struct.pack_into("<I", b, i + off, 2_000_000_000)
open(sys.argv[1], "wb").write(bytes(b))
EOF
measure "train --weights, .pth declaring 2 GB" "$(size "$work/bomb.pth")" "${T[@]}" "${args[@]}" --weights "$work/bomb.pth" --out "$work/bomb-run"

echo "memory check: $([ $failed = 0 ] && echo 'every command stayed under 2 GB' || echo FAILED)"
exit $failed
