#!/usr/bin/env python3
"""Safetensors helpers for the tests (standard library only).

same-tensor.py A.safetensors B.safetensors NAME...
    prints, per NAME, "NAME: same" when both files hold byte-identical data
    for it, else "NAME: different".
same-tensor.py --keep IN.safetensors OUT.safetensors NAME...
    writes OUT with only the named tensors of IN.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: (v, body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


if sys.argv[1] == "--keep":
    tensors = read(sys.argv[2])
    header, body = {}, b""
    for name in sys.argv[4:]:
        info, data = tensors[name]
        header[name] = {"dtype": info["dtype"], "shape": info["shape"],
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    text = json.dumps(header).encode()
    with open(sys.argv[3], "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)
else:
    a, b = read(sys.argv[1]), read(sys.argv[2])
    for name in sys.argv[3:]:
        print(f"{name}: {'same' if a[name][1] == b[name][1] else 'different'}")
