#!/usr/bin/env python3
"""rnnkit vs PyTorch, side by side, on the DESIGN.md section 5 benchmark suite.

Run from the repository root with a Python that has torch:

    /work/venv/bin/python tools/bench_compare.py                       # builds, 3 rounds, threads 1 and 2
    /work/venv/bin/python tools/bench_compare.py --no-build --rounds 1 --case lstm-small,lstm-med
    /work/venv/bin/python tools/bench_compare.py --out docs/bench.md   # also write the table to a file

For each thread count (--threads, default 1,2), each round (--rounds, default 3) and each case, it runs
`target/release/rnnkit bench --json --threads N --case CASE` and
`tools/bench_torch.py --json --threads N --case CASE` one after the other (the order alternates from
case to case and round to round, so both sides share the machine's noise), then reports the median
tokens/s of the rounds as a markdown table: case, threads, rnnkit tok/s, torch tok/s, rnnkit/torch.
A case missing on either side (no JSON line, a failed run, no binary) shows "n/a".
Unless --no-build is given it first runs `cargo build --release`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_torch import CASES  # noqa: E402  (the suite's case names; importing does not import torch)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_json_lines(text: str) -> dict:
    """{case: (tokens_per_s, ms_per_iter)} from the JSON lines of a bench run; other lines ignored."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            d = json.loads(line)
            out[str(d["case"])] = (float(d["tokens_per_s"]), float(d.get("ms_per_iter", "nan")))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def run_one(cmd: list, timeout: float, label: str) -> dict:
    try:
        p = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        log(f"  {label}: cannot run {cmd[0]}")
        return {}
    except subprocess.TimeoutExpired:
        log(f"  {label}: timed out after {timeout:g} s")
        return {}
    res = parse_json_lines(p.stdout)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        log(f"  {label}: exit {p.returncode}: " + " | ".join(tail))
    return res


