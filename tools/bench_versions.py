#!/usr/bin/env python3
"""Two rnnkit binaries side by side on `rnnkit bench`: did a change move the engine's speed?

    python3 tools/bench_versions.py OLD_BIN NEW_BIN [--rounds 5] [--threads 2] \
        [--case lstm-small,lstm-med,...] > table.md

For each round and case it runs `BIN bench --json --threads N --case CASE` for both binaries
one after the other, alternating which goes first (so both share the machine's drifts), and
prints a Markdown table of the median tokens/s of each and new/old. The raw numbers of every
run go to stderr as one JSON object at the end. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

DEFAULT_CASES = "lstm-small,lstm-med,lstm-large,gru-med,rnn-med,lstm-stream,ptb-small-train"


def tokens_per_s(binary: str, case: str, threads: int) -> float | None:
    out = subprocess.run([binary, "bench", "--json", "--threads", str(threads), "--case", case],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return float(json.loads(line)["tokens_per_s"])
    print(f"{binary} {case}: no result (exit {out.returncode}): {out.stderr.strip()}", file=sys.stderr)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", default=DEFAULT_CASES)
    args = ap.parse_args()
    cases = args.case.split(",")
    runs = {c: {"old": [], "new": []} for c in cases}
    for r in range(args.rounds):
        for i, case in enumerate(cases):
            order = [("old", args.old), ("new", args.new)]
            if (r + i) % 2:
                order.reverse()
            for side, binary in order:
                tps = tokens_per_s(binary, case, args.threads)
                if tps is not None:
                    runs[case][side].append(tps)
    print(f"| case | old tok/s | new tok/s | new/old |  ({args.rounds} rounds, {args.threads} threads, medians)")
    print("|---|---:|---:|---:|")
    for case in cases:
        o, n = runs[case]["old"], runs[case]["new"]
        if o and n:
            mo, mn = statistics.median(o), statistics.median(n)
            print(f"| {case} | {mo:.0f} | {mn:.0f} | {mn / mo:.3f} |")
        else:
            print(f"| {case} | n/a | n/a | n/a |")
    print(json.dumps(runs), file=sys.stderr)


if __name__ == "__main__":
    main()
