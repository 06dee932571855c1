#!/usr/bin/env python3
"""Independent reference for mod-tokenize's corpus split (modrt/TokenFile.h).

Walks the corpus, splits fortune files at lines holding only '%', assigns each
document to the validation split by FNV-1a-64 of its text, and checks that the
decoded train and validation texts written by `mod-tokenize --decode` are the
documents of each split, in order, each followed by the separator.

usage: expected_split.py CORPUS_DIR TRAIN_TXT VAL_TXT VAL_FRACTION [SEPARATOR]
"""
import os
import sys


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for c in data:
        h ^= c
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def files(root):
    seen = set()
    out = []

    def walk(path, top):
        if not os.path.exists(path):
            return
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        if os.path.isfile(path):
            out.append(path)
            return
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if not name.startswith("."):
                    walk(os.path.join(path, name), False)

    walk(root, True)
    return out


def documents(path):
    data = open(path, "rb").read()
    if b"\0" in data:
        return []
    docs, current = [], []
    for line in data.splitlines(keepends=True):
        bare = line.rstrip(b"\n")
        if bare in (b"%", b"%\r"):
            docs.append(b"".join(current))
            current = []
        else:
            current.append(line)
    docs.append(b"".join(current))
    return [d for d in docs if d.strip(b" \t\r\n")]


def main():
    root, train_path, val_path, fraction = sys.argv[1:5]
    sep = sys.argv[5].encode().decode("unicode_escape").encode() if len(sys.argv) > 5 else b"\n"
    threshold = round(float(fraction) * 1000000)
    train, val = [], []
    for f in files(root):
        for d in documents(f):
            (val if fnv1a64(d) % 1000000 < threshold else train).append(d + sep)
    got_train = open(train_path, "rb").read()
    got_val = open(val_path, "rb").read()
    ok = True
    for name, want, got in (("train", b"".join(train), got_train), ("val", b"".join(val), got_val)):
        if want != got:
            ok = False
            at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            print(f"{name}: MISMATCH at byte {at}: expected {len(want)} bytes, got {len(got)}")
        else:
            print(f"{name}: {len(want)} bytes match")
    print(f"documents: {len(train)} train, {len(val)} val")
    sys.exit(0 if ok else 1)


main()