def fmt_tok(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


# GEMM floating-point operations per token of each case (2·m·n·k per product): training is forward
# (2·G·H·(I_k + P) per layer and token) plus backward (twice that); streaming is forward only. The
# embedding gather and the cross-entropy of ptb-small-train are not counted.
FLOP_PER_TOKEN = {
    "lstm-small": 6 * 256 * (32 + 64),
    "lstm-med": 2 * 6 * 1024 * (256 + 256),
    "lstm-large": 6 * 4096 * (1024 + 1024),
    "gru-med": 2 * 6 * 768 * (256 + 256),
    "rnn-med": 2 * 6 * 256 * (256 + 256),
    "lstm-stream": 2 * 2 * 1024 * (256 + 256),
    # 2-layer LSTM 200 plus the 200 -> 10000 decoder, forward and backward.
    "ptb-small-train": 2 * 6 * 800 * (200 + 200) + 6 * 200 * 10000,
    "ptb-medium-train": 2 * 6 * 2600 * (650 + 650) + 6 * 650 * 10000,
    "wikitext2-small-train": 2 * 6 * 800 * (200 + 200) + 6 * 200 * 33278,
}


def fmt_gflops(case, tokens_per_s):
    if tokens_per_s is None or case not in FLOP_PER_TOKEN:
        return "n/a"
    return f"{FLOP_PER_TOKEN[case] * tokens_per_s / 1e9:.1f}"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def render_saved(path: str, out: str | None) -> int:
    """Prints (and optionally writes) the table of a saved --json-out file."""
    with open(path) as f:
        saved = json.load(f)
    med = {(r["side"], r["case"], r["threads"]): statistics.median(r["tokens_per_s"]) for r in saved["samples"]}
    cases = [c for c in CASES if any(k[1] == c for k in med)]
    threads = sorted({k[2] for k in med})
    lines = [
        f"rnnkit vs PyTorch {saved['torch_version']} (CPU), median tokens/s of {saved['rounds']} round(s)",
        "",
        "| case | threads | rnnkit tok/s | torch tok/s | rnnkit/torch | rnnkit GFLOP/s | torch GFLOP/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in threads:
        for case in cases:
            a, b = med.get(("rnnkit", case, n)), med.get(("torch", case, n))
            ratio = f"{a / b:.3g}" if a is not None and b else "n/a"
            lines.append(f"| {case} | {n} | {fmt_tok(a)} | {fmt_tok(b)} | {ratio} | "
                         f"{fmt_gflops(case, a)} | {fmt_gflops(case, b)} |")
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if out:
        with open(out, "w") as f:
            f.write(table)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="runs per side, case and thread count (default 3)")
    ap.add_argument("--case", action="append", default=[],
                    help="case name; repeatable or comma-separated (default: the whole suite)")
    ap.add_argument("--no-build", action="store_true", help="skip `cargo build --release`")
    ap.add_argument("--rnnkit-bin", default=os.path.join("target", "release", "rnnkit"),
                    help="rnnkit binary (default target/release/rnnkit), or a command line")
    ap.add_argument("--python", default=sys.executable, help="Python with torch (default: this one)")
    ap.add_argument("--torch-args", default="", help="extra arguments for bench_torch.py, e.g. '--min-time 1'")
    ap.add_argument("--rnnkit-args", default="", help="extra arguments for `rnnkit bench`")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed for one run (default 600)")
    ap.add_argument("--out", help="also write the markdown table to this file")
    ap.add_argument("--json-out", help="also write all measurements (every round) as JSON to this file")
    ap.add_argument("--from-json", help="run nothing: print the table of a file written by --json-out")
    args = ap.parse_args(argv)
    if args.from_json:
        return render_saved(args.from_json, args.out)

    cases = [n.strip() for c in args.case for n in c.split(",") if n.strip()] or list(CASES)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]

    if not args.no_build:
        log("cargo build --release ...")
        p = subprocess.run(["cargo", "build", "--release"], cwd=REPO_ROOT)
        if p.returncode != 0:
            log("cargo build --release failed; rnnkit columns will be n/a unless the binary exists")
    rnnkit_cmd = shlex.split(args.rnnkit_bin)
    if len(rnnkit_cmd) == 1 and not os.path.isabs(rnnkit_cmd[0]):
        rnnkit_cmd[0] = os.path.join(REPO_ROOT, rnnkit_cmd[0])
    have_rnnkit = os.path.exists(rnnkit_cmd[0]) or len(rnnkit_cmd) > 1
    if not have_rnnkit:
        log(f"no rnnkit binary at {rnnkit_cmd[0]}: rnnkit columns will be n/a")
    torch_cmd = [args.python, os.path.join(HERE, "bench_torch.py")] + shlex.split(args.torch_args)
    rnnkit_extra = shlex.split(args.rnnkit_args)

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # samples[(side, case, threads)] = list of (tokens_per_s, ms_per_iter)
    samples: dict = {}
    k = 0
    for n in threads:
        for r in range(args.rounds):
            for case in cases:
                sides = ["rnnkit", "torch"] if k % 2 == 0 else ["torch", "rnnkit"]
                k += 1
                for side in sides:
                    if side == "rnnkit":
                        if not have_rnnkit:
                            continue
                        cmd = rnnkit_cmd + ["bench", "--json", "--threads", str(n), "--case", case] + rnnkit_extra
                    else:
                        cmd = torch_cmd + ["--json", "--threads", str(n), "--case", case]
                    res = run_one(cmd, args.timeout, f"{side} {case} threads={n}")
                    if case in res:
                        samples.setdefault((side, case, n), []).append(res[case])
                        log(f"threads={n} round={r + 1} {side:6} {case:16} {res[case][0]:14.1f} tok/s")
                    else:
                        log(f"threads={n} round={r + 1} {side:6} {case:16} n/a")

    def med(side, case, n):
        v = samples.get((side, case, n))
        return statistics.median(t for t, _ in v) if v else None

    torch_version = "?"
    try:
        p = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True, timeout=120)
        torch_version = p.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    lines = [
        f"rnnkit vs PyTorch {torch_version} (CPU), median tokens/s of {args.rounds} round(s), "
        f"{datetime.date.today().isoformat()}; {machine_line()}; load average {load_start:.2f} at start",
        "",
        "| case | threads | rnnkit tok/s | torch tok/s | rnnkit/torch | rnnkit GFLOP/s | torch GFLOP/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in threads:
        for case in cases:
            a, b = med("rnnkit", case, n), med("torch", case, n)
            ratio = f"{a / b:.3g}" if a is not None and b else "n/a"
            lines.append(f"| {case} | {n} | {fmt_tok(a)} | {fmt_tok(b)} | {ratio} | "
                         f"{fmt_gflops(case, a)} | {fmt_gflops(case, b)} |")
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    if args.json_out:
        rows = [{"side": s, "case": c, "threads": n, "tokens_per_s": [t for t, _ in v],
                 "ms_per_iter": [m for _, m in v]} for (s, c, n), v in sorted(samples.items())]
        with open(args.json_out, "w") as f:
            json.dump({"torch_version": torch_version, "rounds": args.rounds, "samples": rows}, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
