#!/usr/bin/env bash
# The packages as a user gets them (docs/packaging.md): pack into a folder, install the dotnet tool from it into a
# temporary tool path and run --help, summary and a one-epoch training; create a console project outside the
# repository that references Keras.MobileNet + TorchSharp-cpu from that folder, train with it, and read its run with
# the tool's predict; run every sample. A fresh NuGet cache folder: nothing of the repository's build output leaks in.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/km-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
global=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
export NUGET_PACKAGES="$work/nuget-cache" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Disk: a copy of libtorch per folder took 11 GB here and ran CI out of disk. The fresh cache starts as hard links to
# the machine's cache, every package but ours (which come only from the pack below); the builds outside the repository
# (consumer, samples) hard-link their bin folders as the repository's do (MSBuild reads these from the environment).
mkdir -p "$NUGET_PACKAGES"
if [ -d "$global" ] && [ "$(stat -c %d "$global")" = "$(stat -c %d "$work")" ]; then
  for d in "$global"/*/; do
    case $(basename "$d") in keras.mobilenet*) ;; *) cp -al "$d" "$NUGET_PACKAGES/" ;; esac
  done
fi
export CreateHardLinksForCopyLocalIfPossible=true CreateHardLinksForPublishFilesIfPossible=true
art="$work/artifacts"
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props")
step() { echo "== $*"; }

step "dotnet pack -c Release -o artifacts"
dotnet pack "$repo/Keras.MobileNet.sln" -c Release -o "$art" -v quiet -nologo
ls "$art"
for p in "Keras.MobileNet.$version.nupkg" "Keras.MobileNet.Tool.$version.nupkg" "Keras.MobileNet.Tool.linux-x64.$version.nupkg"; do
  [ -f "$art/$p" ] || { echo "package-check: $p was not made"; exit 1; }
done
# The library depends on the managed TorchSharp only: the application picks the backend.
nuspec=$(unzip -p "$art/Keras.MobileNet.$version.nupkg" Keras.MobileNet.nuspec)
grep -q 'dependency id="TorchSharp" ' <<<"$nuspec" || { echo "package-check: the library does not depend on TorchSharp"; exit 1; }
if grep -qi 'id="TorchSharp-cpu"\|id="libtorch' <<<"$nuspec"; then echo "package-check: the library depends on a libtorch backend"; exit 1; fi

cat > "$work/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$art" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML

step "dotnet tool install --tool-path T --add-source artifacts Keras.MobileNet.Tool"
dotnet tool install --tool-path "$work/tools" --add-source "$art" Keras.MobileNet.Tool --version "$version"
km="$work/tools/keras-mobilenet"
"$km" --help | head -n 5
"$km" summary --width 0.5 | tail -n 5
"$km" synth --out "$work/shapes" --train 60 --val 20
"$km" --dataset folder --data "$work/shapes" --image-size 48 --arch notebook --width 0.35 --epochs 1 --batch-size 16 --out "$work/tool-run"
[ -f "$work/tool-run/best.safetensors" ] || { echo "package-check: the tool's training wrote no checkpoint"; exit 1; }

step "a console project outside the repository, from the packages alone"
(cd "$work" && dotnet new console -o consumer -v quiet >/dev/null)
cd "$work/consumer"
dotnet add package Keras.MobileNet --version "$version" >/dev/null
dotnet add package TorchSharp-cpu --version 0.107.0 >/dev/null
grep -v '^#:' "$repo/samples/train-folder.cs" > Program.cs   # the train-folder sample as a project's Program.cs
dotnet run -c Release -- "$work/shapes" "$work/consumer-run"
"$km" predict --checkpoint "$work/consumer-run" "$work/shapes/val/ring/0000.png" --top 2
cd "$work"

step "samples (dotnet run FILE.cs)"
export TMPDIR="$work/tmp" && mkdir -p "$TMPDIR"   # what the samples make in the temp folder goes with the rest
cp -r "$repo/samples" "$work/samples"
cp "$work/NuGet.config" "$work/samples/NuGet.config"
cd "$work/samples"
run_sample() { local f=$1; shift; echo "-- dotnet run $f $*"; dotnet run "$f" --artifacts-path "$work/run-${f%.cs}" "$@"; }
run_sample summary.cs
run_sample train-folder.cs -- "$work/shapes" "$work/sample-run"
run_sample fine-tune.cs
run_sample export-classify.cs -- "$work/sample-run" "$work/shapes/val/ring/0000.png" "$work/shapes/val/square/0001.png"
echo "package-check: packages, tool, consumer project and samples all passed"
