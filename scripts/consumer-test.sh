#!/usr/bin/env bash
# The packages as a user gets them (issue 16). Packs DoraSharp and the dora tool into a temporary feed, checks
# their sizes (nuget.org refuses packages over 250 MB) and metadata, then, outside the repository:
#   1. a fresh `dotnet new console` project adds DoraSharp from the feed plus the single-platform native package
#      libtorch-cpu-linux-x64 (no project references) and runs the README's quick start (wrap, train, merge, save
#      an adapter, load it back);
#   2. the tool (with the MNIST worked example, DoraSharp.Examples.dll, and its bundled digits) is installed into a
#      temporary tool path and runs `dora --version` and `dora demo --seeds 1` from
#      another folder; `dotnet tool install --global` is checked too, into a temporary DOTNET_CLI_HOME;
#   3. the tutorial notebook examples/lora_and_dora.ipynb runs headless (dotnet-repl, from .config/dotnet-tools.json)
#      against the packed DoraSharp; a cell that throws fails the test;
#   4. the installed tool trains and exports a tiny run (`dora export`), and a fresh console project that adds only
#      DoraSharp.Onnx from the feed (no TorchSharp in its output) classifies its validation set as `dora predict` does.
# Restores use the machine's own NuGet configuration plus the temporary feed. The packages get a unique prerelease
# version (<VersionPrefix>-ci.<timestamp>) so a cached copy of an earlier pack is never taken for this one.
#
#   bash scripts/consumer-test.sh                    ends with "consumer test: passed" (exit 0) or "consumer test: FAILED: ..."
#   bash scripts/consumer-test.sh --save-notebook    also writes the notebook's outputs back into examples/lora_and_dora.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
save_notebook=false
[ "${1:-}" = "--save-notebook" ] && save_notebook=true

say() { printf 'consumer-test: %s\n' "$*"; }
failed=false
fail() { failed=true; printf 'consumer test: FAILED: %s\n' "$*"; exit 1; }

limit=250000000   # nuget.org's limit is 250 MB; checked in decimal megabytes, the stricter reading
rid=linux-x64     # the platform of CI and of this check; the other platforms' tool packages are packed by releases
work=$(mktemp -d "${TMPDIR:-/tmp}/dorasharp-consumer.XXXXXX")
feed=$work/feed
# The unique version restored into the machine's NuGet cache is of no use after this run: drop it too.
packages=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
cleanup() { rm -rf "$work"; [ -z "${version:-}" ] || [ -z "$packages" ] || rm -rf "$packages/dorasharp/$version" "$packages/dorasharp.onnx/$version" "$packages/dora/$version" "$packages/dora.linux-x64/$version"; }
trap 'status=$?; cleanup; [ $status -eq 0 ] || $failed || echo "consumer test: FAILED (exit $status)"' EXIT
start=$SECONDS

prefix=$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)
[ -n "$prefix" ] || fail "no <VersionPrefix> in Directory.Build.props"
suffix="ci.$(date -u +%Y%m%d%H%M%S)"
version="$prefix-$suffix"

# ── pack ────────────────────────────────────────────────────────────────────────────────────────────────────────
# --artifacts-path keeps this build apart from the repository's bin/ and obj/ (the test suite's build stays as it was).
say "packing $version into $feed (tool for $rid only)"
for project in src/DoraSharp src/DoraSharp.Onnx src/DoraSharp.Cli; do
  dotnet pack "$project" -c Release -nologo -v quiet -o "$feed" --artifacts-path "$work/artifacts" \
    -p:VersionSuffix="$suffix" -p:ToolPackageRuntimeIdentifiers="$rid" >"$work/pack.log" 2>&1 \
    || { cat "$work/pack.log"; fail "dotnet pack $project failed"; }
done

