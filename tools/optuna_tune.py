#!/usr/bin/env python3
"""Optuna side by side with `rnnkit tune` (issue 22): the same study file, the same budget and
workers, with Optuna's TPESampler and SuccessiveHalvingPruner driving `rnnkit train` trials.

    /work/venv/bin/python tools/optuna_tune.py --study configs/tune/names.toml --out studies/optuna-names \
        --workers 2 --threads-per-worker 1 [--seed 0]

Each trial is one `rnnkit train` process on the study's base config with the sampled values as
`--set` overrides and `train.epochs` at the pruner's `max_epochs`. After every epoch the script
reads the run's `metrics/epochs.csv` and reports the validation loss (negated for a maximized
objective) to the pruner; a pruned trial's process is stopped (SIGTERM: it checkpoints and
exits). A trial that trains to its end returns the objective from the run's
`valid_metrics.json` (validation loss, accuracy, macro_f1, rmse or mae). Optuna's
SuccessiveHalvingPruner ranks by that per-epoch validation loss, since rnnkit logs no other
validation metric per epoch; rnnkit's ASHA ranks by the objective itself at each rung.

Writes `OUT/trials.csv` (each trial's state, value, epochs and values) and `OUT/summary.json`: best value and values,
trials complete/pruned/failed, trial-epochs (epochs trained over all trials) and wall time.
"""
import argparse
import csv
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib

import optuna

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RNNKIT = os.path.join(REPO, "target", "release", "rnnkit")
MAXIMIZED = {"accuracy", "macro_f1"}


def suggest(trial, key, spec, drawn):
    """One key of the rnnkit space as an Optuna suggestion; None when its condition is false."""
    when = spec.get("when", {})
    for cond, allowed in when.items():
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if cond not in drawn or drawn[cond] not in allowed:
            return None
    if "uniform" in spec:
        lo, hi = spec["uniform"]
        return trial.suggest_float(key, lo, hi)
    if "loguniform" in spec:
        lo, hi = spec["loguniform"]
        return trial.suggest_float(key, lo, hi, log=True)
    if "int" in spec:
        lo, hi = spec["int"]
        return trial.suggest_int(key, lo, hi)
    if "int_log" in spec:
        lo, hi = spec["int_log"]
        return trial.suggest_int(key, lo, hi, log=True)
    if "choice" in spec:
        return trial.suggest_categorical(key, spec["choice"])
    if "fixed" in spec:
        return spec["fixed"]
    raise SystemExit(f"unknown distribution for {key}: {spec}")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def read_epochs(path):
    try:
        with open(path) as f:
            return [float(r["val_loss"]) for r in csv.DictReader(f)]
    except (FileNotFoundError, KeyError, ValueError):
        return []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads-per-worker", type=int, default=1)
    ap.add_argument("--seed", type=int, default=None, help="default: the study file's seed")
    ap.add_argument("--minutes", type=float, default=None,
                    help="wall budget in minutes (default: the study file's), as `rnnkit tune --minutes`")
    args = ap.parse_args()
    spec = tomllib.load(open(args.study, "rb"))
    base = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(args.study)), spec["base"]))
    objective = spec.get("objective", "loss")
    maximize = spec.get("direction", "maximize" if objective in MAXIMIZED else "minimize") == "maximize"
    pruner_cfg = spec["pruner"]
    max_epochs = pruner_cfg["max_epochs"]
    budget = dict(spec["budget"])
    if args.minutes is not None:
        budget["minutes"] = args.minutes
    seed = spec.get("seed", 0) if args.seed is None else args.seed
    os.makedirs(os.path.join(args.out, "trials"), exist_ok=False)
    epochs_trained = {}
    lock = threading.Lock()

    def run_trial(trial):
        drawn = {}
        for key, s in spec["space"].items():
            v = suggest(trial, key, s, drawn)
            if v is not None:
                drawn[key] = v
        name = f"{trial.number:04d}"
        run_dir = os.path.join(args.out, "trials", name)
        cmd = [RNNKIT, "train", "--quiet", "--config", base, "--set", f"train.epochs={max_epochs}",
               "--set", f"output.dir={os.path.join(args.out, 'trials')}", "--set", f"output.name={name}",
               "--set", f"output.threads={args.threads_per_worker}"]
        for k, v in drawn.items():
            cmd += ["--set", f"{k}={toml_value(v)}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reported = 0
        try:
            while True:
                done = proc.poll() is not None
                losses = read_epochs(os.path.join(run_dir, "metrics", "epochs.csv"))
                for step in range(reported, len(losses)):
                    trial.report(-losses[step] if maximize else losses[step], step + 1)
                    reported = step + 1
                    with lock:
                        epochs_trained[trial.number] = reported
                    if not done and trial.should_prune():
                        proc.send_signal(signal.SIGTERM)
                        proc.wait()
                        raise optuna.TrialPruned()
                if done:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    # The budget is spent: like `rnnkit tune`, stop the trial where it is (Optuna's
                    # own timeout only stops starting trials, and would let these run on).
                    proc.send_signal(signal.SIGTERM)
                    proc.wait()
                    raise optuna.TrialPruned()
                time.sleep(0.2)
            if proc.returncode != 0:
                raise RuntimeError(f"rnnkit train failed: {proc.stderr.read()[-500:]}")
            metrics = json.load(open(os.path.join(run_dir, "valid_metrics.json")))
            return metrics[objective]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=pruner_cfg.get("min_epochs", 1), reduction_factor=pruner_cfg.get("reduction", 3))
    if pruner_cfg.get("kind") == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=pruner_cfg.get("startup_trials", 5))
    elif pruner_cfg.get("kind") == "none":
        pruner = optuna.pruners.NopPruner()
    sampler_cfg = spec.get("sampler", {"kind": "tpe"})
    if sampler_cfg.get("kind", "tpe") == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=sampler_cfg.get("startup_trials", 10),
                                             multivariate=sampler_cfg.get("multivariate", True))
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler, pruner=pruner)
    timeout = budget.get("minutes", 0) * 60 or None
    n_trials = budget.get("trials", 0) or None
    t0 = time.perf_counter()
    deadline = t0 + timeout if timeout else None
    study.optimize(run_trial, n_trials=n_trials, timeout=timeout, n_jobs=args.workers, catch=(RuntimeError,))
    wall = time.perf_counter() - t0
    states = [t.state.name for t in study.trials]
    with open(os.path.join(args.out, "trials.csv"), "w", newline="") as f:
        w = csv.writer(f)
        keys = list(spec["space"])
        w.writerow(["trial", "state", "value", "epochs"] + keys)
        for t in study.trials:
            w.writerow([t.number, t.state.name, t.value, epochs_trained.get(t.number, 0)]
                       + [t.params.get(k, "") for k in keys])
    best = study.best_trial if any(s == "COMPLETE" for s in states) else None
    summary = {
        "objective": objective, "direction": "maximize" if maximize else "minimize",
        "best_value": best.value if best else None, "best_params": best.params if best else None,
        "best_trial": best.number if best else None, "trials": len(states),
        "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
        "trial_epochs": sum(epochs_trained.values()), "wall_s": wall, "seed": seed,
        "workers": args.workers, "threads_per_worker": args.threads_per_worker, "optuna": optuna.__version__,
    }
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
