"""Tables, figures and REPORT.md of the MoD study (study.py) from the
finished runs (DIR/runs/*/done.json). Runs missing from the plan are listed
as such: a partial study is reported as partial.

The verdict criteria are fixed here, before any run, and never adjusted to
the numbers:
  claim 1  (isoFLOP)  at each budget with every size finished, the best MoD
           run's validation loss is below the best dense run's; at the
           headline budget and size, MoD is below dense for every seed
           (paired by seed). Speed: MoD's CPU time per training step is
           below dense's at every size (same budget, seed 0).
  claim 2  (learned vs stochastic routing)  learned MoD is below stochastic
           for every seed, and the mean gap is more than twice the larger
           seed standard deviation of the two ("by a wide margin" needs
           more: it is judged against the MoD-vs-dense gap in the text).
  claim 3  (causal routing)  the router decision (logit > 0) agrees with
           top-k membership on >= 98.5% of tokens over the last 10% of
           training (mean over routed blocks) at the headline budget, and
           the validation loss with causal routing is at most 1% above the
           top-k validation loss (the paper: 0.2-0.3%).
"""
import csv
import json
import math
import os
import statistics
import time

HOLD, PARTIAL, FAIL, UNKNOWN = "held", "partly held", "did not hold", "not measured"


def size_name(size):
    return f"L{size[0]}-D{size[1]}"


def load_done(out, runs):
    done = {}
    for r in runs:
        path = os.path.join(out, "runs", r["id"], "done.json")
        if os.path.exists(path):
            done[r["id"]] = json.load(open(path))
    return done


def finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def mean_of(row, prefix):
    vals = [v for k, v in row.items() if k.startswith(prefix) and finite(v)]
    return statistics.fmean(vals) if vals else None


def metrics(out, rid):
    path = os.path.join(out, "runs", rid, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def spread(values, noun="seeds"):
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4f} (1 {noun[:-1]})"
    sd = statistics.stdev(values)
    return (f"{statistics.fmean(values):.4f} +- {sd:.4f} (sd, {len(values)} {noun}; "
            f"min {min(values):.4f}, max {max(values):.4f})")


def write_tables(out, runs, done):
    fields = ["id", "budget", "budget_flops", "size", "layers", "width", "params",
              "kind", "seed", "steps", "train_flops", "val_loss",
              "train_loss_last10pct", "median_step_seconds", "cpu_seconds_per_step",
              "process_cpu_seconds_per_step",
              "wall_seconds",
              "val_loss_topk", "val_loss_causal", "causal_rel_increase",
              "agreement_last10pct", "val_agreement", "status"]
    rows = []
    for r in runs:
        d = done.get(r["id"], {})
        row = {k: r.get(k) for k in fields}
        row.update({k: d.get(k) for k in fields if k in d})
        row["size"] = size_name(r["size"])
        row["layers"], row["width"] = r["size"][0], r["size"][1]
        row["agreement_last10pct"] = mean_of(d, "agreement_last10pct.")
        row["val_agreement"] = mean_of(d, "val_agreement.")
        row["status"] = "done" if d else "missing"
        rows.append(row)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    json.dump({"runs": [done.get(r["id"], dict(r, status="missing")) for r in runs]},
              open(os.path.join(out, "results.json"), "w"), indent=2)
    return rows


