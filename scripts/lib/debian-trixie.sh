# Sourced by scripts/setup-native.sh and scripts/bench-vs-pytorch.sh (not run by itself): puts Debian 13 (trixie) in
# apt's sources on a Debian 12 (bookworm) machine, from the mirror the machine's own apt configuration already uses,
# pinned at priority 100 so that apt takes a package from trixie only when asked (`apt-get install -t trixie …`).
# The caller defines say() and checks that it runs as root on bookworm (debian_codename) before debian_add_trixie.

# VERSION_CODENAME from /etc/os-release ("bookworm", "trixie", …), empty when unknown.
debian_codename() {
  [ -r /etc/os-release ] && (. /etc/os-release; echo "${VERSION_CODENAME:-}") || true
}

# The first URI that serves bookworm's main archive in /etc/apt/sources.list.d/debian.sources (deb822), else in the
# one-line sources lists.
debian_bookworm_mirror() {
  local mirror=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && /bookworm( |$)/ && u!="" {print u; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
             | awk '$1=="deb" && $0 ~ / bookworm / {for(i=2;i<=NF;i++) if ($i ~ /^(https?|file|mirror):/) {print $i; exit}}' | head -n1)
  fi
  printf '%s' "$mirror"
}

# Writes the trixie source and its pin (same content on every call, so calling it again changes nothing) and runs
# apt-get update. Returns 1, having said why, when no bookworm mirror is configured.
debian_add_trixie() {
  local mirror src=/etc/apt/sources.list.d/dorasharp-trixie.sources pin=/etc/apt/preferences.d/dorasharp-trixie
  mirror=$(debian_bookworm_mirror)
  if [ -z "$mirror" ]; then
    say "could not find a Debian mirror for bookworm in /etc/apt/sources.list{,.d}; add one and run this again."
    return 1
  fi
  say "adding Debian 13 (trixie) from $mirror to apt's sources ($src)"
  cat > "$src" <<SRC
# Added by DoraSharp's scripts (scripts/lib/debian-trixie.sh): Debian 13, for libstdc++6 (TorchSharp 0.107) and,
# for scripts/bench-vs-pytorch.sh, python3-torch with OpenBLAS. Pinned low: used only with apt-get -t trixie.
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  say "pinning trixie at priority 100 so nothing is upgraded to it unasked ($pin)"
  cat > "$pin" <<PIN
# Added by DoraSharp's scripts (scripts/lib/debian-trixie.sh): take packages from trixie only when asked (-t trixie).
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  say "apt-get update"
  apt-get update -qq
}