# ── sizes and metadata ──────────────────────────────────────────────────────────────────────────────────────────
expected="DoraSharp.$version.nupkg DoraSharp.$version.snupkg DoraSharp.Onnx.$version.nupkg DoraSharp.Onnx.$version.snupkg dora.$version.nupkg dora.$rid.$version.nupkg dora.$rid.$version.snupkg"
for name in $expected; do [ -f "$feed/$name" ] || fail "the feed lacks $name (it has: $(ls "$feed" | tr '\n' ' '))"; done
for package in "$feed"/*.nupkg "$feed"/*.snupkg; do
  size=$(stat -c %s "$package")
  say "$(basename "$package"): $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')"
  [ "$size" -lt "$limit" ] || fail "$(basename "$package") is $size bytes, over nuget.org's 250 MB limit"
done
for package in "$feed"/*.nupkg; do
  name=$(basename "$package")
  nuspec=$(unzip -p "$package" '*.nuspec')
  has() { grep -q -- "$1" <<<"$nuspec" || fail "$name: the nuspec lacks $2"; }
  has '<license type="expression">MIT</license>' "the MIT licence expression"
  has '<readme>README.md</readme>' "a readme"
  has '<repository type="git" url="https://github.com/dorasharp/DoraSharp"' "the repository"
  has '<projectUrl>https://github.com/dorasharp/DoraSharp</projectUrl>' "the project URL"
  has "<version>$version</version>" "version $version"
  description=$(sed -n 's:.*<description>\(.*\)</description>.*:\1:p' <<<"$nuspec")
  [ -n "$description" ] && [ "$description" != "Package Description" ] || fail "$name: no real description ('$description')"
  unzip -l "$package" README.md >/dev/null || fail "$name: README.md is not in the package"
done
library=$(unzip -p "$feed/DoraSharp.$version.nupkg" DoraSharp.nuspec)
dependencies=$(grep -o '<dependency id="[^"]*"' <<<"$library" | sed 's/.*id="//; s/"$//' | tr '\n' ' ')
[ "$dependencies" = "TorchSharp " ] || fail "DoraSharp must depend on TorchSharp's managed package only; it depends on: $dependencies"
unzip -l "$feed/DoraSharp.$version.nupkg" lib/net10.0/DoraSharp.xml >/dev/null || fail "DoraSharp's package lacks its XML docs"
# The library is the library (issue 14): the MNIST worked example ships in the tool, not in DoraSharp's package.
assemblies=$(unzip -Z1 "$feed/DoraSharp.$version.nupkg" | grep '\.dll$' | tr '\n' ' ')
[ "$assemblies" = "lib/net10.0/DoraSharp.dll " ] || fail "DoraSharp's package must hold lib/net10.0/DoraSharp.dll only; it holds: $assemblies"
example_types=$(unzip -p "$feed/DoraSharp.$version.nupkg" lib/net10.0/DoraSharp.xml | grep -oE '"T:DoraSharp\.(Examples|Experiments|Data)\.[^"]*"|"T:[^"]*Mnist[^"]*"' | head -n 5 | tr '\n' ' ' || true)
[ -z "$example_types" ] || fail "DoraSharp's package documents types of the worked example: $example_types"
# DoraSharp.Onnx is what a service without libtorch takes (issue 18): ONNX Runtime and Microsoft.ML.Tokenizers only.
onnx_dependencies=$(unzip -p "$feed/DoraSharp.Onnx.$version.nupkg" DoraSharp.Onnx.nuspec | grep -o '<dependency id="[^"]*"' | sed 's/.*id="//; s/"$//' | sort | tr '\n' ' ')
[ "$onnx_dependencies" = "Microsoft.ML.OnnxRuntime Microsoft.ML.Tokenizers " ] || fail "DoraSharp.Onnx must depend on Microsoft.ML.OnnxRuntime and Microsoft.ML.Tokenizers only; it depends on: $onnx_dependencies"
unzip -l "$feed/DoraSharp.Onnx.$version.nupkg" lib/net10.0/DoraSharp.Onnx.xml >/dev/null || fail "DoraSharp.Onnx's package lacks its XML docs"
for file in data/mnist/train-images-idx3-ubyte.gz data/mnist/t10k-labels-idx1-ubyte.gz dora.dll DoraSharp.Examples.dll runtimes/linux-x64/native/libdorasharp_mkl_vendor_fix.so; do
  unzip -l "$feed/dora.$rid.$version.nupkg" "tools/net10.0/$rid/$file" >/dev/null || fail "dora.$rid lacks tools/net10.0/$rid/$file"
done
say "sizes and metadata: ok"

# Restores in $work see the machine's NuGet configuration (user and machine files) plus this feed.
cat >"$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="dorasharp-consumer-test" value="$feed" />
  </packageSources>
</configuration>
CONFIG

# ── 1. a fresh console project runs the README's quick start ───────────────────────────────────────────────────
# The block after the "quick-start" marker in README.md; the package README must carry the same code.
extract() { awk '/<!-- quick-start:/ { found = 1; next } found && /^```csharp/ { inside = 1; next } inside && /^```/ { exit } inside { print }' "$1"; }
extract README.md >"$work/quickstart.cs"
[ -s "$work/quickstart.cs" ] || fail "no quick-start block in README.md"
diff -u "$work/quickstart.cs" <(extract docs/nuget/README.md) >/dev/null \
  || fail "README.md's quick start and docs/nuget/README.md's differ; keep them the same"
say "creating a console project outside the repository ($work/app)"
(
  cd "$work"
  dotnet new console -o app --framework net10.0 >"$work/new.log" 2>&1 || { cat "$work/new.log"; exit 1; }
  cd app
  dotnet add package DoraSharp --version "$version" >"$work/add.log" 2>&1 || { cat "$work/add.log"; exit 1; }
  dotnet add package libtorch-cpu-linux-x64 --version 2.10.0 >>"$work/add.log" 2>&1 || { cat "$work/add.log"; exit 1; }
  grep -q ProjectReference app.csproj && { echo "the consumer project has a project reference"; exit 1; }
  cp "$work/quickstart.cs" Program.cs
  dotnet run -c Release >"$work/app.log" 2>&1 || { cat "$work/app.log"; exit 1; }
) || fail "the quick start did not build or run as a package consumer"
cat "$work/app.log"
grep -q '^reloaded: max |difference|' "$work/app.log" || fail "the quick start's output lacks the reloaded-adapter line"
[ -f "$work/app/my-adapter/adapter_model.safetensors" ] && [ -f "$work/app/my-adapter/adapter_config.json" ] \
  || fail "the quick start did not save my-adapter/adapter_model.safetensors and adapter_config.json"
say "quick start as a package consumer: ok"

# ── 2. the tool, installed, from another folder ────────────────────────────────────────────────────────────────
say "installing dora $version into $work/tools"
(cd "$work" && dotnet tool install dora --version "$version" --tool-path "$work/tools" --add-source "$feed" >"$work/tool.log" 2>&1) \
  || { cat "$work/tool.log"; fail "dotnet tool install dora failed"; }
mkdir -p "$work/elsewhere"
# The first line is the version; the next says which BLAS path is active (issue 15).
printed=$(cd "$work/elsewhere" && "$work/tools/dora" --version)
[ "$(head -n1 <<<"$printed")" = "$version" ] || fail "dora --version printed '$printed', expected '$version' on its first line"
grep -q "^BLAS: " <<<"$printed" || fail "dora --version did not say which BLAS path is active: '$printed'"
say "dora --version: $printed"
# --global too, into a temporary home (DOTNET_CLI_HOME moves the global tools folder), so this machine's own tools are untouched.
(cd "$work" && DOTNET_CLI_HOME="$work/home" dotnet tool install --global dora --version "$version" --add-source "$feed" >"$work/global.log" 2>&1) \
  || { cat "$work/global.log"; fail "dotnet tool install --global dora failed"; }
printed=$(cd "$work/elsewhere" && DOTNET_CLI_HOME="$work/home" "$work/home/.dotnet/tools/dora" --version)
[ "$(head -n1 <<<"$printed")" = "$version" ] || fail "the globally installed dora --version printed '$printed', expected '$version' on its first line"
say "dotnet tool install --global: ok"
(cd "$work/elsewhere" && "$work/tools/dora" demo --seeds 1 >"$work/demo.log" 2>&1) \
  || { tail -n 40 "$work/demo.log"; fail "dora demo --seeds 1 failed when run from the installed tool"; }
tail -n 15 "$work/demo.log"
grep -q "bundled with DoraSharp" "$work/demo.log" || fail "dora demo did not read the MNIST digits shipped in the tool"
say "installed tool: ok"

# ── 3. the tutorial notebook, headless, against the packed library ─────────────────────────────────────────────
say "running examples/lora_and_dora.ipynb with dotnet-repl"
dotnet tool restore >"$work/restore-tools.log" 2>&1 || { cat "$work/restore-tools.log"; fail "dotnet tool restore (dotnet-repl) failed"; }
python3 - "$repo/examples/lora_and_dora.ipynb" "$work/notebook.ipynb" "$feed" "$version" <<'PY' || fail "could not prepare the notebook"
import json, re, sys
source, target, feed, version = sys.argv[1:]
notebook = json.load(open(source, encoding="utf-8"))
cell = notebook["cells"][1]
text = "".join(cell["source"])
if not re.search(r'#r "nuget: DoraSharp, [^"]+"', text):
    sys.exit("the notebook's second cell must reference DoraSharp with #r \"nuget: DoraSharp, <version>\"")
text = f'#i "nuget: {feed}"\n' + re.sub(r'#r "nuget: DoraSharp, [^"]+"', f'#r "nuget: DoraSharp, {version}"', text)
cell["source"] = text.splitlines(True)
json.dump(notebook, open(target, "w", encoding="utf-8"), indent=1, ensure_ascii=False)
PY
status=0
dotnet repl --run "$work/notebook.ipynb" --exit-after-run --output-path "$work/notebook.out.ipynb" >"$work/repl.log" 2>&1 || status=$?
[ -f "$work/notebook.out.ipynb" ] || { tail -n 40 "$work/repl.log"; fail "dotnet repl wrote no output notebook (exit $status)"; }
python3 - "$work/notebook.out.ipynb" <<'PY' || fail "a notebook cell failed (see above)"
import json, sys
notebook = json.load(open(sys.argv[1], encoding="utf-8"))
errors = [(i, o) for i, c in enumerate(notebook["cells"]) for o in c.get("outputs", []) if o.get("output_type") == "error"]
checks = sum("".join(o.get("text", "")).count("check: ") for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "stream")
for i, o in errors:
    print(f"cell {i}: {o.get('evalue', '')[:600]}")
print(f"notebook: {checks} checks passed, {len(errors)} cell(s) failed")
sys.exit(1 if errors or checks == 0 else 0)
PY
[ "$status" -eq 0 ] || { tail -n 40 "$work/repl.log"; fail "dotnet repl exited with $status"; }
if $save_notebook; then
  python3 - "$work/notebook.out.ipynb" "$repo/examples/lora_and_dora.ipynb" "$feed" "$version" "$prefix" <<'PY'
import json, re, sys
ran, target, feed, version, prefix = sys.argv[1:]
saved = json.load(open(target, encoding="utf-8"))
notebook = json.load(open(ran, encoding="utf-8"))
for mine, theirs in zip(saved["cells"], notebook["cells"]):
    if mine["cell_type"] != "code":
        continue
    outputs = []
    for o in theirs.get("outputs", []):
        html = "".join(o.get("data", {}).get("text/html", []))
        plain = "".join(o.get("data", {}).get("text/plain", []))
        if "&lt;null&gt;" in html or "Installing Packages" in html or plain.startswith("Loading extensions"):
            continue   # the display of a void cell's value, the restore's progress lines, the kernel's extension notice
        text = json.dumps(o, ensure_ascii=False)
        # What a reader would see after a release: no temporary feed, the released version.
        text = re.sub(r"<div><strong>Restore sources</strong>.*?</div>", "", text).replace(version, prefix).replace(feed, "")
        outputs.append(json.loads(text))
    mine["outputs"] = outputs
    mine["execution_count"] = theirs.get("execution_count")
json.dump(saved, open(target, "w", encoding="utf-8"), indent=1, ensure_ascii=False)
open(target, "a", encoding="utf-8").write("\n")
PY
  say "saved the outputs into examples/lora_and_dora.ipynb"
fi
say "notebook: ok"

# ── 4. an exported model served by a project that has DoraSharp.Onnx and no TorchSharp ──────────────────────────
say "training and exporting a tiny run with the installed tool"
(
  cd "$work/elsewhere"
  printf 'text,label\n' >train.csv
  for t in "great product" "I love it" "excellent quality" "very happy" "fantastic" "superb and fast"; do printf '"%s",good\n' "$t" >>train.csv; done
  for t in "terrible, broke" "I hate it" "awful quality" "very unhappy" "never again" "slow and buggy"; do printf '"%s",bad\n' "$t" >>train.csv; done
  "$work/tools/dora" train --data train.csv --out run --epochs 1 --max-length 16 --batch 4 --validation-split 0.34 --lr 0.05 >"$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
  "$work/tools/dora" export --run run --out model >"$work/export.log" 2>&1 || { cat "$work/export.log"; exit 1; }
  "$work/tools/dora" predict --run run --data run/validation.jsonl --output torch.csv >"$work/predict.log" 2>&1 || { cat "$work/predict.log"; exit 1; }
) || fail "dora train, export or predict failed in the installed tool"
grep "max abs difference" "$work/export.log"
(
  cd "$work"
  dotnet new console -o onnx-app --framework net10.0 >"$work/new-onnx.log" 2>&1 || { cat "$work/new-onnx.log"; exit 1; }
  cd onnx-app
  dotnet add package DoraSharp.Onnx --version "$version" >"$work/add-onnx.log" 2>&1 || { cat "$work/add-onnx.log"; exit 1; }
  cat >Program.cs <<'CS'
using System.Globalization;
using System.Text.Json;
using DoraSharp.Onnx;

using var model = OnnxTextModel.Load(args[0]);
var texts = File.ReadLines(args[1]).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
foreach (var p in model.Classify(texts))
    Console.WriteLine(string.Join(',', [p.Label, .. p.Probabilities.Select(v => v.ToString("R", CultureInfo.InvariantCulture))]));
CS
  dotnet build -c Release -o out >"$work/build-onnx.log" 2>&1 || { cat "$work/build-onnx.log"; exit 1; }
  if ls out | grep -i -E 'torch|DoraSharp\.dll|DoraSharp\.MiniLM'; then echo "the DoraSharp.Onnx consumer's output carries the files above"; exit 1; fi
  dotnet out/onnx-app.dll "$work/elsewhere/model" "$work/elsewhere/run/validation.jsonl" >"$work/onnx.csv" 2>"$work/onnx-app.log" || { cat "$work/onnx-app.log"; exit 1; }
) || fail "the DoraSharp.Onnx consumer did not build, carried TorchSharp, or did not run"
# dora predict's CSV: line,text,label,predicted,p:bad,p:good; the consumer's: predicted,p(bad),p(good).
python3 - "$work/elsewhere/torch.csv" "$work/onnx.csv" <<'PY' || fail "the DoraSharp.Onnx consumer's predictions differ from dora predict's"
import csv, sys
torch = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
onnx = [l.split(",") for l in open(sys.argv[2], encoding="utf-8").read().split()]
assert len(torch) == len(onnx) > 0, (len(torch), len(onnx))
for t, o in zip(torch, onnx):
    assert t["predicted"] == o[0], (t, o)
    probabilities = [float(t[k]) for k in t if k.startswith("p:")]
    assert len(probabilities) == len(o) - 1 == 2, (t, o)
    assert max(abs(a - float(b)) for a, b in zip(probabilities, o[1:])) <= 1e-4, (t, o)
print(f"DoraSharp.Onnx consumer: {len(onnx)} predictions equal dora predict's (labels; probabilities within 1e-4)")
PY
say "DoraSharp.Onnx consumer: ok"

echo "consumer test: passed ($((SECONDS - start)) s; packages: $(cd "$feed" && ls | tr '\n' ' '))"
