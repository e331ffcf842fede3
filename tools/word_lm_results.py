#!/usr/bin/env python3
"""Put an rnnkit word-LM run and a `torch_word_lm.py --json` result side by side in one JSON file.

    python3 tools/word_lm_results.py --rnnkit-run /work/runs-wt2/wikitext2-small \
        --torch-json /work/runs-wt2/wt2-torch.json --date 2026-12-04 \
        --machine "2 cores (Intel Ice Lake-SP, AVX-512), 2 threads each, one after the other" \
        --rnnkit-command "..." --torch-command "..." > docs/results/wikitext2-small-2026-12-04.json

The layout is the one of docs/results/ptb-small-2026-11-24.json. rnnkit's numbers come from the
run directory: `metrics/epochs.jsonl` (one record per epoch; a record written again after a resume
replaces the earlier one) and the results table of `report.md` (test perplexity, training time of
all sittings). Standard library only: runs with any python3, no torch needed.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path


def report_rows(report: Path) -> dict[str, str]:
    """The `| metric | value |` rows of an rnnkit report.md."""
    rows = {}
    for line in report.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("metric", "---"):
            rows[cells[0]] = cells[1]
    return rows


def seconds(cell: str) -> float:
    """`1 h 47 min (6455 s)` or `30.6 s` -> seconds."""
    m = re.search(r"\(([\d.]+) s\)", cell) or re.fullmatch(r"([\d.]+) s", cell)
    if not m:
        raise ValueError(f"not a duration: {cell!r}")
    return float(m.group(1))


def rnnkit_side(run: Path) -> dict:
    epochs = {}
    for line in (run / "metrics/epochs.jsonl").read_text().splitlines():
        if line.strip():
            e = json.loads(line)
            epochs[e["epoch"]] = e  # a later record of the same epoch (after a resume) wins
    rows = report_rows(run / "report.md")
    if "test perplexity" not in rows:
        sys.exit(f"{run / 'report.md'} has no test perplexity: has the run finished? ({rows.get('status', '?')})")
    wall = seconds(rows.get("training time, all sittings", rows["wall time"]))
    return dict(
        test_ppl=round(float(rows["test perplexity"]), 2),
        best_valid_ppl=round(float(rows["best validation perplexity"]), 2),
        training_wall_s=round(wall),
        epochs=[
            dict(epoch=i + 1, lr=e["lr"], train_ppl=round(math.exp(e["train_loss"]), 2),
                 valid_ppl=round(math.exp(e["val_loss"]), 2), seconds_with_validation=round(e["seconds"], 1))
            for i, e in sorted(epochs.items())
        ],
    )


def torch_side(path: Path) -> dict:
    t = json.loads(path.read_text())
    return dict(
        test_ppl=round(t["test_ppl"], 2),
        best_valid_ppl=round(t["best_valid_ppl"], 2),
        script_wall_s=round(t["wall_s"], 1),
        version=t["torch"],
        threads=t["threads"],
        epochs=[
            dict(epoch=e["epoch"], lr=e["lr"], train_ppl=round(e["train_ppl"], 2), valid_ppl=round(e["valid_ppl"], 2),
                 train_seconds=round(e["train_seconds"], 1), tokens_per_s=round(e["tokens_per_s"]))
            for e in t["epochs"]
        ],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rnnkit-run", type=Path, required=True, help="the rnnkit run directory")
    ap.add_argument("--torch-json", type=Path, default=None, help="torch_word_lm.py --json output")
    ap.add_argument("--date", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--rnnkit-command", required=True)
    ap.add_argument("--torch-command", default=None)
    ap.add_argument("--notes", default=None)
    args = ap.parse_args()
    out = dict(date=args.date, machine=args.machine,
               commands=dict(rnnkit=args.rnnkit_command, torch=args.torch_command))
    if args.notes:
        out["notes"] = args.notes
    out["rnnkit"] = rnnkit_side(args.rnnkit_run)
    if args.torch_json:
        out["torch"] = torch_side(args.torch_json)
        out["test_ppl_difference"] = round(out["rnnkit"]["test_ppl"] - out["torch"]["test_ppl"], 2)
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
