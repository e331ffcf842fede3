#!/usr/bin/env python3
"""The spoken-digit results of the README (issue 21), rerun and written to one JSON file.

    /work/venv/bin/python tools/fsdd_study.py [--out docs/results/fsdd-DATE.json] [--no-torch]

For train.seed 0, 1, 2 on FSDD's official split: `rnnkit train --config configs/fsdd-digits.toml`
then `tools/torch_fsdd.py` on the split that run wrote, alternating, 2 threads each; then the
held-out-speaker split, each of the six speakers in turn (rnnkit only). Wall times are whole
processes (reading the WAV files, features, training, test). Needs a release build
(`cargo build --release`).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RNNKIT = os.path.join(REPO, "target", "release", "rnnkit")
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def rnnkit_run(out_dir, name, sets):
    args = [RNNKIT, "train", "--config", "configs/fsdd-digits.toml", "--quiet",
            "--set", f"output.dir={out_dir}", "--set", f"output.name={name}", "--set", "output.threads=2"]
    for s in sets:
        args += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(args, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    m = json.load(open(os.path.join(out_dir, name, "metrics.json")))
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "epochs": m["epochs"], "wall_s": wall,
            "per_speaker_accuracy": m["per_speaker_accuracy"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fsdd-study-")
    official = []
    for seed in (0, 1, 2):
        row = {"seed": seed, "rnnkit": rnnkit_run(tmp, f"seed{seed}", [f"train.seed={seed}"])}
        if not args.no_torch:
            out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "torch_fsdd.py"), "--split",
                                  os.path.join(tmp, f"seed{seed}", "split.tsv"), "--seed", str(seed)],
                                 cwd=REPO, check=True, capture_output=True, text=True).stdout
            row["torch"] = json.loads(out.strip().splitlines()[-1])
        official.append(row)
        print(json.dumps(row), flush=True)
    speakers = {}
    for sp in SPEAKERS:
        speakers[sp] = rnnkit_run(tmp, f"spk-{sp}", ["data.split=speaker", f"data.test_speaker={sp}"])
        print(sp, json.dumps(speakers[sp]), flush=True)
    summary = {
        "rnnkit_official_mean_accuracy": statistics.mean(r["rnnkit"]["accuracy"] for r in official),
        "rnnkit_official_mean_wall_s": statistics.mean(r["rnnkit"]["wall_s"] for r in official),
        "rnnkit_speaker_mean_accuracy": statistics.mean(v["accuracy"] for v in speakers.values()),
    }
    if not args.no_torch:
        summary["torch_official_mean_accuracy"] = statistics.mean(r["torch"]["accuracy"] for r in official)
        summary["torch_official_mean_wall_s"] = statistics.mean(r["torch"]["wall_s"] for r in official)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    result = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "official": official, "speaker": speakers,
              "summary": summary}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
