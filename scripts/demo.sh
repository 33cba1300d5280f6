#!/usr/bin/env bash
# The main job: sets up the native runtime, builds, and runs `dora demo` (extra arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-native.sh
dotnet build src/DoraSharp.Cli -c Release -v quiet -nologo
exec dotnet src/DoraSharp.Cli/bin/Release/net10.0/dora.dll demo "$@"
