"""Rewrites a safetensors file of mod-import parameter names into the layouts
checkpoints are published in (plain Python, no safetensors package: an 8-byte
little-endian header length, a JSON header {name: {dtype, shape,
data_offsets}}, then the data).

    hub-checkpoint.py IN OUT_DIR [--strip=PREFIX] [--buffers=gpt2|llama]
                      [--shards=N] [--rename=FROM:TO]

--strip=PREFIX  drop PREFIX from every name that has it (GPT-2's hub files
                name `wte.weight` what GPT2LMHeadModel calls
                `transformer.wte.weight`).
--buffers=      add the non-parameter buffers the published checkpoints carry:
                gpt2: `h.N.attn.bias` (f32 [1,1,P,P] causal mask) and
                `h.N.attn.masked_bias` (f32 scalar -1e4) per layer;
                llama: `...layers.N.self_attn.rotary_emb.inv_freq` (f32 [hd/2]).
--shards=N      write N shards model-0000i-of-0000N.safetensors and
                model.safetensors.index.json (Hugging Face's sharded layout);
                default 1: OUT_DIR/model.safetensors.
--rename=A:B    replace A by B in every name (to make a foreign checkpoint).
--dtype=bf16    store f32 tensors as bf16 (their upper 16 bits);
--dtype=f32-of-bf16  keep them f32 with the lower 16 bits cleared (the same
                values, for a reference run).
"""
import json
import re
import struct
import sys


def read(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        out[name] = (meta["dtype"], meta["shape"], data[start:end])
    return out


def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return offset


def main():
    src, out_dir = sys.argv[1:3]
    opts = dict(a[2:].split("=", 1) for a in sys.argv[3:])
    tensors = read(src)
    if "strip" in opts:
        p = opts["strip"]
        tensors = {(k[len(p):] if k.startswith(p) else k): v for k, v in tensors.items()}
    if "rename" in opts:
        a, b = opts["rename"].split(":", 1)
        tensors = {k.replace(a, b): v for k, v in tensors.items()}
    dtype = opts.get("dtype")
    if dtype:
        for k, (dt, shape, raw) in list(tensors.items()):
            if dt != "F32":
                continue
            words = struct.unpack("<%dI" % (len(raw) // 4), raw)
            if dtype == "bf16":
                tensors[k] = ("BF16", shape, struct.pack("<%dH" % len(words), *[w >> 16 for w in words]))
            else:
                tensors[k] = ("F32", shape, struct.pack("<%dI" % len(words), *[w & 0xFFFF0000 for w in words]))
    kind = opts.get("buffers")
    if kind == "gpt2":
        wpe = next(v for k, v in tensors.items() if k.endswith("wpe.weight"))
        p = wpe[1][0]
        mask = struct.pack("<%df" % (p * p),
                           *[1.0 if j <= i else 0.0 for i in range(p) for j in range(p)])
        for k in list(tensors):
            m = re.match(r"(.*h\.\d+\.attn)\.c_attn\.weight$", k)
            if m:
                tensors[m.group(1) + ".bias"] = ("F32", [1, 1, p, p], mask)
                tensors[m.group(1) + ".masked_bias"] = ("F32", [], struct.pack("<f", -1e4))
    elif kind == "llama":
        for k in list(tensors):
            m = re.match(r"(.*layers\.\d+\.self_attn)\.q_proj\.weight$", k)
            if m:
                half = 4
                inv = struct.pack("<%df" % half, *[10000.0 ** (-2.0 * i / (2 * half))
                                                   for i in range(half)])
                tensors[m.group(1) + ".rotary_emb.inv_freq"] = ("F32", [half], inv)
    shards = int(opts.get("shards", "1"))
    names = sorted(tensors)
    if shards == 1:
        write(out_dir + "/model.safetensors", tensors)
        return
    weight_map, total = {}, 0
    for i in range(shards):
        file = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        part = {n: tensors[n] for n in names[i::shards]}
        total += write(out_dir + "/" + file, part)
        weight_map.update({n: file for n in part})
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
              open(out_dir + "/model.safetensors.index.json", "w"), indent=2)


main()
