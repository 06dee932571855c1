#!/usr/bin/env python3
"""Checks that greedy sampling (mod-sample --temperature=0, batch 1, byte
tokenizer) picked, at every step, the most likely next token of the model's
forward pass on the same text.

  greedy-argmax.py inputs SAMPLE B S OUT    writes `tokens` and `positions`
      (i32 [B,S], every row the sample's bytes, positions 0..S-1) for
      mod-run --entry=forward; SAMPLE (mod-sample's stdout: the prompt, the
      new bytes and one newline) must hold exactly S bytes before the newline.
  greedy-argmax.py check SAMPLE PROMPT-LEN FORWARD-OUT
      reads `logits` [B,S,V] from FORWARD-OUT and checks that byte t+1 of the
      sample is the argmax of row 0's logits at position t for every t from
      PROMPT-LEN-1 on; prints one line per mismatch and a summary.

Forward-pass attention is causal, so the logits at t depend on bytes 0..t
only: one forward pass over the whole sample gives every step's logits.
"""
import json
import struct
import sys


def sample_bytes(path):
    data = open(path, "rb").read()
    if not data.endswith(b"\n"):
        sys.exit(f"{path}: expected mod-sample's output ending in a newline")
    return data[:-1]


def write_inputs(sample, batch, seq, out):
    data = sample_bytes(sample)
    if len(data) != seq:
        sys.exit(f"{sample}: {len(data)} bytes, expected exactly S = {seq}")
    tokens = struct.pack(f"<{seq}i", *data) * batch
    positions = struct.pack(f"<{seq}i", *range(seq)) * batch
    header = {
        "tokens": {"dtype": "I32", "shape": [batch, seq],
                   "data_offsets": [0, len(tokens)]},
        "positions": {"dtype": "I32", "shape": [batch, seq],
                      "data_offsets": [len(tokens), len(tokens) + len(positions)]},
    }
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + tokens + positions)


def read_logits(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    info = header["logits"]
    if info["dtype"] != "F32" or len(info["shape"]) != 3:
        sys.exit(f"{path}: logits must be F32 [B,S,V], got {info}")
    begin, end = info["data_offsets"]
    body = raw[8 + n + begin:8 + n + end]
    _, seq, vocab = info["shape"]
    row0 = struct.unpack(f"<{seq * vocab}f", body[:4 * seq * vocab])
    return [row0[t * vocab:(t + 1) * vocab] for t in range(seq)]


def check(sample, prompt_len, forward):
    data = sample_bytes(sample)
    logits = read_logits(forward)
    bad = 0
    steps = 0
    for t in range(prompt_len - 1, len(data) - 1):
        row = logits[t]
        best = max(range(len(row)), key=lambda i: (row[i], -i))
        steps += 1
        if best != data[t + 1]:
            bad += 1
            print(f"position {t}: sampled {data[t + 1]}, forward argmax {best}")
    print(f"{steps} greedy tokens, {bad} differ from the forward's argmax")
    return 1 if bad or steps == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "inputs":
        write_inputs(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        sys.exit(__doc__)
