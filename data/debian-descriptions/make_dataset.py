#!/usr/bin/env python3
"""Regenerates descriptions.jsonl: Debian 12 (bookworm) package long descriptions labelled with their Section.

Python 3 standard library only, plus apt's own /usr/lib/apt/apt-helper to decompress the list files (apt
stores them lz4- or gzip-compressed). Deterministic: the same list files give the same output, byte for byte.

Inputs, from apt's list directory (default /var/lib/apt/lists, or --lists DIR), bookworm main only, never
bookworm-updates, bookworm-security or any other suite (trixie's lists may sit in the same directory):
  *_dists_bookworm_main_binary-amd64_Packages*    Package, Source, Section, Description-md5
  *_dists_bookworm_main_i18n_Translation-en*      the long descriptions, keyed by (Package, Description-md5)
  *_dists_bookworm_InRelease                      its Date: and Version:, written to stats.json
Debian images often disable description translations; fetch them with the ordinary apt client, e.g. into a
private directory that another apt-get update cannot prune:
  mkdir -p /tmp/lists/partial /tmp/cache/archives/partial
  apt-get update -o Acquire::Languages=en -o Dir::State::Lists=/tmp/lists -o Dir::Cache=/tmp/cache
  python3 data/debian-descriptions/make_dataset.py --lists /tmp/lists

Rules (README.md says the same):
  1. Text = the long description only: the synopsis line, the Package field and every other field are left out;
     " ." lines separate paragraphs (joined with a newline), other lines of a paragraph are joined with spaces.
  2. Identical texts are one example (a source's binaries often share one). A text that appears under two
     different sections anywhere in the archive is ambiguous and dropped.
  3. A text that contains, as a whole word (case-insensitive), a package name in Debian's naming conventions
     (with a hyphen or a digit, or starting with "lib") of a binary or source package it describes is dropped:
     names such as libfoo1, libfoo-dev, python3-foo or foo-utils tell the packaging role, which is close to the
     section. Plain upstream names ("grep", "nmap") are allowed: they name the software, as the text does
     anyway, and dropping them would drop half of the admin texts.
  4. Texts shorter than MIN_WORDS words are dropped, and so are texts with a web or mail address or a host
     name (ADDRESS below): the snapshot then names no host at all, as this repository's files must not.
  5. Split by source package, so near-identical texts of one source never straddle train and test: a source goes
     to test when sha256(SEED + ":split:" + source) mod 5 == 0 (about 20 %).
  6. Per section and split, texts are taken in the order of sha256(SEED + ":pick:" + text), at most
     PER_SOURCE from one source, until TRAIN_PER_CLASS (train) or TEST_PER_CLASS (test) are taken.
"""
import argparse
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

SECTIONS = ["admin", "devel", "libs", "net", "utils"]
SEED = "dorasharp-debian-descriptions-v1"
MIN_WORDS = 12
PER_SOURCE = 2
TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 150
HERE = os.path.dirname(os.path.abspath(__file__))
ADDRESS = re.compile(r"https?://|ftp://|www\.|\S@\S|\.(?:org|com|net|io|edu|gov|info|de|uk|fr|jp|eu|ch|nl|it|ru|cz|at|se"
                     r"|no|fi|dk|pl|es|ca|au|br|cn)\b", re.IGNORECASE)


def read_list(path):
    """The decompressed text of an apt list file (any compression apt knows)."""
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], check=True,
                          stdout=subprocess.PIPE).stdout.decode("utf-8")


def one(pattern, lists):
    matches = sorted(glob.glob(os.path.join(lists, pattern)))
    if len(matches) != 1:
        sys.exit(f"make_dataset: expected one file matching {pattern} in {lists}, found {matches}")
    return matches[0]


def stanzas(text):
    """Deb822 paragraphs as dicts; continuation lines stay in the value, newline-separated."""
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def long_description(description):
    """The long part of a Description-en value, paragraphs joined with newlines."""
    lines = description.split("\n")[1:]  # drop the synopsis
    paragraphs, current = [], []
    for line in lines:
        body = line[1:] if line.startswith(" ") else line
        if body.strip() == ".":
            if current:
                paragraphs.append(" ".join(current))
            current = []
        else:
            current.append(re.sub(r"\s+", " ", body).strip())
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(p for p in paragraphs if p)


