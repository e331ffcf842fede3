#!/usr/bin/env python3
"""rnnkit vs PyTorch, side by side, on the DESIGN.md section 5 benchmark suite.

Run from the repository root with a Python that has torch:

    /work/venv/bin/python tools/bench_compare.py                       # builds, 3 rounds, threads 1 and 2
    /work/venv/bin/python tools/bench_compare.py --no-build --rounds 1 --case lstm-small,lstm-med
    /work/venv/bin/python tools/bench_compare.py --out docs/bench.md   # also write the table to a file
    /work/venv/bin/python tools/bench_compare.py --bf16 --case lstm-med  # and torch under bf16 autocast
    /work/venv/bin/python tools/bench_compare.py --from-json docs/bench.json   # the table of a saved run

For each thread count (--threads, default 1,2), each round (--rounds, default 3) and each case, it runs
`target/release/rnnkit bench --json --threads N --case CASE` and
`tools/bench_torch.py --json --threads N --case CASE` one after the other (the order rotates from
case to case and round to round, so both sides share the machine's noise), then reports the median
tokens/s of the rounds as a markdown table: case, threads, rnnkit tok/s, torch tok/s, rnnkit/torch,
and GFLOP/s where the case's FLOPs per token are known.
A case missing on either side (no JSON line, a failed run, no binary) shows "n/a".
A second table gives each side's run-to-run spread: (max - min) / median of its rounds.
Unless --no-build is given it first runs `cargo build --release`.

PyTorch runs at its best allocator (--torch-alloc): "auto" (the default) preloads jemalloc
(LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2, Debian's libjemalloc2) where that file
exists, else tells glibc to keep its memory (MALLOC_MMAP_THRESHOLD_=134217728
MALLOC_TRIM_THRESHOLD_=268435456, "glibc-tuned"); "jemalloc" and "glibc-tuned" force one, "default"
leaves torch's environment as it is.  rnnkit always runs with the environment unchanged.

--bf16 adds two sides in the same rotation: "rnnkit-bf16" (`rnnkit bench --precision bf16`:
bfloat16 GEMMs with f32 accumulation; refused, so "n/a", on a CPU without AVX512-BF16) and
"torch-bf16" (`bench_torch.py --bf16`: forward passes under torch.autocast("cpu",
dtype=torch.bfloat16)), and the columns "rnnkit bf16 tok/s", "torch bf16 tok/s" and
"bf16 rnnkit/torch" (bf16 against bf16).

The header line of the table names the torch version, date, CPU model and its relevant flags
(avx2 fma avx512f avx512_bf16 avx512_vnni amx_tile amx_bf16 amx_int8, those present), the torch
allocator and the load average at the start; --json-out saves them with every round's numbers
(keys torch_version, rounds, samples, date, cpu, cpu_flags, machine, threads, cases,
torch_allocator, bf16, load_average_start), and --from-json prints the table of such a file (older
files without the newer keys included).
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
# the suite's case names and the allocator/CPU helpers; importing bench_torch does not import torch
from bench_torch import CASES, JEMALLOC, allocator_name, cpu_flags  # noqa: E402

# CPU features that matter to the kernels of either side, in the order the header lists them.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
GLIBC_TUNED = {"MALLOC_MMAP_THRESHOLD_": "134217728", "MALLOC_TRIM_THRESHOLD_": "268435456"}
SIDES = ("rnnkit", "torch", "rnnkit-bf16", "torch-bf16")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_json_lines(text: str, allocators: set | None = None) -> dict:
    """{case: (tokens_per_s, ms_per_iter)} from the JSON lines of a bench run; other lines ignored.
    The "allocator" fields the lines report are added to `allocators` when given."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            d = json.loads(line)
            out[str(d["case"])] = (float(d["tokens_per_s"]), float(d.get("ms_per_iter", "nan")))
            if allocators is not None and d.get("allocator"):
                allocators.add(str(d["allocator"]))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def run_one(cmd: list, timeout: float, label: str, env: dict | None = None,
            allocators: set | None = None) -> dict:
    try:
        p = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        log(f"  {label}: cannot run {cmd[0]}")
        return {}
    except subprocess.TimeoutExpired:
        log(f"  {label}: timed out after {timeout:g} s")
        return {}
    res = parse_json_lines(p.stdout, allocators)
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
# (2·G·H·(I_k + P) per layer, direction and token, P the width of the recurrent input: H, or the
# projection's width) plus backward (twice that); streaming and the -infer cases are forward only.
# The embedding gather and the cross-entropy of ptb-small-train are not counted; lstm-packed counts
# per real token (its padding is not computed), the dropout masks of lstm-med-dropout are not counted.
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
    "lstm-packed": 2 * 6 * 1024 * (256 + 256),
    # layer 1 reads 256 inputs, layer 2 the 64-wide projection; both recur on the projection 64, plus
    # the projection 256 -> 64 of each layer.
    "lstm-proj": 6 * 1024 * (256 + 64) + 6 * 1024 * (64 + 64) + 2 * 6 * 256 * 64,
    # two directions per layer; layer 2 reads both directions' outputs (512).
    "bilstm-med": 2 * 6 * 1024 * (256 + 256) + 2 * 6 * 1024 * (512 + 256),
    "lstm-med-dropout": 2 * 6 * 1024 * (256 + 256),
    "lstm-small-infer": 2 * 256 * (32 + 64),
    "lstm-med-infer": 2 * 2 * 1024 * (256 + 256),
    "lstm-large-infer": 2 * 4096 * (1024 + 1024),
    "gru-med-infer": 2 * 2 * 768 * (256 + 256),
    "rnn-med-infer": 2 * 2 * 256 * (256 + 256),
}


