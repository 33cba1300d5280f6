#!/usr/bin/env bash
# Makes sure the machine can load TorchSharp 0.107's native library (libtorch 2.10).
#
# libtorch 2.10 is built with GCC 13 and needs a libstdc++ that exports GLIBCXX_3.4.32.
# Debian 12 (bookworm) ships GCC 12's libstdc++ (GLIBCXX_3.4.30). On Debian 12, as root, this
# script installs libstdc++6 from Debian 13 (trixie), pinned so that nothing else is taken from
# trixie unless asked for. It reads the Debian mirror from the machine's own apt configuration
# (scripts/lib/debian-trixie.sh, shared with scripts/bench-vs-pytorch.sh).
# Idempotent: when the symbol is already there it says so and changes nothing.
#
# It also builds the MKL vendor fix (native/mkl-vendor-fix, issue 15; docs/performance.md) into
# ${XDG_CACHE_HOME:-~/.cache}/dorasharp/native/, installing Debian's gcc when no C compiler is there; rebuilt
# only when its source changes. On x86-64 Linux only; a failure there is a warning (the fix is for speed).
set -euo pipefail

NEEDED=GLIBCXX_3.4.32
say() { printf 'setup-native: %s\n' "$*"; }

# The MKL vendor fix: a one-function shared object that makes oneMKL inside libtorch take its fast path on
# non-Intel x86 CPUs when preloaded. The dora CLI finds it at this path (DoraSharp.MklVendorFix.CachePath).
build_vendor_fix() {
  [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || return 0
  local out="${XDG_CACHE_HOME:-$HOME/.cache}/dorasharp/native/libdorasharp_mkl_vendor_fix.so"
  if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "no C compiler: apt-get install gcc (for the MKL vendor fix)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null \
        || { say "warning: could not install gcc; the MKL vendor fix is not built (see docs/performance.md)."; return 0; }
    else
      say "warning: no C compiler (cc/gcc); the MKL vendor fix is not built (see docs/performance.md)."
      return 0
    fi
  fi
  bash "$(dirname "$0")/../native/mkl-vendor-fix/build.sh" "$out" \
    && say "MKL vendor fix: $out" \
    || say "warning: building the MKL vendor fix failed (see above); dora runs without it."
}

find_libstdcxx() {
  local p
  for p in $(/sbin/ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64|libstdc\+\+\.so\.6 \(libc6,x86-64\)/ {print $NF}') \
           /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /usr/lib/libstdc++.so.6; do
    [ -e "$p" ] && { readlink -f "$p"; return 0; }
  done
  return 1
}

has_symbol() {
  local lib
  lib=$(find_libstdcxx) || return 1
  grep -aq "$NEEDED" "$lib"
}

if has_symbol; then
  say "$(find_libstdcxx) provides $NEEDED; nothing to do."
  build_vendor_fix
  exit 0
fi

say "the machine's libstdc++ ($(find_libstdcxx 2>/dev/null || echo 'not found')) lacks $NEEDED, which TorchSharp 0.107 (libtorch 2.10) needs."

# shellcheck source=lib/debian-trixie.sh
. "$(dirname "$0")/lib/debian-trixie.sh"
codename=$(debian_codename)
if [ "$codename" != "bookworm" ]; then
  say "this is not Debian 12 (found '${codename:-unknown}'): install a libstdc++ from GCC 13 or newer"
  say "(e.g. the libstdc++6 package of your distribution's newer release), then run this again."
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  say "run this script as root (or: sudo apt-get install -t trixie libstdc++6 after adding Debian 13 to apt's sources)."
  exit 1
fi
debian_add_trixie || exit 1
say "apt-get install -t trixie libstdc++6 (pulls the libc6 it needs)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie libstdc++6 >/dev/null

if has_symbol; then
  say "done: $(find_libstdcxx) provides $NEEDED."
  build_vendor_fix
else
  say "libstdc++6 from trixie is installed but $NEEDED is still missing; please report this."
  exit 1
fi
