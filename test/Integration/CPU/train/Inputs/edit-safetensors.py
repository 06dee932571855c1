"""Edits a safetensors file for the fault-injection tests (plain Python, no
safetensors package): the header is an 8-byte little-endian length, a JSON
object of {name: {dtype, shape, data_offsets}}, then the data.

    edit-safetensors.py IN OUT nan NAME        element 0 of f32 tensor NAME = NaN
    edit-safetensors.py IN OUT scale NAME X    every element of f32 tensor NAME *= X
    edit-safetensors.py IN OUT reshape NAME    NAME's shape [a, b, ...] -> [a*b*...]
"""
import json
import struct
import sys

src, dst, op, name = sys.argv[1:5]
args = sys.argv[5:]
blob = open(src, "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
data = bytearray(blob[8 + n:])
entry = header[name]
if op == "nan":
    assert entry["dtype"] == "F32", entry
    start = entry["data_offsets"][0]
    data[start:start + 4] = struct.pack("<f", float("nan"))
elif op == "scale":
    assert entry["dtype"] == "F32", entry
    (factor,) = map(float, args)
    start, end = entry["data_offsets"]
    values = struct.unpack(f"<{(end - start) // 4}f", data[start:end])
    data[start:end] = struct.pack(f"<{len(values)}f", *(v * factor for v in values))
elif op == "reshape":
    count = 1
    for d in entry["shape"]:
        count *= d
    entry["shape"] = [count]
else:
    sys.exit(f"unknown operation {op}")
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + bytes(data))
