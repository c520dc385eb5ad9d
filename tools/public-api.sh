#!/usr/bin/env bash
# Rewrites the library's public API baseline (src/Keras.MobileNet/PublicAPI.Shipped.txt) from the code as it is, for a
# deliberate API change: review `git diff` of the file before committing it. Any other change to the public API fails
# the build (RS0016 for a member not in the file, RS0017 for one in the file that is gone; PublicApiAnalyzers).
set -euo pipefail
cd "$(dirname "$0")/../src/Keras.MobileNet"
echo "#nullable enable" > PublicAPI.Shipped.txt
log=$(mktemp)
dotnet build -c Release --no-incremental -p:TreatWarningsAsErrors=false > "$log" 2>&1 || true
{ echo "#nullable enable"; grep -oP "RS0016: Symbol '\K.*(?=' is not part of the declared public API)" "$log" | sort -u; } > PublicAPI.Shipped.txt
rm -f "$log"
echo "$(($(wc -l < PublicAPI.Shipped.txt) - 1)) public symbols in src/Keras.MobileNet/PublicAPI.Shipped.txt"
