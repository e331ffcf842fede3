#!/usr/bin/env python3
"""`rnnkit tune` against Optuna (tools/optuna_tune.py) on one study file, alternating (issue 22).

    /work/venv/bin/python tools/tune_compare.py --study configs/tune/names.toml --rounds 3 \
        --minutes 10 --workers 2 --out studies/compare --json-out docs/results/tune-vs-optuna.json

Round r runs both sides with seed r (rnnkit first in even rounds, Optuna first in odd ones), each
with the same wall budget (`--minutes`), workers and threads per worker, nothing else running.
Both drive the same `target/release/rnnkit` binary (build it first).

Per study it records:
- best: the best objective among trials trained to the pruner's max_epochs (Optuna's COMPLETE
  trials, rnnkit's trials with a result at the last rung), so both sides compare full-length
  trials on the same footing;
- trials started, trials trained to the end, trial-epochs (epochs trained over all trials), and
  the wall time.
The JSON holds every study and, per side, the median best and the median trial-epochs.
"""
import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tomllib

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RNNKIT = os.path.join(REPO, "target", "release", "rnnkit")


def write_study_with_seed(study, seed):
    """The study file with `seed` set, written next to the original so `base` still resolves."""
    text = open(study).read()
    lines = [l for l in text.splitlines() if not l.startswith("seed")]
    # Top-level keys come before the first table.
    first_table = next(i for i, l in enumerate(lines) if l.startswith("["))
    lines.insert(first_table, f"seed = {seed}")
    path = os.path.join(os.path.dirname(os.path.abspath(study)), f".compare-seed{seed}-{os.getpid()}.toml")
    open(path, "w").write("\n".join(lines) + "\n")
    return path


def run_rnnkit(study, out, minutes, workers, threads, rungs):
    t0 = time.perf_counter()
    subprocess.run([RNNKIT, "tune", "--quiet", "--study", study, "--out", out, "--minutes", str(minutes),
                    "--workers", str(workers), "--threads-per-worker", str(threads)], check=True)
    wall = time.perf_counter() - t0
    rows = list(csv.DictReader(open(os.path.join(out, "trials.csv"))))
    last = f"rung{len(rungs) - 1}_{rungs[-1]}ep"
    full = [float(r[last]) for r in rows if r.get(last)]
    return {"trials": len(rows), "full_trials": len(full), "trial_epochs": sum(int(r["epochs"]) for r in rows),
            "values_full": full, "wall_s": wall}


def run_optuna(study, out, minutes, workers, threads, maximize):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "optuna_tune.py"), "--study", study, "--out", out,
                    "--minutes", str(minutes), "--workers", str(workers), "--threads-per-worker", str(threads)],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    s = json.load(open(os.path.join(out, "summary.json")))
    rows = list(csv.DictReader(open(os.path.join(out, "trials.csv"))))
    full = [float(r["value"]) for r in rows if r["state"] == "COMPLETE" and r["value"] not in ("", "None")]
    return {"trials": s["trials"], "full_trials": len(full), "trial_epochs": s["trial_epochs"],
            "values_full": full, "wall_s": wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads-per-worker", type=int, default=1)
    ap.add_argument("--out", required=True, help="directory for the studies (must not exist)")
    ap.add_argument("--json-out", required=True)
    args = ap.parse_args()
    spec = tomllib.load(open(args.study, "rb"))
    objective = spec.get("objective", "loss")
    maximize = spec.get("direction", "maximize" if objective in ("accuracy", "macro_f1") else "minimize") == "maximize"
    p = spec["pruner"]
    lo, hi, eta = p.get("min_epochs", 1), p["max_epochs"], p.get("reduction", 3)
    # The pruner's rungs in epochs: min_epochs · reduction^i below max_epochs, then max_epochs.
    rungs, r = [], lo
    while r < hi:
        rungs.append(r)
        r *= eta
    rungs.append(hi)
    os.makedirs(args.out)
    pick = max if maximize else min
    studies = []
    for rnd in range(args.rounds):
        seeded = write_study_with_seed(args.study, rnd)
        try:
            order = ["rnnkit", "optuna"] if rnd % 2 == 0 else ["optuna", "rnnkit"]
            for side in order:
                out = os.path.join(args.out, f"{side}-seed{rnd}")
                if side == "rnnkit":
                    res = run_rnnkit(seeded, out, args.minutes, args.workers, args.threads_per_worker, rungs)
                else:
                    res = run_optuna(seeded, out, args.minutes, args.workers, args.threads_per_worker, maximize)
                res.update(side=side, seed=rnd, best=pick(res["values_full"]) if res["values_full"] else None)
                print(json.dumps({k: v for k, v in res.items() if k != "values_full"}), flush=True)
                studies.append(res)
        finally:
            os.remove(seeded)
    summary = {}
    for side in ("rnnkit", "optuna"):
        mine = [s for s in studies if s["side"] == side]
        bests = [s["best"] for s in mine if s["best"] is not None]
        summary[side] = {
            "median_best": statistics.median(bests) if bests else None,
            "median_trial_epochs": statistics.median(s["trial_epochs"] for s in mine),
            "median_trials": statistics.median(s["trials"] for s in mine),
            "median_full_trials": statistics.median(s["full_trials"] for s in mine),
        }
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    doc = {"date": time.strftime("%Y-%m-%d"), "study": args.study, "objective": objective,
           "direction": "maximize" if maximize else "minimize", "rungs": rungs, "minutes": args.minutes,
           "workers": args.workers, "threads_per_worker": args.threads_per_worker,
           "cpu": cpu, "cores": os.cpu_count(), "host": platform.node(),
           "command": " ".join(sys.argv), "summary": summary, "studies": studies}
    json.dump(doc, open(args.json_out, "w"), indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
