#!/usr/bin/env bash
# The main job: sets up the native runtime (and a font for the plots), builds, and runs `dora demo`
# (extra arguments are passed on, e.g. `bash scripts/demo.sh --seeds 3`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-native.sh
bash scripts/setup-fonts.sh
dotnet build src/DoraSharp.Cli -c Release -v quiet -nologo
exec dotnet src/DoraSharp.Cli/bin/Release/net10.0/dora.dll demo "$@"