def digest(*parts):
    return hashlib.sha256(":".join((SEED,) + parts).encode("utf-8")).hexdigest()


def conventional_name(name):
    """A Debian package name that carries packaging information (soname, -dev, python3-, lib...)."""
    return re.search(r"[-0-9]", name) is not None or name.startswith("lib")


def mentions(text, name):
    return re.search(r"(?<![\w.+-])" + re.escape(name) + r"(?![\w+-]|\.\w)", text, re.IGNORECASE) is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", default="/var/lib/apt/lists", help="apt list directory")
    parser.add_argument("--out", default=HERE, help="output directory")
    args = parser.parse_args()

    packages_file = one("*_dists_bookworm_main_binary-amd64_Packages*", args.lists)
    translation_file = one("*_dists_bookworm_main_i18n_Translation-en*", args.lists)
    release_file = one("*_dists_bookworm_InRelease", args.lists)
    release = {k: v for k, v in re.findall(r"^(Date|Version|Suite|Codename): (.*)$", open(release_file, encoding="utf-8").read(), re.M)}
    if release.get("Codename") != "bookworm":
        sys.exit(f"make_dataset: {release_file} is not bookworm's: {release}")

    descriptions = {}
    for s in stanzas(read_list(translation_file)):
        descriptions[(s["Package"], s["Description-md5"])] = s["Description-en"]

    # text -> sections seen, (binary, source) pairs
    by_text = defaultdict(lambda: {"sections": set(), "packages": set()})
    missing = 0
    for s in stanzas(read_list(packages_file)):
        name, section = s["Package"], s.get("Section", "")
        source = s.get("Source", name).split(" ")[0]
        desc = descriptions.get((name, s.get("Description-md5", "")))
        if desc is None:
            missing += 1
            continue
        text = long_description(desc)
        if not text:
            continue
        entry = by_text[text]
        entry["sections"].add(section)
        entry["packages"].add((name, source))

    stats = {"release": release, "packages_without_translation": missing, "distinct_texts": len(by_text),
             "dropped_ambiguous_section": 0, "dropped_names_package": 0, "dropped_short": 0, "dropped_address": 0}
    pools = {sec: {"train": [], "test": []} for sec in SECTIONS}
    for text, entry in by_text.items():
        if len(entry["sections"]) > 1:
            stats["dropped_ambiguous_section"] += 1
            continue
        section = next(iter(entry["sections"]))
        if section not in pools:
            continue
        names = {n for pair in entry["packages"] for n in pair if conventional_name(n)}
        if any(mentions(text, n) for n in names):
            stats["dropped_names_package"] += 1
            continue
        if len(text.split()) < MIN_WORDS:
            stats["dropped_short"] += 1
            continue
        if ADDRESS.search(text):
            stats["dropped_address"] += 1
            continue
        source = min(src for _, src in entry["packages"])
        split = "test" if int(digest("split", source), 16) % 5 == 0 else "train"
        pools[section][split].append((digest("pick", text), source, text))

    rows = []
    stats["available"] = {sec: {k: len(v) for k, v in pools[sec].items()} for sec in SECTIONS}
    for sec in SECTIONS:
        for split, quota in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
            taken, per_source = 0, defaultdict(int)
            for key, source, text in sorted(pools[sec][split]):
                if taken == quota:
                    break
                if per_source[source] == PER_SOURCE:
                    continue
                per_source[source] += 1
                taken += 1
                rows.append({"id": key[:16], "split": split, "label": sec, "text": text})
            if taken < quota:
                sys.exit(f"make_dataset: only {taken} {split} texts for section {sec}, expected {quota}")

    rows.sort(key=lambda r: (r["split"] != "train", r["label"], r["id"]))
    with open(os.path.join(args.out, "descriptions.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n")
    stats["counts"] = {sec: {split: sum(1 for r in rows if r["label"] == sec and r["split"] == split)
                             for split in ("train", "test")} for sec in SECTIONS}
    stats["config"] = {"sections": SECTIONS, "seed": SEED, "min_words": MIN_WORDS, "per_source": PER_SOURCE,
                       "train_per_class": TRAIN_PER_CLASS, "test_per_class": TEST_PER_CLASS}
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(stats, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(stats, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
