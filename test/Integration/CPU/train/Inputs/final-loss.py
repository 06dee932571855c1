"""final-loss.py METRICS BOUND: the final validation loss and the mean
training loss of the last 50 steps (one batch is noisy) must both be finite
and below BOUND; prints them."""
import json
import math
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bound = float(sys.argv[2])
train = statistics.mean(r["loss"] for r in rows[-50:])
val = rows[-1].get("val_loss", float("nan"))
print(f"step {rows[-1]['step']}: mean train loss of the last 50 steps {train:.3f}, "
      f"val loss {val:.3f} (bound {bound})")
ok = all(math.isfinite(x) and x < bound for x in (train, val))
print("below bound" if ok else "NOT below bound")
sys.exit(0 if ok else 1)
