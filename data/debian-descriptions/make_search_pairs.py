#!/usr/bin/env python3
"""Writes search-pairs-train.jsonl and search-pairs-test.jsonl: (query, document) pairs for `dora train --task similarity`.

For each Debian 12 (bookworm, main) package: query = its one-line synopsis, document = its long description, from
the same apt list files as make_dataset.py (and with its helpers: deb822 parsing, paragraph joining, seeded hashing).
Fetch the lists as make_dataset.py's docstring says, then:
  python3 data/debian-descriptions/make_search_pairs.py --lists /tmp/lists

Rules:
  1. One pair per source package (its binaries' descriptions are near-copies: they would be false negatives of each
     other), the binary whose name sorts first; a long description shared by two sources is dropped (ambiguous).
  2. Documents of fewer than MIN_WORDS words, and queries or documents with a web or mail address or host name, are
     dropped (as make_dataset.py). A document that names its package in the Debian conventions (libfoo1, foo-dev) is
     dropped: the synopsis often repeats that name and the match would be a string match, not a semantic one.
  3. Split by source package: test when sha256(SEED + ":search-split:" + source) mod 5 == 0; each split takes its
     pairs in the order of sha256(SEED + ":search-pick:" + source) up to TRAIN_PAIRS / TEST_PAIRS.
"""
import argparse
import json
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_dataset as md  # noqa: E402

TRAIN_PAIRS = 1000
TEST_PAIRS = 300


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", default="/var/lib/apt/lists", help="apt list directory")
    parser.add_argument("--out", default=md.HERE, help="output directory")
    args = parser.parse_args()
    packages_file = md.one("*_dists_bookworm_main_binary-amd64_Packages*", args.lists)
    translation_file = md.one("*_dists_bookworm_main_i18n_Translation-en*", args.lists)
    descriptions = {(s["Package"], s["Description-md5"]): s["Description-en"] for s in md.stanzas(md.read_list(translation_file))}

    by_source = defaultdict(list)
    sources_of_text = defaultdict(set)
    for s in md.stanzas(md.read_list(packages_file)):
        name = s["Package"]
        source = s.get("Source", name).split(" ")[0]
        desc = descriptions.get((name, s.get("Description-md5", "")))
        if desc is None:
            continue
        synopsis = re.sub(r"\s+", " ", desc.split("\n")[0]).strip()
        text = md.long_description(desc)
        if not synopsis or not text:
            continue
        by_source[source].append((name, synopsis, text))
        sources_of_text[text].add(source)

    pools = {"train": [], "test": []}
    for source, entries in by_source.items():
        name, synopsis, text = min(entries)
        if len(sources_of_text[text]) > 1 or len(text.split()) < md.MIN_WORDS:
            continue
        if md.ADDRESS.search(text) or md.ADDRESS.search(synopsis):
            continue
        names = {n for n in (name, source) if md.conventional_name(n)}
        if any(md.mentions(text, n) for n in names):
            continue
        split = "test" if int(md.digest("search-split", source), 16) % 5 == 0 else "train"
        pools[split].append((md.digest("search-pick", source), synopsis, text))

    for split, quota in (("train", TRAIN_PAIRS), ("test", TEST_PAIRS)):
        rows = sorted(pools[split])[:quota]
        if len(rows) < quota:
            sys.exit(f"make_search_pairs: only {len(rows)} {split} pairs, expected {quota}")
        with open(os.path.join(args.out, f"search-pairs-{split}.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for _, query, document in rows:
                f.write(json.dumps({"query": query, "document": document}, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows)} pairs of {len(pools[split])} available")


if __name__ == "__main__":
    main()
