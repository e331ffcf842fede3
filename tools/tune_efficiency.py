#!/usr/bin/env python3
"""ASHA's efficiency (issue 22): how many configurations random search evaluates in one budget
with ASHA against without pruning.

    /work/venv/bin/python tools/tune_efficiency.py --workers 2 --out studies/efficiency \
        --json-out docs/results/tune-asha-efficiency.json

Runs `rnnkit tune` on configs/tune/names-random-full.toml (no pruning: every trial trains to
max_epochs) and configs/tune/names-random-asha.toml (ASHA), one after the other, the same seed,
workers and budget (the files' 5 minutes, or --minutes). Per study it records the trials started,
the configurations evaluated (trials with at least one scored rung), the trials trained to
max_epochs, the trial-epochs, the best objective among the full-length trials, and wall time;
then the ratio of configurations evaluated, ASHA over plain.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RNNKIT = os.path.join(REPO, "target", "release", "rnnkit")
STUDIES = {"plain": "configs/tune/names-random-full.toml", "asha": "configs/tune/names-random-asha.toml"}


def run(study, out, workers, minutes):
    cmd = [RNNKIT, "tune", "--quiet", "--study", os.path.join(REPO, study), "--out", out,
           "--workers", str(workers), "--threads-per-worker", "1"]
    if minutes is not None:
        cmd += ["--minutes", str(minutes)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    rows = list(csv.DictReader(open(os.path.join(out, "trials.csv"))))
    rung_cols = [c for c in rows[0] if c.startswith("rung")] if rows else []
    last = rung_cols[-1] if rung_cols else None
    scored = [r for r in rows if any(r[c] for c in rung_cols)]
    full = [float(r[last]) for r in rows if last and r[last]]
    return {"study": study, "trials_started": len(rows), "configs_evaluated": len(scored),
            "trials_full_length": len(full), "trial_epochs": sum(int(r["epochs"]) for r in rows),
            "best_full_length": max(full) if full else None, "wall_s": round(wall, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--out", required=True, help="directory for the two studies (must not exist)")
    ap.add_argument("--json-out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out)
    res = {side: run(study, os.path.join(args.out, side), args.workers, args.minutes)
           for side, study in STUDIES.items()}
    for side, r in res.items():
        print(side, json.dumps(r), flush=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    doc = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "cpu": cpu,
           "cores": os.cpu_count(), "workers": args.workers, "studies": res,
           "configs_ratio_asha_over_plain": res["asha"]["configs_evaluated"] / max(1, res["plain"]["configs_evaluated"])}
    json.dump(doc, open(args.json_out, "w"), indent=1)
    print(json.dumps({"configs_ratio_asha_over_plain": doc["configs_ratio_asha_over_plain"]}))


if __name__ == "__main__":
    main()
