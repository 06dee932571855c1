"""Checks the files of a study run (scripts/experiments/study.py): every
planned run finished with finite numbers, the figures are PNGs, REPORT.md
states the three claims with a verdict each.

    check-study.py OUTDIR NRUNS
"""
import csv
import json
import math
import os
import sys

out, nruns = sys.argv[1], int(sys.argv[2])
failures = []
rows = list(csv.DictReader(open(os.path.join(out, "results.csv"))))
if len(rows) != nruns:
    failures.append(f"results.csv has {len(rows)} rows, want {nruns}")
numeric = ["params", "steps", "train_flops", "val_loss", "train_loss_last10pct",
           "median_step_seconds", "cpu_seconds_per_step", "wall_seconds"]
mod_only = ["val_loss_topk", "val_loss_causal", "causal_rel_increase",
            "agreement_last10pct", "val_agreement"]
for row in rows:
    if row["status"] != "done":
        failures.append(f"{row['id']}: {row['status']}")
        continue
    for k in numeric + (mod_only if row["kind"] == "mod" else []):
        try:
            v = float(row[k])
        except ValueError:
            failures.append(f"{row['id']}: {k} = {row[k]!r} is not a number")
            continue
        if not math.isfinite(v):
            failures.append(f"{row['id']}: {k} = {v}")
results = json.load(open(os.path.join(out, "results.json")))
if len(results["runs"]) != nruns:
    failures.append("results.json does not hold every run")
figures = ["isoflop.png", "routing.png", "agreement.png"]
for name in figures:
    data = open(os.path.join(out, name), "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 5000:
        failures.append(f"{name} is not a plausible PNG")
report = open(os.path.join(out, "REPORT.md")).read()
claims = [l for l in report.splitlines() if l.startswith("### ")]
verdicts = ("held", "partly held", "did not hold")
for head in ("### 1.", "### 2.", "### 3."):
    if not any(l.startswith(head) for l in claims):
        failures.append(f"REPORT.md has no section {head}")
n_verdicts = sum(report.count(f"**{v}**") for v in verdicts)
if n_verdicts < 3:
    failures.append(f"REPORT.md gives {n_verdicts} verdicts, want at least 3")
for f in failures:
    print(f)
print(f"{len(rows)} runs, every number finite; {len(figures)} figures; "
      f"REPORT.md states {len(claims)} claims: " + ("FAIL" if failures else "PASS"))
sys.exit(1 if failures else 0)