def fmt_gflops(case, tokens_per_s):
    if tokens_per_s is None or case not in FLOP_PER_TOKEN:
        return "n/a"
    return f"{FLOP_PER_TOKEN[case] * tokens_per_s / 1e9:.1f}"


def cpu_model() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def machine_line() -> str:
    return f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def torch_environment(choice: str) -> dict:
    """The environment bench_torch.py runs with for --torch-alloc `choice`."""
    env = dict(os.environ)
    if choice == "auto":
        choice = "jemalloc" if os.path.exists(JEMALLOC) else "glibc-tuned"
    preload = [x for x in env.get("LD_PRELOAD", "").replace(" ", ":").split(":") if x]
    if choice == "jemalloc":
        if not os.path.exists(JEMALLOC):
            raise SystemExit(f"--torch-alloc jemalloc: no {JEMALLOC} (Debian package libjemalloc2)")
        if not any("jemalloc" in x for x in preload):
            env["LD_PRELOAD"] = ":".join([JEMALLOC] + preload)
    elif choice == "glibc-tuned":
        preload = [x for x in preload if "jemalloc" not in x]
        if preload:
            env["LD_PRELOAD"] = ":".join(preload)
        else:
            env.pop("LD_PRELOAD", None)
        env.update(GLIBC_TUNED)
    return env


def header_line(meta: dict, bf16: bool) -> str:
    """The line above the table, from what is known of the run (older saved files know less)."""
    parts = [f"rnnkit vs PyTorch {meta.get('torch_version', '?')} (CPU), "
             f"median tokens/s of {meta.get('rounds', '?')} round(s)"]
    if meta.get("date"):
        parts[0] += f", {meta['date']}"
    if meta.get("machine") or meta.get("cpu"):
        parts.append(meta.get("machine") or meta["cpu"])
    if meta.get("cpu_flags") is not None:
        parts.append("CPU flags: " + (" ".join(meta["cpu_flags"]) or "none of " + " ".join(CPU_FLAGS)))
    if meta.get("torch_allocator"):
        parts.append(f"torch allocator: {meta['torch_allocator']}")
    if bf16:
        parts.append("torch bf16: torch.autocast('cpu', dtype=torch.bfloat16)")
    if meta.get("load_average_start") is not None:
        parts.append(f"load average {meta['load_average_start']:.2f} at start")
    return "; ".join(parts)


def render_table(meta: dict, med, cases: list, threads: list, bf16: bool) -> str:
    """The markdown table; med(side, case, threads) is the median tokens/s or None."""
    if bf16:
        head = ("| case | threads | rnnkit tok/s | torch tok/s | rnnkit/torch | rnnkit bf16 tok/s | "
                "torch bf16 tok/s | bf16 rnnkit/torch | rnnkit GFLOP/s | torch GFLOP/s |")
        rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    else:
        head = "| case | threads | rnnkit tok/s | torch tok/s | rnnkit/torch | rnnkit GFLOP/s | torch GFLOP/s |"
        rule = "|---|---:|---:|---:|---:|---:|---:|"
    lines = [header_line(meta, bf16), "", head, rule]

    def ratio(a, b):
        return f"{a / b:.3g}" if a is not None and b else "n/a"

    for n in threads:
        for case in cases:
            a, b = med("rnnkit", case, n), med("torch", case, n)
            if bf16:
                c, d = med("rnnkit-bf16", case, n), med("torch-bf16", case, n)
                lines.append(f"| {case} | {n} | {fmt_tok(a)} | {fmt_tok(b)} | {ratio(a, b)} | {fmt_tok(c)} | "
                             f"{fmt_tok(d)} | {ratio(c, d)} | {fmt_gflops(case, a)} | {fmt_gflops(case, b)} |")
            else:
                lines.append(f"| {case} | {n} | {fmt_tok(a)} | {fmt_tok(b)} | {ratio(a, b)} | "
                             f"{fmt_gflops(case, a)} | {fmt_gflops(case, b)} |")
    return "\n".join(lines) + "\n"


