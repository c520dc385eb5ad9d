#!/usr/bin/env bash
# Builds libLibTorchSharp.so, TorchSharp's native glue (MIT), for the TorchSharp version this project pins, against
# the PyTorch installed for python3 on this machine (CUDA included if that PyTorch has it). Plain g++, no CMake.
#
# usage: tools/gpu/build-libtorchsharp.sh OUT_DIR [--src DIR]
#   --src DIR  TorchSharp's native sources: a checkout of the pinned tag, its src/Native folder, or a folder holding
#              LibTorchSharp/ (what make-kit.sh carries). Without it the pinned tag is cloned (needs network).
# Then: export TORCH_LIB_DIR=<site-packages>/torch/lib LIBTORCHSHARP_PATH=OUT_DIR/libLibTorchSharp.so
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=""; src=""
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src=${2:?--src needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "build-libtorchsharp: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[ -n "$out" ] || { echo "usage: $0 OUT_DIR [--src DIR]" >&2; exit 2; }
version=$(sed -n 's:.*<TorchSharpVersion>\(.*\)</TorchSharpVersion>.*:\1:p' "$root/Directory.Build.props")
[ -n "$version" ] || { echo "build-libtorchsharp: no TorchSharpVersion in Directory.Build.props" >&2; exit 1; }
if [ -z "$src" ]; then
  src=$(mktemp -d)/TorchSharp
  echo "cloning TorchSharp v$version (no --src given)"
  git clone -q --depth 1 --branch "v$version" https://github.com/dotnet/TorchSharp "$src" \
    || { echo "build-libtorchsharp: could not clone TorchSharp v$version; pass --src with its sources" >&2; exit 1; }
fi
native=""
for d in "$src/src/Native" "$src/Native" "$src"; do [ -f "$d/LibTorchSharp/THSTensor.cpp" ] && native=$d && break; done
[ -n "$native" ] || { echo "build-libtorchsharp: $src holds no LibTorchSharp/THSTensor.cpp" >&2; exit 1; }
python3 -c 'import torch' 2>/dev/null || { echo "build-libtorchsharp: python3 cannot import torch; install PyTorch first" >&2; exit 1; }
torch_dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
mkdir -p "$out/obj"
flags=(-O2 -fPIC -fvisibility=hidden -std=c++17 -w -D_GLIBCXX_USE_CXX11_ABI="$abi" -D_NO_ASYNCRTIMP -D_NO_PPLXIMP -D__LINUX__
       -I"$native" -I"$torch_dir/include" -I"$torch_dir/include/torch/csrc/api/include")
ls "$native"/LibTorchSharp/*.cpp | xargs -P "${JOBS:-$(nproc)}" -I{} sh -c 'g++ "$@" -c "{}" -o "'"$out"'/obj/$(basename "{}").o"' _ "${flags[@]}"
for c in "$native"/LibTorchSharp/*.c; do [ -e "$c" ] && gcc -O2 -fPIC -c "$c" -o "$out/obj/$(basename "$c").o"; done
cuda=(); [ -e "$torch_dir/lib/libtorch_cuda.so" ] && cuda=(-ltorch_cuda -lc10_cuda)
g++ -shared -o "$out/libLibTorchSharp.so" "$out"/obj/*.o -Wl,-soname,libLibTorchSharp.so -Wl,-Bsymbolic -Wl,-Bsymbolic-functions \
  -L"$torch_dir/lib" -ltorch -ltorch_cpu -lc10 "${cuda[@]}" -Wl,-rpath,"$torch_dir/lib"
python3 -c 'import torch; print(torch.__version__)' > "$out/torch-version.txt"
echo "built $out/libLibTorchSharp.so (TorchSharp $version) against torch $(cat "$out/torch-version.txt") ${cuda:+with CUDA}"
echo "export TORCH_LIB_DIR=$torch_dir/lib LIBTORCHSHARP_PATH=$(cd "$out" && pwd)/libLibTorchSharp.so"