def figures(out, plan, runs, done):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    budgets = list(plan["budgets"])
    hb = plan["headline_budget"]
    seed0 = plan["headline_seeds"][0]

    # 1. isoFLOP curves: final validation loss vs parameters, per budget.
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 3.6),
                             squeeze=False, sharey=True)
    for ax, budget in zip(axes[0], budgets):
        for kind, style in (("dense", "o-"), ("mod", "s--")):
            pts = sorted((d["params"], d["val_loss"]) for d in done.values()
                         if d["budget"] == budget and d["kind"] == kind
                         and d["seed"] == seed0)
            if pts:
                ax.plot([p for p, _ in pts], [l for _, l in pts], style,
                        label="dense" if kind == "dense" else "MoD 12.5%")
            # Seed spread where several seeds ran.
            by_size = {}
            for d in done.values():
                if d["budget"] == budget and d["kind"] == kind:
                    by_size.setdefault(d["params"], []).append(d["val_loss"])
            for params, vals in by_size.items():
                if len(vals) > 1:
                    ax.errorbar([params], [statistics.fmean(vals)],
                                yerr=[[statistics.fmean(vals) - min(vals)],
                                      [max(vals) - statistics.fmean(vals)]],
                                fmt="none", ecolor="k", capsize=3)
        ax.set_xscale("log")
        ax.set_title(f"{budget}: {plan['budgets'][budget]:.1e} training FLOPs")
        ax.set_xlabel("parameters")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation loss (nats/byte)")
    axes[0][0].legend()
    fig.tight_layout()
    path = os.path.join(out, "isoflop.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)

    # 2. Learned vs stochastic routing (and dense) at the headline budget:
    # training loss against training FLOPs spent.
    size = plan["stoch_size"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    colors = {"mod": "tab:blue", "stoch": "tab:red", "dense": "tab:gray"}
    labels = {"mod": "MoD, learned routing", "stoch": "MoD, stochastic routing",
              "dense": "dense"}
    seen = set()
    for r in runs:
        if r["budget"] != hb or list(r["size"]) != list(size) or r["id"] not in done:
            continue
        rows = metrics(out, r["id"])
        if not rows:
            continue
        per_step = r["train_flops"] / r["steps"]
        x = [row["step"] * per_step for row in rows]
        y = smooth([row["loss"] for row in rows], max(1, len(rows) // 25))
        ax.plot(x, y, color=colors[r["kind"]], alpha=0.8, lw=1,
                label=None if r["kind"] in seen else labels[r["kind"]])
        seen.add(r["kind"])
        vx = [row["step"] * per_step for row in rows if "val_loss" in row]
        vy = [row["val_loss"] for row in rows if "val_loss" in row]
        ax.plot(vx, vy, "o", color=colors[r["kind"]], ms=4)
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel("training loss (smoothed); dots: validation")
    ax.set_title(f"{size_name(size)}, budget {hb}: learned vs stochastic routing")
    ax.grid(alpha=0.3)
    if seen:
        ax.legend()
        lows = [l for line in ax.get_lines() for l in line.get_ydata()]
        if lows:
            lo = min(lows)
            ax.set_ylim(lo - 0.05, min(max(lows), lo + 2.0))
    fig.tight_layout()
    path = os.path.join(out, "routing.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)

    # 3. Agreement of the router decision with top-k membership over training.
    fig, ax = plt.subplots(figsize=(6.4, 4))
    any_line = False
    for r in runs:
        if r["kind"] != "mod" or r["budget"] != hb or r["id"] not in done:
            continue
        rows = metrics(out, r["id"])
        keys = sorted({k for row in rows for k in row if k.startswith("agreement.")})
        for k in keys:
            pts = [(row["step"] / r["steps"], row[k]) for row in rows if k in row]
            y = smooth([v for _, v in pts], max(1, len(pts) // 25))
            ax.plot([s for s, _ in pts], y, lw=1,
                    label=f"{size_name(r['size'])} s{r['seed']} {k[len('agreement.'):]}")
            any_line = True
    ax.axhline(0.99, color="k", ls=":", lw=1, label="0.99")
    ax.set_xlabel("fraction of training")
    ax.set_ylabel("agreement (logit > 0) == top-k")
    ax.set_title(f"causal router decision vs top-k, budget {hb}")
    ax.grid(alpha=0.3)
    if any_line:
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = os.path.join(out, "agreement.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written


def verdicts(plan, runs, done):
    hb = plan["headline_budget"]
    seeds = plan["headline_seeds"]
    size = list(plan["stoch_size"])
    v = {}

    # Claim 1: isoFLOP.
    lines = []
    per_budget = []
    for budget in plan["budgets"]:
        cell = {}
        for kind in ("dense", "mod"):
            rs = [d for d in done.values() if d["budget"] == budget
                  and d["kind"] == kind and d["seed"] == seeds[0]]
            want = [r for r in runs if r["budget"] == budget and r["kind"] == kind
                    and r["seed"] == seeds[0]]
            if rs and len(rs) == len(want):
                best = min(rs, key=lambda d: d["val_loss"])
                cell[kind] = best
        if len(cell) == 2:
            better = cell["mod"]["val_loss"] < cell["dense"]["val_loss"]
            per_budget.append(better)
            lines.append(
                f"- {budget} ({plan['budgets'][budget]:.1e} FLOPs): best dense "
                f"{size_name(cell['dense']['size'])} {cell['dense']['val_loss']:.4f}, "
                f"best MoD {size_name(cell['mod']['size'])} {cell['mod']['val_loss']:.4f} "
                f"({'MoD lower' if better else 'dense lower'} by "
                f"{abs(cell['mod']['val_loss'] - cell['dense']['val_loss']):.4f}; "
                f"relative {100 * (cell['mod']['val_loss'] / cell['dense']['val_loss'] - 1):+.2f}%)")
            for kind in ("dense", "mod"):
                all_params = sorted(d["params"] for d in done.values()
                                    if d["budget"] == budget and d["kind"] == kind
                                    and d["seed"] == seeds[0])
                if len(all_params) > 2 and cell[kind]["params"] in (all_params[0],
                                                                     all_params[-1]):
                    end = "smallest" if cell[kind]["params"] == all_params[0] else "largest"
                    lines.append(f"  - {kind}: the best size is the {end} one, so the "
                                 f"isoFLOP optimum is not bracketed by the sizes run")
        else:
            lines.append(f"- {budget}: incomplete (not every size finished)")
    paired = []
    for s in seeds:
        a = done.get(f"{hb}-{size_name(size)}-dense-s{s}")
        b = done.get(f"{hb}-{size_name(size)}-mod-s{s}")
        if a and b:
            paired.append((s, a["val_loss"], b["val_loss"]))
    if paired:
        lines.append(
            f"- headline ({hb}, {size_name(size)}): dense {spread([p[1] for p in paired])}; "
            f"MoD {spread([p[2] for p in paired])}; MoD - dense per seed: "
            + ", ".join(f"s{s} {m - d:+.4f}" for s, d, m in paired))
    speed = []
    for sz in plan["sizes"]:
        a = done.get(f"{hb}-{size_name(sz)}-dense-s{seeds[0]}")
        b = done.get(f"{hb}-{size_name(sz)}-mod-s{seeds[0]}")
        if a and b:
            speed.append((sz, a["cpu_seconds_per_step"], b["cpu_seconds_per_step"],
                          b["train_flops"] / b["steps"] / (a["train_flops"] / a["steps"]),
                          a["median_step_seconds"], b["median_step_seconds"]))
    for sz, ta, tb, fr, wa, wb in speed:
        lines.append(f"- step time {size_name(sz)}: CPU per step dense {1000 * ta:.1f} ms, "
                     f"MoD {1000 * tb:.1f} ms (MoD/dense {tb / ta:.3f}; FLOPs per step "
                     f"MoD/dense {fr:.3f}); median wall-clock step dense "
                     f"{1000 * wa:.1f} ms, MoD {1000 * wb:.1f} ms ({wb / wa:.3f})")
    if not per_budget or not paired:
        v1 = UNKNOWN
    elif all(per_budget) and all(m < d for _, d, m in paired):
        v1 = HOLD
    elif any(per_budget) or any(m < d for _, d, m in paired):
        v1 = PARTIAL
    else:
        v1 = FAIL
    vs = UNKNOWN
    if speed:
        vs = HOLD if all(s[2] < s[1] for s in speed) else (
            PARTIAL if any(s[2] < s[1] for s in speed) else FAIL)
    v["claim1"] = (v1, vs, lines)

    # Claim 2: learned vs stochastic.
    lines = []
    learned, stoch, dense = [], [], []
    for s in seeds:
        a = done.get(f"{hb}-{size_name(size)}-mod-s{s}")
        b = done.get(f"{hb}-{size_name(size)}-stoch-s{s}")
        c = done.get(f"{hb}-{size_name(size)}-dense-s{s}")
        if a and b:
            learned.append(a["val_loss"])
            stoch.append(b["val_loss"])
            lines.append(f"- seed {s}: learned {a['val_loss']:.4f}, stochastic "
                         f"{b['val_loss']:.4f} (gap {b['val_loss'] - a['val_loss']:+.4f}"
                         + (f"; dense {c['val_loss']:.4f}" if c else "") + ")")
        if c:
            dense.append(c["val_loss"])
    if learned:
        gap = statistics.fmean(stoch) - statistics.fmean(learned)
        sd = max(statistics.stdev(learned) if len(learned) > 1 else 0.0,
                 statistics.stdev(stoch) if len(stoch) > 1 else 0.0)
        lines.append(f"- learned {spread(learned)}; stochastic {spread(stoch)}; "
                     f"mean gap {gap:+.4f} nats "
                     f"({100 * gap / statistics.fmean(learned):+.2f}%), larger seed sd {sd:.4f}")
        if dense:
            lines.append(f"- dense at the same budget and size: {spread(dense)}; "
                         f"MoD-vs-dense gap {statistics.fmean(learned) - statistics.fmean(dense):+.4f}")
        all_better = all(b > a for a, b in zip(learned, stoch))
        if all_better and len(learned) > 1 and gap > 2 * sd:
            v2 = HOLD
        elif all_better:
            v2 = PARTIAL
        else:
            v2 = FAIL
    else:
        v2 = UNKNOWN
    v["claim2"] = (v2, lines)

    # Claim 3: causal routing.
    lines = []
    agree, inc = [], []
    for d in sorted(done.values(), key=lambda d: d["id"]):
        if d["kind"] != "mod":
            continue
        a = mean_of(d, "agreement_last10pct.")
        va = mean_of(d, "val_agreement.")
        blocks = ", ".join(f"{k.split('.', 1)[1]} {x:.4f}" for k, x in sorted(d.items())
                           if k.startswith("agreement_last10pct."))
        lines.append(
            f"- {d['id']}: agreement (train, last 10%) {blocks}; validation "
            f"{va:.4f}; val loss top-k {d['val_loss_topk']:.4f}, causal "
            f"{d['val_loss_causal']:.4f} ({100 * d['causal_rel_increase']:+.2f}%)")
        if d["budget"] == hb:
            agree.append(a)
            inc.append(d["causal_rel_increase"])
    if agree:
        lines.append(f"- budget {hb}, every MoD run (sizes and seeds): agreement "
                     f"{spread(agree, 'runs')}; causal vs top-k relative loss increase, "
                     f"in %: {spread([100 * x for x in inc], 'runs')}")
        lines.append("- under causal routing a block routes a fraction of tokens within "
                     "1 - agreement of the top-k fraction (every disagreement is one "
                     "token routed or skipped in excess), so its compute stays close "
                     "to top-k's")
        ok_a = all(a >= 0.985 for a in agree)
        ok_l = all(x <= 0.01 for x in inc)
        v3 = HOLD if ok_a and ok_l else (PARTIAL if ok_a or ok_l else FAIL)
    else:
        v3 = UNKNOWN
    v["claim3"] = (v3, lines)
    return v


def write(out, plan, plan_name, runs, wall):
    done = load_done(out, runs)
    rows = write_tables(out, runs, done)
    figs = figures(out, plan, runs, done) if done else []
    v = verdicts(plan, runs, done)
    missing = [r["id"] for r in runs if r["id"] not in done]
    models = {}
    for name in sorted(os.listdir(os.path.join(out, "models"))):
        p = os.path.join(out, "models", name, "info.json")
        if os.path.exists(p):
            models[name] = json.load(open(p))

    md = []
    md.append(f"# Mixture-of-Depths claims at small scale (plan `{plan_name}`)\n")
    md.append(f"Generated by `scripts/experiments/run-study.sh` "
              f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). "
              f"{len(done)} of {len(runs)} planned runs finished"
              + (f"; missing: {', '.join(missing)}" if missing else "") + ".")
    if wall is not None:
        md[-1] += f" Wall time of this invocation: {wall / 60:.1f} min."
    md.append("")
    md.append("## Setup\n")
    md.append(
        f"GPT-2 models (mod-import), byte-level vocabulary (256) on Debian's fortunes "
        f"corpus (mod-tokenize), batch {plan['batch']} x {plan['seq']} tokens. MoD: "
        f"`--mod-dense-to-mod=capacity={plan['capacity']}` (every other block routed, "
        f"K = {round(plan['capacity'] * plan['seq'])} of {plan['seq']} tokens, linear "
        f"gate, the router trained end to end and by the aux BCE loss, weight 0.01). "
        f"Stochastic: `routing=stochastic` (K random tokens per row and block, a new "
        f"draw every step, no router, block output added with scale 1). AdamW, lr "
        f"{plan['lr']} cosine to {plan['min_lr']} after 5% warmup, weight decay "
        f"{plan['wd']}, clip 1.0, the same for every run (not tuned per arm). "
        f"Training FLOPs = 3 x `--mod-flop-report` forward FLOPs x steps; each run's "
        f"steps = budget / (3 x forward). Validation: {plan['eval_batches']} fixed "
        f"batches of the held-out split (the same windows for every run).\n")
    md.append("| model | layers | width | params | kind | forward FLOPs / step | MoD/dense |")
    md.append("| --- | --- | --- | --- | --- | --- | --- |")
    for name, info in models.items():
        dense_name = name.rsplit("-", 1)[0] + "-dense"
        ratio, fwd = "", "(as the learned MoD model, less the router)"
        if info["flops"]:
            fwd = f"{info['flops']['forward']:.3e}"
            if info["kind"] != "dense" and dense_name in models:
                ratio = (f"{info['flops']['forward'] / models[dense_name]['flops']['forward']:.3f}")
        md.append(f"| {name} | {info['size'][0]} | {info['size'][1]} | {info['params']} "
                  f"| {info['kind']} | {fwd} | {ratio} |")
    md.append("")
    md.append("Budgets: " + ", ".join(f"{b} = {c:.1e}" for b, c in plan["budgets"].items())
              + f" training FLOPs; headline budget {plan['headline_budget']}, seeds "
              f"{plan['headline_seeds']} for {size_name(plan['stoch_size'])} (dense, MoD, "
              f"stochastic); other cells seed {plan['headline_seeds'][0]}.\n")
    md.append("## Results\n")
    md.append("| run | params | steps | val loss | train loss (last 10%) | CPU ms/step | "
              "causal val loss | agreement |")
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if row["status"] != "done":
            md.append(f"| {row['id']} | {row['params']} | {row['steps']} | missing | | | | |")
            continue
        causal = (f"{row['val_loss_causal']:.4f}" if finite(row.get("val_loss_causal"))
                  else "")
        agr = (f"{row['agreement_last10pct']:.4f}" if finite(row.get("agreement_last10pct"))
               else "")
        md.append(f"| {row['id']} | {row['params']} | {row['steps']} | "
                  f"{row['val_loss']:.4f} | {row['train_loss_last10pct']:.4f} | "
                  f"{1000 * row['cpu_seconds_per_step']:.1f} | {causal} | {agr} |")
    md.append("\nAll numbers: `results.csv` / `results.json`. CPU ms/step: the median "
              "over steps (first 10% left out) of mod-train's `step_cpu_seconds`, the "
              "CPU time of one training step (one thread), which other load on the "
              "machine hardly changes; the wall-clock step times in the CSV are far "
              "noisier on this shared machine (other work running, two runs at a time).\n")
    md.append("## Claims\n")
    v1, vs, lines = v["claim1"]
    md.append("### 1. At equal training FLOPs MoD reaches a lower loss than dense, and steps faster\n")
    md.append(f"Loss: **{v1}**. Step time: **{vs}**.\n")
    md.extend(lines)
    md.append("\nFigure `isoflop.png`: final validation loss against parameters at each "
              "budget, dense and MoD (seed 0; bars: min-max over seeds where several ran).\n")
    v2, lines = v["claim2"]
    md.append("### 2. Learned routing beats stochastic routing by a wide margin\n")
    md.append(f"**{v2}**.\n")
    md.extend(lines)
    md.append("- caveat: stochastic routing has no router, hence no gate: its routed "
              "blocks add their output with scale 1, whereas learned MoD scales it by "
              "the router logit (the paper's linear gate, small at initialization), so "
              "the two arms differ in how the block output is scaled as well as in "
              "which tokens are chosen")
    md.append("\nFigure `routing.png`: training loss (smoothed) against training FLOPs for "
              "learned MoD, stochastic MoD and dense, every seed; dots are validation losses.\n")
    v3, lines = v["claim3"]
    md.append("### 3. Causal routing: the router decision agrees with top-k, and costs little loss\n")
    md.append(f"**{v3}**. The causal loss is the same trained weights evaluated with "
              "`--mod-expand-routed-blocks=routing=threshold` (capacity 1.0: a token goes "
              "through a routed block iff its router logit is > 0, attending to the routed "
              "tokens only), on the same validation windows; the top-k loss is the "
              "trained model's own. The threshold forward is the causal decode path's "
              "computation: `test/Integration/CPU/decode-mod.test` checks that MoD "
              "`@prefill` + `@decode_step` (`--mod-generate-decode`, what `mod-sample` "
              "runs) equal it (max rel err 2.7e-7), so its loss is the loss of "
              "teacher-forced autoregressive decoding, computed in one pass.\n")
    md.extend(lines)
    md.append("\nFigure `agreement.png`: per routed block, the fraction of training tokens "
              "whose router decision (logit > 0) equals top-k membership, over training.\n")
    md.append("## Verdict criteria (fixed before the runs)\n")
    md.append(__doc__.split("The verdict criteria are fixed here, before any run, "
                            "and never adjusted to\nthe numbers:\n", 1)[1].rstrip())
    open(os.path.join(out, "REPORT.md"), "w").write("\n".join(md) + "\n")
    print(f"report: {len(done)}/{len(runs)} runs; wrote {os.path.join(out, 'REPORT.md')}, "
          f"results.csv, results.json" + "".join(", " + os.path.basename(f) for f in figs))
