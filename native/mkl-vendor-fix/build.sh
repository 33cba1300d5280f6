#!/usr/bin/env bash
# Builds the MKL vendor fix (mkl_vendor_fix.c) into the shared object named by $1, only when that file is
# missing or older than the source or this script. Used by scripts/setup-native.sh (into the user's cache)
# and by the dora CLI's build (into its output, runtimes/linux-x64/native/). Needs a C compiler (cc or gcc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/mkl_vendor_fix.c"
out="${1:?usage: build.sh OUTPUT.so}"
if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$here/build.sh" ]; then
  exit 0
fi
cc=$(command -v cc || command -v gcc || true)
if [ -z "$cc" ]; then
  echo "mkl-vendor-fix: no C compiler (cc or gcc) found; run scripts/setup-native.sh or install gcc." >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
"$cc" -shared -fPIC -O2 -Wall -Werror -o "$tmp" "$src"
mv -f "$tmp" "$out"
echo "mkl-vendor-fix: built $out"
