#!/usr/bin/env bash
# The test suite: sets up the native runtime, builds, runs every test, and ends with one summary line
# "N passed, N failed, N skipped". Exit status is dotnet test's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-native.sh
results=$(mktemp -d)
status=0
dotnet test DoraSharp.slnx -c Release -nologo --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@" || status=$?
# The golden cases (and the MiniLM reference check) again with the MKL vendor fix preloaded (issue 15): results must
# not depend on it. DORASHARP_EXPECT_MKL_OVERRIDE=1 makes MklVendorFixTests check that the preload took effect.
fix="${XDG_CACHE_HOME:-$HOME/.cache}/dorasharp/native/libdorasharp_mkl_vendor_fix.so"
if [ $# -eq 0 ] && [ -f "$fix" ]; then
  LD_PRELOAD="$fix${LD_PRELOAD:+:$LD_PRELOAD}" DORASHARP_EXPECT_MKL_OVERRIDE=1 \
    dotnet test tests/DoraSharp.Tests -c Release -nologo --no-build --logger "trx;LogFileName=preloaded.trx" --results-directory "$results/preloaded" \
      --filter "FullyQualifiedName~Golden|FullyQualifiedName~MklVendorFixTests|FullyQualifiedName~OnnxEquivalence" || status=$?
fi
passed=0; failed=0; skipped=0
for trx in "$results"/*.trx "$results"/*/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  total=$(get total); executed=$(get executed); p=$(get passed); f=$(get failed)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${total:-0} - ${executed:-0}))
done
rm -rf "$results"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
