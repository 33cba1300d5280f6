#!/usr/bin/env bash
# DoraSharp against PyTorch + PEFT (issue 15): all-MiniLM-L6-v2 training steps (frozen encoder + head, LoRA, DoRA,
# full fine-tuning) timed by `dora bench --model minilm` and by bench/pytorch/minilm_peft.py (PyTorch with PEFT's
# LoRA/DoRA layer math), alternating round by round, then one table of medians and ratios.
#
#   bash scripts/bench-vs-pytorch.sh [--threads N] [--shapes 16x48,32x128] [--rounds R] [--steps N]
#
# Defaults: 1 thread, the issue's shapes, 3 rounds, 5 steps (after 1 warm-up) per variant per round. Each side
# reports medians of its steps; the table shows the median of those over the rounds.
# PyTorch is Debian's python3-torch (2.6, Debian 13) on OpenBLAS: as root on Debian this script installs it (on Debian
# 12 from trixie, pinned, as scripts/setup-native.sh does for libstdc++); elsewhere it says what to install.
# docs/performance.md ("Against PyTorch + PEFT") says what is compared and the caveats.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'bench-vs-pytorch: %s\n' "$*" >&2; }

threads=1 shapes=16x48,32x128 rounds=3 steps=5
while [ $# -gt 0 ]; do
  case "$1" in
    --threads|--shapes|--rounds|--steps)
      [ $# -ge 2 ] || { say "$1 needs a value"; exit 2; }
      printf -v "${1#--}" '%s' "$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"; exit 0 ;;
    *) say "unknown option '$1'; allowed: --threads N, --shapes BxT,..., --rounds R, --steps N"; exit 2 ;;
  esac
done
for n in threads rounds steps; do
  [[ ${!n} =~ ^[1-9][0-9]{0,3}$ ]] || { say "--$n: '${!n}' is not a whole number from 1 to 9999"; exit 2; }
done
[[ $shapes =~ ^[0-9]+x[0-9]+(,[0-9]+x[0-9]+)*$ ]] || { say "--shapes: '$shapes' is not BATCHxTOKENS,... (e.g. 16x48,32x128)"; exit 2; }

# Debian's interpreter: python3 on PATH may be another one (pyenv) without torch.
PY=/usr/bin/python3
PT_SCRIPT=bench/pytorch/minilm_peft.py
PACKAGES="python3-torch libopenblas0-pthread"

