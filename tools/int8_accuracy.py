#!/usr/bin/env python3
"""What int8 inference costs in accuracy: `rnnkit evaluate --json` on each run, with and without
`--int8`, side by side (the language model's validation loss, the classifier's test accuracy and
macro-F1, the forecaster's test RMSE and MAE).

    python tools/int8_accuracy.py runs/shakespeare runs/names runs/co2 --json-out docs/results/int8-accuracy.json

No Python packages beyond the standard library.
"""

import argparse
import datetime
import json
import subprocess

METRICS = ["loss_nats_per_token", "accuracy", "macro_f1", "rmse", "mae"]


def evaluate(rnnkit, run, int8):
    cmd = [rnnkit, "evaluate", "--model", run, "--json"] + (["--int8"] if int8 else [])
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--rnnkit", default="target/release/rnnkit")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    report = {"date": str(datetime.date.today()), "cpu": cpu, "runs": {}}
    print("| run | task | metric | f32 | int8 | change |")
    print("|---|---|---|---:|---:|---:|")
    for run in args.runs:
        f32, int8 = evaluate(args.rnnkit, run, False), evaluate(args.rnnkit, run, True)
        report["runs"][run] = {"f32": f32, "int8": int8}
        for m in METRICS:
            if m in f32:
                a, b = f32[m], int8[m]
                change = f"{100 * (b - a):+.2f} points" if m == "accuracy" else f"{b - a:+.5f} ({100 * (b - a) / a:+.2f}%)"
                print(f"| {run} | {f32['task']} | {m} | {a:.5f} | {b:.5f} | {change} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
