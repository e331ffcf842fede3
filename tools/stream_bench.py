#!/usr/bin/env python3
"""Streaming inference speed: rnnkit f32 and int8 against onnxruntime f32 and int8, side by side.

The case is `lstm-stream`: a 2-layer LSTM, input 256, hidden 256, batch 1, one time step per call
with the state carried over (steps per second). Four sides, in one rotation per round so they share
the machine's noise:

- rnnkit f32:   `rnnkit bench --json --case lstm-stream --threads N`
- rnnkit int8:  `rnnkit bench --json --case lstm-stream-int8 --threads N` (Rnn::quantize: per-row
                int8 weights, activations quantized per step)
- ort f32:      (each onnxruntime measurement in a process of its own, as rnnkit's are)
                the same stack exported by rnnkit (`examples/export_stream_stack.rs`, ONNX LSTM
                operators, no lengths input), one `session.run` per step with h_n/c_n fed back as
                h0/c0, intra-op threads N
- ort int8:     that file through `onnxruntime.quantization.quantize_dynamic` (weights QInt8; the
                LSTM becomes DynamicQuantizeLSTM), timed the same way

Each side's time is the median over its timed calls (after warm-up), like `rnnkit bench`; the
report gives the median over rounds of each side's steps/s and the ratios. Run from the repository
root with a venv holding onnxruntime (outside the repo):

    /work/venv/bin/python tools/stream_bench.py --rounds 5 --json-out docs/results/stream-int8.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_torch import cpu_flags  # noqa: E402  (no torch import)


def rnnkit_steps(binary, case, threads):
    out = subprocess.run([binary, "bench", "--json", "--case", case, "--threads", str(threads)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["tokens_per_s"]


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_steps(sess, seconds=2.0, warmup=200):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(1, 1, 256)).astype(np.float32)
    h = np.zeros((2, 1, 256), np.float32)
    c = np.zeros((2, 1, 256), np.float32)
    names = [o.name for o in sess.get_outputs()]
    for _ in range(warmup):
        _, h, c = sess.run(names, {"input": x, "h0": h, "c0": c})
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        _, h, c = sess.run(names, {"input": x, "h0": h, "c0": c})
        times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def ort_steps_in_process(path, threads):
    """One onnxruntime measurement in a process of its own, so its thread pool (which spins
    after each call, as onnxruntime's default) is gone before the next side runs."""
    out = subprocess.run([sys.executable, __file__, "--ort-one", path, str(threads)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--ort-one":
        print(ort_steps(ort_session(sys.argv[2], int(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rnnkit", default=os.path.join(REPO, "target/release/rnnkit"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="stream-bench-")
    f32_path = os.path.join(work, "lstm-stream.onnx")
    subprocess.run(["cargo", "run", "-q", "--release", "-p", "rnnkit", "--example", "export_stream_stack", "--", f32_path],
                   cwd=REPO, check=True, capture_output=True)
    int8_path = os.path.join(work, "lstm-stream-int8.onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(f32_path, int8_path, weight_type=QuantType.QInt8)

    sides = ["rnnkit f32", "rnnkit int8", "ort f32", "ort int8"]
    samples = {}
    for threads in [int(t) for t in args.threads.split(",")]:
        paths = {"ort f32": f32_path, "ort int8": int8_path}
        for r in range(args.rounds):
            order = sides[r % 4:] + sides[:r % 4]
            for side in order:
                if side == "rnnkit f32":
                    v = rnnkit_steps(args.rnnkit, "lstm-stream", threads)
                elif side == "rnnkit int8":
                    v = rnnkit_steps(args.rnnkit, "lstm-stream-int8", threads)
                else:
                    v = ort_steps_in_process(paths[side], threads)
                samples.setdefault(f"{side} @{threads}", []).append(v)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model\t")), "?")
    print(f"lstm-stream (2x256 LSTM, batch 1, one step per call), {args.rounds} rounds, medians; "
          f"{cpu} (model {model}), onnxruntime {ort.__version__}, {datetime.date.today()}")
    print("| threads | rnnkit f32 | rnnkit int8 | ort f32 | ort int8 | int8/f32 (rnnkit) | rnnkit f32 / ort f32 | rnnkit int8 / ort int8 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    medians = {k: statistics.median(v) for k, v in samples.items()}
    for threads in [int(t) for t in args.threads.split(",")]:
        m = {s: medians[f"{s} @{threads}"] for s in sides}
        print(f"| {threads} | {m['rnnkit f32']:.0f} | {m['rnnkit int8']:.0f} | {m['ort f32']:.0f} | {m['ort int8']:.0f} | "
              f"{m['rnnkit int8'] / m['rnnkit f32']:.2f} | {m['rnnkit f32'] / m['ort f32']:.2f} | {m['rnnkit int8'] / m['ort int8']:.2f} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({
                "case": "lstm-stream", "unit": "steps/s", "rounds": args.rounds, "date": str(datetime.date.today()),
                "cpu": cpu, "cpu_model": model, "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"}), "machine": platform.node(),
                "onnxruntime": ort.__version__, "samples": samples, "medians": medians,
            }, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
