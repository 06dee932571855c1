"""Checks the routed indices of stochastic routing (--mod-dense-to-mod
routing=stochastic return-routing) from mod-run output files (plain Python:
a safetensors header is an 8-byte little-endian length, then JSON).

    check-stochastic.py K S SAME_A SAME_B OTHER...

SAME_A and SAME_B were computed with the same routing_seed, every OTHER with
a different seed each. Checks, for every routed_indices.<i> [B,K] tensor:
each row holds exactly K distinct ascending indices in [0,S); SAME_A and
SAME_B agree exactly; every OTHER differs from SAME_A in some row; the
blocks of one call differ from each other (each block has its own key).
"""
import json
import struct
import sys


def read_indices(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, entry in header.items():
        if not name.startswith("routed_indices."):
            continue
        assert entry["dtype"] == "I32", (name, entry)
        b, k = entry["shape"]
        start, end = entry["data_offsets"]
        flat = struct.unpack(f"<{b * k}i", data[start:end])
        out[name] = [list(flat[r * k:(r + 1) * k]) for r in range(b)]
    return out


k, s = int(sys.argv[1]), int(sys.argv[2])
same_a, same_b = read_indices(sys.argv[3]), read_indices(sys.argv[4])
others = [read_indices(p) for p in sys.argv[5:]]
assert same_a, "no routed_indices.* outputs"
failures = 0
for run in [same_a, same_b] + others:
    for name, rows in run.items():
        for row in rows:
            if (len(row) != k or len(set(row)) != k or row != sorted(row)
                    or not all(0 <= i < s for i in row)):
                print(f"{name}: bad row {row} (want {k} distinct ascending in [0,{s}))")
                failures += 1
if same_a != same_b:
    print("the same routing_seed routed different tokens")
    failures += 1
for i, other in enumerate(others):
    if other == same_a:
        print(f"seed #{i + 2} routed exactly the tokens of seed #1")
        failures += 1
names = sorted(same_a)
if len(names) > 1 and all(same_a[n] == same_a[names[0]] for n in names[1:]):
    print("every block routed the same tokens")
    failures += 1
rows = sum(len(r) for r in same_a.values())
print(f"{len(names)} block(s), {rows} row(s) per call, {2 + len(others)} calls: "
      + ("FAIL" if failures else "PASS"))
sys.exit(1 if failures else 0)
