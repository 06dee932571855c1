#!/usr/bin/python3
"""A small isoFLOP study of the Mixture-of-Depths paper's three claims
(Raposo et al., 2024) with modc, on Debian's fortunes corpus (byte level).

    study.py --out DIR [--plan full|reduced] [--bin BUILD/bin] [--jobs N]
             [--report-only] [--deadline UNIX_TIME]

Run by scripts/experiments/run-study.sh (which builds modc first). Every
model is a GPT-2 (mod-import) at batch B x S tokens; "mod" converts it with
--mod-dense-to-mod (capacity 12.5%, every other block, learned router with
the aux BCE loss of --mod-generate-grad), "stoch" with routing=stochastic
(K random tokens per row, a new draw every step, no router).

Training FLOPs: --mod-flop-report's forward FLOPs of one batch, x3 for a
training step (forward + backward); a run of budget C trains
round(C / (3 * forward)) steps, so MoD models, cheaper per step, take more
steps. Stochastic runs take the steps of the learned MoD run of the same
size and budget (the same tokens; their FLOPs differ only by the router's
2*B*S*D per routed block).

Claim 3 (causal routing): every learned MoD run is evaluated again on the
same validation windows (mod-train --eval-only) with the model compiled
with capacity 1.0 and --mod-expand-routed-blocks=routing=threshold, which
routes exactly the tokens whose router logit is > 0 and computes what
prefill + decode compute (causal by construction), and with the top-k
model; the agreement of the router's decision (logit > 0) with top-k
membership comes from mod-train's agreement.<block> metrics.

Resumable: a finished run leaves DIR/runs/<id>/done.json and is skipped; an
interrupted one continues from its last checkpoint (mod-train --resume).
With --deadline no new run starts after that time; --report-only writes the
tables, figures and REPORT.md from whatever runs have finished.
"""
import argparse
import concurrent.futures
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

# ---------------------------------------------------------------------------
# Plans. Sizes are (layers, width, heads). Budgets are training FLOPs per run.
# ---------------------------------------------------------------------------
PLANS = {
    "full": dict(
        batch=8, seq=128, capacity=0.125,
        sizes=[(4, 48, 4), (4, 64, 4), (4, 96, 4)],
        budgets={"C1": 0.5e12, "C2": 1.0e12, "C3": 2.0e12},
        headline_budget="C2", headline_seeds=[0, 1, 2],
        stoch_size=(4, 64, 4),
        lr=3e-3, min_lr=3e-4, wd=0.1, eval_batches=16, evals_per_run=2,
    ),
    "reduced": dict(
        batch=4, seq=32, capacity=0.125,
        sizes=[(2, 32, 4), (2, 48, 4)],
        budgets={"C1": 1.0e9, "C2": 2.0e9},
        headline_budget="C2", headline_seeds=[0, 1],
        stoch_size=(2, 32, 4),
        lr=3e-3, min_lr=3e-4, wd=0.1, eval_batches=2, evals_per_run=2,
    ),
}
KINDS = ("dense", "mod", "stoch")
LOCK = threading.Lock()


def log(msg):
    with LOCK:
        print(time.strftime("%H:%M:%S"), msg, flush=True)


def size_name(size):
    layers, width, heads = size
    return f"L{layers}-D{width}"


def run_timed(cmd, out_path, env):
    """Runs cmd with stdout+stderr to out_path; returns its CPU seconds
    (user + system, from wait4), which contention inflates far less than
    wall time."""
    full_env = dict(os.environ)
    full_env.update(env)
    with open(out_path, "w") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=full_env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = open(out_path).read()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{tail}")
    return usage.ru_utime + usage.ru_stime


