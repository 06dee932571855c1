#!/usr/bin/env python3
"""Checks that `mod-reference compare` output lies in a range.

  check-error-range.py FILE LOW HIGH

FILE holds `name: max rel err X (N elements)` lines; prints
`NAME: max rel err within [LOW, HIGH]` for each, or `NAME: max rel err X
outside [LOW, HIGH]` and exits 1. The lower bound shows that a reduced
precision really was used (an exact-f32 result would be far below it).
"""
import re
import sys


def main():
    path, low, high = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    ok = True
    found = False
    for line in open(path):
        m = re.match(r"\s*(\S+): max rel err (\S+) \(", line)
        if not m:
            continue
        found = True
        name, err = m.group(1), float(m.group(2))
        if low <= err <= high:
            print(f"{name}: max rel err within [{low:g}, {high:g}]")
        else:
            print(f"{name}: max rel err {err:g} outside [{low:g}, {high:g}]")
            ok = False
    if not found:
        print(f"{path}: no 'max rel err' line")
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
