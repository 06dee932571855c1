"""Compares a RoPE table with transformers' own (Inputs/hf-configs/
rope-values.json, written by make-configs.py with transformers 5).

    check-rope.py VALUES.json CASE reference < `mod-reference rope` output
    check-rope.py VALUES.json CASE mlir < `mod-import` output

`mlir` reads the f32 vector constant of head_dim elements that mod-import
emits in every layer (inv_freq over both halves) and, where transformers' attention scaling
is not 1, the f32 constant that multiplies cos and sin. Each inv_freq must
agree to 2e-6 relative (transformers computes in float32: powers and the
YaRN ramp carry about 1e-7), the scaling to 1e-6. Prints one line per check.
"""
import json
import re
import sys

values_path, case, mode = sys.argv[1:4]
want = json.load(open(values_path))["cases"][case]
text = sys.stdin.read()
half = len(want["inv_freq"])
if mode == "reference":
    got = json.loads(text)
    inv, scaling = got["inv_freq"], got["attention_scaling"]
else:
    vectors = [m for m in re.findall(r"dense<\[([^\]]*)\]> : tensor<(\d+)xf32>", text)
               if int(m[1]) == 2 * half]
    # One table per layer, all the same.
    if not vectors or len(set(v[0] for v in vectors)) != 1:
        sys.exit("expected one distinct f32 constant of %d elements, found %d" %
                 (2 * half, len(set(v[0] for v in vectors))))
    inv = [float(x) for x in vectors[0][0].split(",")]
    if inv[:half] != inv[half:]:
        sys.exit("the inv_freq constant does not repeat over both halves")
    inv = inv[:half]
    scalars = [float(x) for x in re.findall(r"arith.constant ([-0-9.e+]+) : f32", text)]
    scaling = 1.0
    if want["attention_scaling"] != 1.0:
        near = [s for s in scalars if abs(s - want["attention_scaling"]) <= 1e-6 * want["attention_scaling"]]
        scaling = near[0] if near else None
if len(inv) != half:
    sys.exit("%d frequencies, transformers has %d" % (len(inv), half))
worst = max(abs(g - w) / w for g, w in zip(inv, want["inv_freq"]))
print("%s: inv_freq max rel err %.1e over %d" % (case, worst, half))
if worst > 2e-6:
    sys.exit("inv_freq differs from transformers': %s vs %s" % (inv, want["inv_freq"]))
if scaling is None or abs(scaling - want["attention_scaling"]) > 1e-6 * want["attention_scaling"]:
    sys.exit("attention scaling %s, transformers %s" % (scaling, want["attention_scaling"]))
print("%s: attention scaling %.9g" % (case, want["attention_scaling"]))
