# On the CUDA machine, from the repository root: `source .gpu/device-env.sh` (the kit of tools/gpu/make-kit.sh).
# Unpacks .NET, then points the program at the machine's PyTorch: TORCH_LIB_DIR (its libtorch) and LIBTORCHSHARP_PATH
# (a LibTorchSharp built for exactly that torch: the kit's prebuilt one when its torch matches, else built here now).
kit=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
mkdir -p /tmp/dotnet && tar -C /tmp/dotnet -xJf "$kit/dotnet-runtime.tar.xz"
export DOTNET_ROOT=/tmp/dotnet PATH=/tmp/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export TORCH_LIB_DIR=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
torch_version=$(python3 -c 'import torch; print(torch.__version__)')
if [ -e "$kit/libLibTorchSharp.so" ] && [ "$(cat "$kit/prebuilt-torch.txt" 2>/dev/null)" = "$torch_version" ]; then
  export LIBTORCHSHARP_PATH=$kit/libLibTorchSharp.so
else
  (cd "$kit" && ./tools/gpu/build-libtorchsharp.sh /tmp/lts --src "$kit/native") && export LIBTORCHSHARP_PATH=/tmp/lts/libLibTorchSharp.so
fi
echo "dotnet $(dotnet --list-runtimes | head -n 1 | cut -d' ' -f2), torch $torch_version, TORCH_LIB_DIR=$TORCH_LIB_DIR, LIBTORCHSHARP_PATH=${LIBTORCHSHARP_PATH:-none}"
