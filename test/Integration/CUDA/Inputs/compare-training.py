"""compare-training.py CPU_RUN CUDA_RUN LOSS_ATOL [CHECKPOINT]

Compares two mod-train runs of the same module, one compiled for the CPU
and one for CUDA, step by step (metrics.jsonl): the training loss within
LOSS_ATOL nats, the gradient norm within 2% of the CPU's, the validation
losses within LOSS_ATOL; requires the CPU run to have learned (the mean loss
of the last 5 steps at least 0.5 nats below the first step's). With
CHECKPOINT (a checkpoint directory name such as step-00000030), also the
saved parameters and AdamW moments (downloaded from the device by the CUDA
run): every tensor within 5% of its largest CPU magnitude. Prints one line
per check and exits 1 if any fails."""
import json
import math
import os
import struct
import sys


def metrics(run):
    return [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))
            if l.strip()]


def safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        begin, end = info["data_offsets"]
        out[name] = struct.unpack(f"<{(end - begin) // 4}f", body[begin:end])
    return out


cpu_run, cuda_run, atol = sys.argv[1], sys.argv[2], float(sys.argv[3])
cpu, cuda = metrics(cpu_run), metrics(cuda_run)
ok = True


def check(name, good, detail):
    global ok
    ok &= good
    print(f"{name}: {'ok' if good else 'FAILED'} ({detail})")


check("steps", [r["step"] for r in cpu] == [r["step"] for r in cuda],
      f"{len(cpu)} and {len(cuda)} rows")
loss_diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(cpu, cuda))
check("loss", all(math.isfinite(r["loss"]) for r in cuda) and loss_diff <= atol,
      f"max |cpu - cuda| {loss_diff:.2e} nats over {len(cpu)} steps, "
      f"tolerance {atol}")
norm_diff = max(abs(a["grad_norm"] - b["grad_norm"]) / a["grad_norm"]
                for a, b in zip(cpu, cuda))
check("grad_norm", norm_diff <= 0.02, f"max relative difference {norm_diff:.2e}")
vals = [(a["val_loss"], b["val_loss"]) for a, b in zip(cpu, cuda)
        if "val_loss" in a]
val_diff = max((abs(a - b) for a, b in vals), default=float("nan"))
check("val_loss", bool(vals) and val_diff <= atol,
      f"{len(vals)} evaluations, max |cpu - cuda| {val_diff:.2e}")
first = cpu[0]["loss"]
last = sum(r["loss"] for r in cpu[-5:]) / len(cpu[-5:])
check("learned", last <= first - 0.5,
      f"cpu loss {first:.3f} at step 1, {last:.3f} over the last 5 steps")

if len(sys.argv) > 4:
    for file in ("params.safetensors", "optimizer.safetensors"):
        a = safetensors(os.path.join(cpu_run, "checkpoints", sys.argv[4], file))
        b = safetensors(os.path.join(cuda_run, "checkpoints", sys.argv[4], file))
        worst, where = 0.0, ""
        for name, values in a.items():
            scale = max(max(abs(v) for v in values), 1e-30)
            diff = max(abs(x - y) for x, y in zip(values, b[name])) / scale
            if diff > worst:
                worst, where = diff, name
        check(file, a.keys() == b.keys() and worst <= 0.05,
              f"{len(a)} tensors, max difference {worst:.2e} of the tensor's "
              f"magnitude in {where}")

print("same training" if ok else "DIFFERENT training")
sys.exit(0 if ok else 1)
