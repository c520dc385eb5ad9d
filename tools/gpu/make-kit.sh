#!/usr/bin/env bash
# Packs what a CUDA machine without .NET needs to run the Train program, into .gpu/ (ignored by git): a .NET runtime,
# the program published without the CPU libtorch, TorchSharp's native sources (so LibTorchSharp can be built there
# against that machine's PyTorch, offline) and the scripts of this folder.
# usage (in the repository, on a machine with the .NET SDK):
#   tools/gpu/make-kit.sh --src DIR [--prebuilt libLibTorchSharp.so --prebuilt-torch VERSION]
#     --src DIR        TorchSharp's native sources of the pinned version (see build-libtorchsharp.sh); required
#     --prebuilt FILE  a libLibTorchSharp.so already built for that machine's torch VERSION (skips the build there)
# On the CUDA machine: source .gpu/device-env.sh && dotnet .gpu/app/Train.dll doctor
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
src=""; prebuilt=""; prebuilt_torch=""
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src=${2:?}; shift 2 ;;
    --prebuilt) prebuilt=${2:?}; shift 2 ;;
    --prebuilt-torch) prebuilt_torch=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "make-kit: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
native=""
for d in "$src/src/Native" "$src/Native" "$src"; do [ -n "$src" ] && [ -f "$d/LibTorchSharp/THSTensor.cpp" ] && native=$d && break; done
[ -n "$native" ] || { echo "make-kit: --src must name TorchSharp's native sources (a folder with LibTorchSharp/THSTensor.cpp)" >&2; exit 2; }
grep -qxF "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/app .gpu/native
dotnet publish src/Train -c Release -o .gpu/app --no-self-contained >/dev/null
# The CUDA machine brings its own libtorch: drop the CPU one, LibTorchSharp, and other platforms' natives.
cpu=$(ls -d "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/libtorch-cpu-linux-x64/*/runtimes/linux-x64/native | tail -n 1)
for f in "$cpu"/*; do rm -f ".gpu/app/runtimes/linux-x64/native/$(basename "$f")"; done
rm -f .gpu/app/runtimes/linux-x64/native/libLibTorchSharp.so
find .gpu/app/runtimes -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
tar -C "$dotnet_root" -cJf .gpu/dotnet-runtime.tar.xz dotnet host shared/Microsoft.NETCore.App
cp -r "$native/LibTorchSharp" .gpu/native/
for f in Stdafx.h UnixSal.h; do [ -e "$native/$f" ] && cp "$native/$f" .gpu/native/; done
cp tools/gpu/build-libtorchsharp.sh tools/gpu/device-env.sh .gpu/
mkdir -p .gpu/tools/gpu && cp Directory.Build.props .gpu/ && ln -sf ../../build-libtorchsharp.sh .gpu/tools/gpu/build-libtorchsharp.sh
if [ -n "$prebuilt" ]; then cp "$prebuilt" .gpu/libLibTorchSharp.so; echo "${prebuilt_torch:?--prebuilt needs --prebuilt-torch}" > .gpu/prebuilt-torch.txt; fi
echo "kit ready: $(du -sh .gpu | cut -f1) in .gpu"
