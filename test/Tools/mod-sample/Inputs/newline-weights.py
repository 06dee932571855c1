"""Rewrites a tied-embedding GPT-2's weights so that greedy decoding emits
newlines: the final LayerNorm's output becomes the constant 20 * e / |e| where
e is the embedding of byte 10, so the logit of '\n' (20 |e|) beats every other
byte's (their embeddings are other random vectors of the same scale).

    newline-weights.py IN.safetensors OUT.safetensors
"""
import json
import math
import struct
import sys

data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
body = bytearray(data[8 + n:])


def view(name):
    begin, end = header[name]["data_offsets"]
    count = (end - begin) // 4
    return begin, list(struct.unpack("<%df" % count, body[begin:end]))


def store(name, values):
    begin, _ = view(name)
    body[begin:begin + 4 * len(values)] = struct.pack("<%df" % len(values), *values)


_, wte = view("transformer.wte.weight")
d = header["transformer.wte.weight"]["shape"][1]
e = wte[10 * d:11 * d]
norm = math.sqrt(sum(x * x for x in e))
store("transformer.ln_f.weight", [0.0] * d)
store("transformer.ln_f.bias", [20.0 * x / norm for x in e])
open(sys.argv[2], "wb").write(data[:8 + n] + bytes(body))
