#!/usr/bin/env bash
# Makes sure the plots of `dora demo` / `dora compare` can draw text.
#
# ScottPlot draws with SkiaSharp's self-contained Linux build, which finds fonts by scanning the usual font
# folders (it does not ask fontconfig). Most systems have DejaVu there already (Debian's fonts-dejavu-core
# comes with fontconfig). When no font file is found: as root on Debian/Ubuntu this installs
# fonts-dejavu-core; otherwise it says what to install. Never fatal: without a font the plots still render,
# only without text. Idempotent.
set -euo pipefail
say() { printf 'setup-fonts: %s\n' "$*"; }

for dir in /usr/share/fonts /usr/local/share/fonts "$HOME/.fonts" "$HOME/.local/share/fonts"; do
  if [ -d "$dir" ] && [ -n "$(find "$dir" -type f \( -iname '*.ttf' -o -iname '*.otf' \) -print -quit 2>/dev/null)" ]; then
    say "fonts found in $dir; nothing to do."
    exit 0
  fi
done

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "no font files found; installing fonts-dejavu-core so the plots have text"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core >/dev/null || { say "could not install fonts-dejavu-core; plots will have no text."; exit 0; }
  fi
  say "done."
else
  say "no font files found: the plots will have no text. Install a TrueType font (Debian/Ubuntu: apt-get install fonts-dejavu-core)."
fi