def render_spread(samples: dict, cases: list, threads: list, sides: list) -> str:
    """Run-to-run spread per side: (max - min) / median of the rounds' tokens/s, in percent.

    samples[(side, case, threads)] is the list of every round's tokens/s."""
    head = "| case | threads | " + " | ".join(f"{s} spread" for s in sides) + " |"
    rule = "|---|---:|" + "---:|" * len(sides)
    lines = ["Run-to-run spread, (max - min) / median of the rounds:", "", head, rule]
    for n in threads:
        for case in cases:
            cells = []
            for side in sides:
                v = samples.get((side, case, n)) or []
                if len(v) >= 2:
                    cells.append(f"{100 * (max(v) - min(v)) / statistics.median(v):.1f}%")
                else:
                    cells.append("n/a")
            lines.append(f"| {case} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_saved(path: str, out: str | None) -> int:
    """Prints (and optionally writes) the table of a saved --json-out file."""
    with open(path) as f:
        saved = json.load(f)
    medians = {(r["side"], r["case"], r["threads"]): statistics.median(r["tokens_per_s"])
               for r in saved["samples"] if r.get("tokens_per_s")}
    seen = {k[1] for k in medians}
    cases = [c for c in CASES if c in seen] + sorted(seen - set(CASES))
    threads = saved.get("threads") or sorted({k[2] for k in medians})
    bf16 = bool(saved.get("bf16")) or any(k[0].endswith("-bf16") for k in medians)
    table = render_table(saved, lambda side, case, n: medians.get((side, case, n)), cases, threads, bf16)
    rounds = {(r["side"], r["case"], r["threads"]): r["tokens_per_s"] for r in saved["samples"]}
    sides = [s for s in SIDES if any(k[0] == s for k in rounds)]
    table += "\n" + render_spread(rounds, cases, threads, sides)
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
    ap.add_argument("--torch-alloc", choices=["auto", "jemalloc", "glibc-tuned", "default"], default="auto",
                    help="torch's allocator: auto (jemalloc if installed, else glibc-tuned; the default), "
                         "jemalloc (LD_PRELOAD), glibc-tuned (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_), "
                         "default (the environment unchanged)")
    ap.add_argument("--bf16", action="store_true",
                    help="also run `rnnkit bench --precision bf16` and bench_torch.py --bf16 (autocast "
                         "bfloat16) as the sides rnnkit-bf16 and torch-bf16")
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
    torch_env = torch_environment(args.torch_alloc)
    torch_alloc = allocator_name(torch_env)
    log(f"torch allocator: {torch_alloc} (--torch-alloc {args.torch_alloc}); rnnkit: environment unchanged")

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
    sides = list(SIDES if args.bf16 else SIDES[:2])

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    reported_alloc: set = set()  # the allocators bench_torch.py says it ran with
    # samples[(side, case, threads)] = list of (tokens_per_s, ms_per_iter)
    samples: dict = {}
    for n in threads:
        for r in range(args.rounds):
            for ci, case in enumerate(cases):
                # rotate the order of the sides from case to case and from round to round
                k = (ci + r) % len(sides)
                for side in sides[k:] + sides[:k]:
                    if side.startswith("rnnkit"):
                        if not have_rnnkit:
                            continue
                        cmd = rnnkit_cmd + ["bench", "--json", "--threads", str(n), "--case", case] + rnnkit_extra
                        if side == "rnnkit-bf16":
                            cmd += ["--precision", "bf16"]
                        env = None
                    else:
                        cmd = torch_cmd + ["--json", "--threads", str(n), "--case", case]
                        if side == "torch-bf16":
                            cmd.append("--bf16")
                        env = torch_env
                    res = run_one(cmd, args.timeout, f"{side} {case} threads={n}", env,
                                  reported_alloc if env is not None else None)
                    if case in res:
                        samples.setdefault((side, case, n), []).append(res[case])
                        log(f"threads={n} round={r + 1} {side:11} {case:16} {res[case][0]:14.1f} tok/s")
                    else:
                        log(f"threads={n} round={r + 1} {side:11} {case:16} n/a")
    if reported_alloc and reported_alloc != {torch_alloc}:
        log(f"warning: torch reported allocator(s) {', '.join(sorted(reported_alloc))}, not {torch_alloc}")
        torch_alloc = ", ".join(sorted(reported_alloc))

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
    flags = cpu_flags()
    meta = {
        "torch_version": torch_version,
        "rounds": args.rounds,
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_model(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
        "machine": machine_line(),
        "threads": threads,
        "cases": cases,
        "torch_allocator": torch_alloc,
        "bf16": args.bf16,
        "load_average_start": load_start,
    }
    table = render_table(meta, med, cases, threads, args.bf16)
    rounds = {k: [t for t, _ in v] for k, v in samples.items()}
    table += "\n" + render_spread(rounds, cases, threads, [s for s in sides if s != "rnnkit" or have_rnnkit])
    print(table, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)
    if args.json_out:
        rows = [{"side": s, "case": c, "threads": n, "tokens_per_s": [t for t, _ in v],
                 "ms_per_iter": [m for _, m in v]} for (s, c, n), v in sorted(samples.items())]
        with open(args.json_out, "w") as f:
            json.dump(dict(meta, samples=rows), f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
