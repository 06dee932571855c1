"""grad-residency.py MANIFEST [--drop-first-grad OUT]

Prints, for @loss_and_grad's outputs and @adamw_step's inputs, how many
gradients ("grad.*") are "residency": "device" and whether the loss and the
other scalars are. With --drop-first-grad, also writes OUT, a copy of the
manifest in which @loss_and_grad's first gradient output lost its residency
(what a runtime that ignored it would assume: a host buffer)."""
import json
import sys

path = sys.argv[1]
manifest = json.load(open(path))
entries = {e["name"]: e for e in manifest["entry_points"]}


def summary(entry, key):
    specs = entries[entry][key]
    grads = [s for s in specs if s["name"].startswith("grad.")]
    resident = [s for s in grads if s.get("residency") == "device"]
    others = sorted(s["name"] for s in specs
                    if not s["name"].startswith("grad.")
                    and s.get("residency") != "device")
    print(f"{entry} {key}: {len(resident)}/{len(grads)} gradients on the "
          f"device; on the host: {', '.join(others)}")


summary("loss_and_grad", "outputs")
summary("adamw_step", "inputs")

if len(sys.argv) == 4 and sys.argv[2] == "--drop-first-grad":
    for spec in entries["loss_and_grad"]["outputs"]:
        if spec["name"].startswith("grad."):
            del spec["residency"]
            print(f"dropped the residency of {spec['name']}")
            break
    with open(sys.argv[3], "w") as out:
        json.dump(manifest, out, indent=2)