def run(cmd, out_path=None, env=None, cwd=None):
    """Runs cmd; stdout to out_path (or returned); raises with the log tail."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if out_path:
        with open(out_path, "w") as f:
            p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                               env=full_env, cwd=cwd)
        if p.returncode != 0:
            tail = open(out_path).read()[-3000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{tail}")
        return None
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n"
                           f"{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p.stdout


class Study:
    def __init__(self, args):
        self.args = args
        self.plan = PLANS[args.plan]
        self.out = os.path.abspath(args.out)
        self.bin = os.path.abspath(args.bin)
        os.makedirs(self.out, exist_ok=True)
        self.tokens = os.path.join(self.out, "fortunes.tokens")
        self.models = {}  # (size, kind) -> info dict

    def tool(self, name):
        return os.path.join(self.bin, name)

    # ---- models -----------------------------------------------------------
    def model_dir(self, size, kind):
        return os.path.join(self.out, "models", f"{size_name(size)}-{kind}")

    def build_model(self, size, kind):
        d = self.model_dir(size, kind)
        info_path = os.path.join(d, "info.json")
        if os.path.exists(info_path):
            return json.load(open(info_path))
        tmp = d + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        p = self.plan
        layers, width, heads = size
        config = {
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "n_layer": layers, "n_embd": width, "n_head": heads,
            "n_positions": p["seq"], "n_inner": None, "vocab_size": 256,
            "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
            "tie_word_embeddings": True,
        }
        json.dump(config, open(os.path.join(tmp, "config.json"), "w"), indent=2)
        opt = self.tool("mod-opt")
        dense = os.path.join(tmp, "dense.mlir")
        run([self.tool("mod-import"), os.path.join(tmp, "config.json"),
             f"--batch={p['batch']}", f"--seq={p['seq']}", "-o", dense])
        model = dense
        if kind != "dense":
            model = os.path.join(tmp, "model.mlir")
            routing = "learned" if kind == "mod" else "stochastic"
            run([opt, dense, f"--mod-dense-to-mod=capacity={p['capacity']} "
                 f"routing={routing}", "-o", model])
        # FLOPs of one forward of B x S tokens.
        try:
            report = json.loads(run([opt, model, "--mod-flop-report=format=json",
                                     "-o", os.devnull]))
            fwd = next(r for r in report if r["function"] == "forward")
            flops = {"forward": fwd["total"]["total"],
                     "blocks": [b["flops"]["total"] for b in fwd["blocks"]],
                     "routed": [b["routed"] for b in fwd["blocks"]],
                     "capacity": [b["capacity"] for b in fwd["blocks"]]}
        except RuntimeError:
            if kind != "stoch":
                raise
            # The stochastic blocks come out expanded, which the report's
            # block discovery may not follow; their FLOPs are the learned
            # MoD model's less the router, and the runs use the learned
            # model's step counts anyway.
            flops = None
        train = os.path.join(tmp, "train.mlir")
        run([opt, model, "--mod-generate-grad", "--mod-generate-adamw", "-o", train])
        run([self.tool("mod-compile"), train, "-o", os.path.join(tmp, "model")])
        info = {"size": list(size), "kind": kind, "flops": flops,
                "batch": p["batch"], "seq": p["seq"]}
        if kind == "mod":
            # The causal forward: every token may be routed (capacity 1.0),
            # routed iff its router logit > 0 (what prefill + decode do).
            thr = os.path.join(tmp, "threshold.mlir")
            run([opt, dense, "--mod-dense-to-mod=capacity=1.0",
                 "--mod-expand-routed-blocks=routing=threshold",
                 "--mod-generate-grad", "-o", thr])
            run([self.tool("mod-compile"), thr, "-o", os.path.join(tmp, "threshold")])
        manifest = json.load(open(os.path.join(tmp, "model", "manifest.json")))
        entry = next(e for e in manifest["entry_points"] if e["name"] == "loss_and_grad")
        params = 0
        for t in entry["inputs"]:
            if t.get("kind") == "parameter":
                params += math.prod(t["shape"])
        info["params"] = params
        info["nonembedding_params"] = params - 256 * width - p["seq"] * width
        json.dump(info, open(os.path.join(tmp, "info.json"), "w"), indent=2)
        shutil.rmtree(d, ignore_errors=True)
        os.rename(tmp, d)
        return info

    # ---- runs -------------------------------------------------------------
    def plan_runs(self):
        """Runs in priority order, so that a study cut short by a deadline
        still answers the most: at the headline budget, the headline size's
        dense, MoD and stochastic runs (claims 1-3), then the other sizes
        (the isoFLOP curve), the extra seeds, and the other budgets."""
        p = self.plan
        runs = []

        def add(size, kind, budget, seed):
            info = self.models[(tuple(size), kind)]
            steps_kind = "mod" if kind == "stoch" else kind
            fwd = self.models[(tuple(size), steps_kind)]["flops"]["forward"]
            if kind == "stoch" and info["flops"]:
                fwd_own = info["flops"]["forward"]
            else:
                fwd_own = fwd
            steps = max(1, round(p["budgets"][budget] / (3 * fwd)))
            rid = f"{budget}-{size_name(size)}-{kind}-s{seed}"
            runs.append(dict(id=rid, size=list(size), kind=kind, budget=budget,
                             budget_flops=p["budgets"][budget], seed=seed,
                             steps=steps, params=info["params"],
                             train_flops=3 * fwd_own * steps))

        hb = p["headline_budget"]
        head = p["stoch_size"]
        seed0 = p["headline_seeds"][0]
        for kind in ("dense", "mod", "stoch"):
            add(head, kind, hb, seed0)
        for size in p["sizes"]:
            if tuple(size) != tuple(head):
                for kind in ("dense", "mod"):
                    add(size, kind, hb, seed0)
        for seed in p["headline_seeds"][1:]:
            for kind in ("dense", "mod", "stoch"):
                add(head, kind, hb, seed)
        for budget in p["budgets"]:
            if budget == hb:
                continue
            for size in p["sizes"]:
                for kind in ("dense", "mod"):
                    add(size, kind, budget, seed0)
        return runs

    def train(self, r):
        p = self.plan
        d = os.path.join(self.out, "runs", r["id"])
        done = os.path.join(d, "done.json")
        if os.path.exists(done):
            return json.load(open(done))
        if self.args.deadline and time.time() > self.args.deadline:
            return None
        model = os.path.join(self.model_dir(tuple(r["size"]), r["kind"]), "model")
        steps = r["steps"]
        eval_every = max(1, steps // p["evals_per_run"])
        warmup = max(1, round(0.05 * steps))
        ckpt_every = max(1, steps // 4)
        env = {"MODC_NUM_THREADS": str(self.args.threads)}
        os.makedirs(d, exist_ok=True)
        logf = os.path.join(d, "train.log")
        if os.path.isdir(os.path.join(d, "checkpoints")) and any(
                n.startswith("step-") for n in os.listdir(os.path.join(d, "checkpoints"))):
            cmd = [self.tool("mod-train"), "--resume", d]
            logf = os.path.join(d, f"train-resume-{int(time.time())}.log")
        else:
            cmd = [self.tool("mod-train"), model, f"--data={self.tokens}",
                   f"--out={d}", f"--steps={steps}", f"--seed={r['seed']}",
                   f"--lr={p['lr']}", f"--min-lr={p['min_lr']}",
                   f"--warmup={warmup}", f"--wd={p['wd']}",
                   f"--eval-every={eval_every}",
                   f"--eval-batches={p['eval_batches']}",
                   f"--ckpt-every={ckpt_every}", "--keep-checkpoints=1",
                   "--log-every=100"]
        log(f"start {r['id']}: {steps} steps, {r['params']} params")
        t0 = time.time()
        cpu = run_timed(cmd, logf, env)
        result = dict(r)
        result.update(self.summarize(d, r))
        result["wall_seconds"] = time.time() - t0
        # The mod-train process's CPU time (evaluations, start-up and
        # checkpoints included; a resumed run: since the resume).
        first = self.first_step_of_log(d, logf)
        result["process_cpu_seconds_per_step"] = cpu / max(1, r["steps"] - first)
        if r["kind"] == "mod":
            result.update(self.causal_eval(d, r))
        json.dump(result, open(done + ".tmp", "w"), indent=2)
        os.rename(done + ".tmp", done)
        log(f"done  {r['id']}: val {result['val_loss']:.4f} "
            f"({result['wall_seconds']:.0f} s)")
        return result

    @staticmethod
    def first_step_of_log(d, logf):
        text = open(logf).read()
        marker = "resuming "
        if marker in text:
            after = text.split(marker, 1)[1]
            try:
                return int(after.split(" at step ", 1)[1].split()[0])
            except (IndexError, ValueError):
                return 0
        return 0

    def summarize(self, d, r):
        rows = [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl")) if l.strip()]
        last = rows[-1]
        tail = rows[len(rows) * 9 // 10:]
        out = {
            "val_loss": last["val_loss"],
            "train_loss_last10pct": statistics.fmean(x["loss"] for x in tail),
            "median_step_seconds": statistics.median(
                x["step_seconds"] for x in rows[len(rows) // 10:]),
            # CPU time of the training step alone (mod-train's
            # step_cpu_seconds): other load on the machine hardly moves it.
            "cpu_seconds_per_step": statistics.median(
                x["step_cpu_seconds"] for x in rows[len(rows) // 10:]),
        }
        agree = sorted(k for k in last if k.startswith("agreement."))
        for k in agree:
            out["agreement_last10pct." + k[len("agreement."):]] = statistics.fmean(
                x[k] for x in tail)
        return out

    def causal_eval(self, d, r):
        """Validation loss of the final weights under top-k routing and under
        causal (threshold) routing, on the same windows."""
        p = self.plan
        mdir = self.model_dir(tuple(r["size"]), "mod")
        ckdir = os.path.join(d, "checkpoints")
        final = sorted(n for n in os.listdir(ckdir) if n.startswith("step-"))[-1]
        weights = os.path.join(ckdir, final, "params.safetensors")
        env = {"MODC_NUM_THREADS": str(self.args.threads)}
        out = {}
        for label, model in (("topk", "model"), ("causal", "threshold")):
            text = run([self.tool("mod-train"), os.path.join(mdir, model),
                        f"--data={self.tokens}", "--eval-only",
                        f"--weights={weights}", f"--seed={r['seed']}",
                        f"--eval-batches={p['eval_batches']}"], env=env)
            row = json.loads(text.strip().splitlines()[-1])
            out[f"val_loss_{label}"] = row["val_loss"]
            for k, v in row.items():
                if k.startswith("agreement."):
                    out[f"val_agreement.{k[len('agreement.'):]}"] = v
        out["causal_rel_increase"] = (out["val_loss_causal"] / out["val_loss_topk"] - 1.0)
        return out

    # ---- driver -----------------------------------------------------------
    def prepare(self):
        if not os.path.exists(self.tokens):
            run([self.tool("mod-tokenize"), "-o", self.tokens + ".tmp"])
            os.rename(self.tokens + ".tmp", self.tokens)
        p = self.plan
        needed = set()
        for size in p["sizes"]:
            needed.add((tuple(size), "dense"))
            needed.add((tuple(size), "mod"))
        needed.add((tuple(p["stoch_size"]), "stoch"))
        order = sorted(needed, key=lambda x: (KINDS.index(x[1]), x[0]))
        with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as pool:
            futures = {pool.submit(self.build_model, s, k): (s, k) for s, k in order}
            for f in concurrent.futures.as_completed(futures):
                s, k = futures[f]
                self.models[(s, k)] = f.result()
                info = self.models[(s, k)]
                fwd = f"{info['flops']['forward']:.3e}" if info["flops"] else "n/a"
                log(f"model {size_name(s)}-{k}: {info['params']} params, "
                    f"forward {fwd} FLOPs")

    def run_all(self):
        runs = self.plan_runs()
        json.dump(runs, open(os.path.join(self.out, "plan.json"), "w"), indent=2)
        total = sum(r["train_flops"] for r in runs)
        log(f"{len(runs)} runs, {total:.3e} training FLOPs in all")
        failures = []
        with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as pool:
            futures = {pool.submit(self.train, r): r for r in runs}
            for f in concurrent.futures.as_completed(futures):
                try:
                    f.result()
                except Exception as e:  # keep the other runs going
                    failures.append(futures[f]["id"])
                    log(f"FAILED {futures[f]['id']}: {e}")
        return failures

    def load_plan(self):
        """The models' info from a previous invocation (report-only)."""
        for name in os.listdir(os.path.join(self.out, "models")):
            path = os.path.join(self.out, "models", name, "info.json")
            if os.path.exists(path):
                info = json.load(open(path))
                self.models[(tuple(info["size"]), info["kind"])] = info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--plan", choices=sorted(PLANS), default="full")
    ap.add_argument("--bin", default=None,
                    help="directory of modc's tools (default: where mod-train "
                         "is on PATH, else build/bin of this checkout)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="runs trained at once (default 2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="MODC_NUM_THREADS of each run (default 1)")
    ap.add_argument("--deadline", type=float, default=0,
                    help="Unix time after which no new run starts")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if args.bin is None:
        found = shutil.which("mod-train")
        args.bin = (os.path.dirname(found) if found else os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin"))
    study = Study(args)
    t0 = time.time()
    failures = []
    if args.report_only:
        study.load_plan()
    else:
        study.prepare()
        failures = study.run_all()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import report
    report.write(study.out, study.plan, args.plan, study.plan_runs(),
                 time.time() - t0 if not args.report_only else None)
    if failures:
        print("failed runs: " + ", ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