have_pytorch() {
  [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null \
    && dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null | grep -q 'ok installed'
}

install_pytorch() {
  # shellcheck source=lib/debian-trixie.sh
  . scripts/lib/debian-trixie.sh
  local codename target=()
  codename=$(debian_codename)
  if [ ! -r /etc/debian_version ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "needs PyTorch 2.6 on OpenBLAS for $PY: on Debian 13, as root: apt-get install --no-install-recommends $PACKAGES"
    say "(on Debian 12: the same with -t trixie after adding Debian 13 to apt's sources; run this script as root to do it)."
    exit 1
  fi
  if [ "$codename" = bookworm ]; then
    # Not a light touch: python3-torch from trixie pulls trixie's Python 3.13 and what it depends on (base-files
    # among them: /etc/os-release then says Debian 13). Said before doing it; meant for a benchmark machine.
    say "on Debian 12 this moves python3, base-files and their dependencies to Debian 13 (trixie); Ctrl-C within 10 s to stop."
    sleep 10
    debian_add_trixie || exit 1
    target=(-t trixie)
  elif [ -e /etc/apt/sources.list.d/dorasharp-trixie.sources ]; then
    target=(-t trixie)                              # bookworm sources still there, trixie pinned low
  else
    apt-get update -qq
  fi
  say "apt-get install ${target[*]} $PACKAGES (python3-torch is ~100 MB with its dependencies)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${target[@]}" --no-install-recommends $PACKAGES >/dev/null
}

have_pytorch || install_pytorch
have_pytorch || { say "$PY still cannot import torch with libopenblas0-pthread installed; see the messages above."; exit 1; }

# Without OpenBLAS, Debian's torch runs on netlib's reference BLAS, ~20x slower: no comparison then.
say "libblas.so.3 -> $(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')"
if ! blas=$(OPENBLAS_NUM_THREADS=1 "$PY" "$PT_SCRIPT" --threads 1 --check-blas); then
  say "$blas"
  say "torch runs on the reference BLAS: install libopenblas0-pthread, or update-alternatives --config libblas.so.3-x86_64-linux-gnu."
  exit 1
fi
say "$blas"
# The DoRA layer as PEFT computes it must be DoRA: outputs and gradients against the closed form.
layer=$("$PY" "$PT_SCRIPT" --threads 1 --check-layer) || { say "$layer"; say "the PyTorch side's DoRA layer is wrong; not comparing."; exit 1; }
say "$layer"

bash scripts/setup-native.sh >&2
# The build's warnings are not this script's news: show its output only when it fails.
build_log=$(mktemp)
if ! dotnet build src/DoraSharp.Cli -c Release -v quiet -nologo >"$build_log" 2>&1; then
  cat "$build_log" >&2; rm -f "$build_log"; say "building the dora CLI failed (above)."; exit 1
fi
rm -f "$build_log"
DORA=(dotnet src/DoraSharp.Cli/bin/Release/net10.0/dora.dll)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run_dora() {
  say "round $1/$rounds: dora bench --model minilm"
  # --infer-batches '' leaves out the inference phase: only training steps are compared.
  "${DORA[@]}" bench --model minilm --threads "$threads" --shapes "$shapes" --steps "$steps" --warmup 1 \
    --infer-batches '' --no-memory --json > "$out/dora.$1.json"
}
run_pytorch() {
  say "round $1/$rounds: PyTorch + PEFT"
  "$PY" "$PT_SCRIPT" --threads "$threads" --shapes "$shapes" --steps "$steps" --warmup 1 --json > "$out/pytorch.$1.json"
}
# Who goes first alternates: on a busy machine the second of two back-to-back runs is often the slower.
for r in $(seq "$rounds"); do
  if (( r % 2 )); then run_dora "$r"; run_pytorch "$r"; else run_pytorch "$r"; run_dora "$r"; fi
done

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
mkl=$("${DORA[@]}" doctor --no-sgemm | grep -E '^(BLAS|MKL path)' | sed 's/   */: /' | paste -sd';' | sed 's/;/; /')
echo "DoraSharp vs PyTorch + PEFT: all-MiniLM-L6-v2 training steps, $threads thread(s),"
echo "median over $rounds rounds of medians of $steps steps"
echo "CPU:       $cpu ($(nproc) cores; load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after)"
echo "DoraSharp: $mkl"
echo "PyTorch:   $blas"
"$PY" - "$out" <<'PY'
import glob, json, statistics, sys

def medians(engine):
    """(shape, variant) -> median over rounds of each round's median_ms, in the order of the first round."""
    runs = {}
    for path in sorted(glob.glob(f"{sys.argv[1]}/{engine}.*.json")):
        for r in json.load(open(path)):
            if r["phase"] == "train":
                runs.setdefault((r["shape"], r["variant"]), []).append(r["median_ms"])
    return {k: statistics.median(v) for k, v in runs.items()}

def dora_over_lora(m, shape):
    return f"{m[shape, 'dora'] / m[shape, 'lora']:.2f}" if (shape, "dora") in m and (shape, "lora") in m else "n/a"

dora, torch = medians("dora"), medians("pytorch")
print(f"\n| {'shape':14} | variant | DoraSharp ms | PyTorch ms | DoraSharp/PyTorch |")
print(f"|{'-' * 16}|---------|-------------:|-----------:|------------------:|")
for (shape, variant), ms in dora.items():
    pt = torch.get((shape, variant))
    cells = f"{pt:10,.1f} | {ms / pt:17.2f}" if pt else f"{'missing':>10} | {'':17}"
    print(f"| {shape:14} | {variant:7} | {ms:12,.1f} | {cells} |")
for shape in dict.fromkeys(s for s, _ in dora):
    print(f"DoRA/LoRA at {shape}: DoraSharp {dora_over_lora(dora, shape)}, PyTorch + PEFT {dora_over_lora(torch, shape)}")
PY
