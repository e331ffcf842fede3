#!/usr/bin/env python3
"""Check `rnnkit verify-case` against the PyTorch golden fixtures (tests/fixtures/cases/).

    # run rnnkit on every case and compare (needs numpy + safetensors, not torch):
    /work/venv/bin/python tools/compare_result.py --all [--rnnkit-bin target/release/rnnkit]
    # only some cases (name or substring):
    /work/venv/bin/python tools/compare_result.py --all --filter lstm_proj
    # compare one RESULT file you already have with its expected file:
    /work/venv/bin/python tools/compare_result.py RESULT.safetensors tests/fixtures/cases/NAME.expected.safetensors

By default a tensor passes when its scale-relative error max|result - expected| / max|expected| is at
most 1e-5 (output, h_n, c_n) or 1e-4 (grad_*), the criterion of crates/rnnkit/tests/parity.rs.
With --elementwise it must instead satisfy |result - expected| <= atol + rtol * |expected| everywhere
(defaults 1e-5, 1e-4), which is stricter on small elements of badly conditioned (saturated) cases.
The expected values are float64 PyTorch rounded to float32. Names missing or extra in RESULT, shape or
dtype differences and non-finite values are failures too. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "cases")


def compare(result_path: str, expected_path: str, atol: float, rtol: float,
            elementwise: bool = False, out_tol: float = 1e-5, grad_tol: float = 1e-4) -> list[str]:
    """Problems found (empty when it passes), plus a final 'worst' line."""
    got, want = load_file(result_path), load_file(expected_path)
    problems = []
    for k in sorted(set(want) - set(got)):
        problems.append(f"missing {k}")
    for k in sorted(set(got) - set(want)):
        problems.append(f"unexpected {k}")
    worst = (0.0, "")
    for k in sorted(set(want) & set(got)):
        a, b = got[k], want[k]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{k}: {a.dtype}{list(a.shape)} != expected {b.dtype}{list(b.shape)}")
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        if not np.all(np.isfinite(a64)):
            problems.append(f"{k}: non-finite values")
            continue
        err = np.abs(a64 - b64)
        if not elementwise:
            scale = float(np.abs(b64).max()) if b64.size else 0.0
            rel = float(err.max()) / scale if scale > 0 else float(err.max()) if err.size else 0.0
            tol = grad_tol if k.startswith("grad") else out_tol
            if rel > tol:
                problems.append(f"{k}: scale-relative error {rel:.3g} > {tol:g} "
                                f"(max |err| {err.max():.3g}, max |want| {scale:.3g})")
            if rel > worst[0]:
                worst = (rel, k)
            continue
        excess = err - (atol + rtol * np.abs(b64))
        i = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.size else ()
        if excess.size and excess[i] > 0:
            problems.append(f"{k}: max |err| {err.max():.3g}; at {tuple(int(j) for j in i)} got {a64[i]:.7g} "
                            f"want {b64[i]:.7g}")
        if err.size and err.max() > worst[0]:
            worst = (float(err.max()), k)
    what = "|err|" if elementwise else "scale-relative error"
    return problems + [f"worst {what} {worst[0]:.3g} ({worst[1]})"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    ap.add_argument("files", nargs="*", help="RESULT EXPECTED (without --all)")
    ap.add_argument("--all", action="store_true", help="run rnnkit verify-case on every case and compare")
    ap.add_argument("--filter", default="", help="with --all: only cases whose name contains this")
    ap.add_argument("--rnnkit-bin", default=os.path.join(REPO_ROOT, "target", "release", "rnnkit"))
    ap.add_argument("--cases-dir", default=CASES_DIR)
    ap.add_argument("--elementwise", action="store_true", help="use atol + rtol*|expected| per element")
    ap.add_argument("--atol", type=float, default=1e-5, help="with --elementwise (default 1e-5)")
    ap.add_argument("--rtol", type=float, default=1e-4, help="with --elementwise (default 1e-4)")
    ap.add_argument("--out-tol", type=float, default=1e-5,
                    help="scale-relative bound for output/h_n/c_n (default 1e-5)")
    ap.add_argument("--grad-tol", type=float, default=1e-4,
                    help="scale-relative bound for gradients (default 1e-4)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the worst error of passing cases")
    args = ap.parse_args(argv)

    if not args.all:
        if len(args.files) != 2:
            ap.error("give RESULT and EXPECTED, or --all")
        out = compare(args.files[0], args.files[1], args.atol, args.rtol, args.elementwise,
                      args.out_tol, args.grad_tol)
        print("\n".join(out))
        return 1 if len(out) > 1 else 0

    cases = sorted(p for p in glob.glob(os.path.join(args.cases_dir, "*.safetensors"))
                   if not p.endswith(".expected.safetensors") and args.filter in os.path.basename(p))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            name = os.path.basename(case)[: -len(".safetensors")]
            res = os.path.join(tmp, name + ".result.safetensors")
            p = subprocess.run([args.rnnkit_bin, "verify-case", case, "--out", res],
                               capture_output=True, text=True)
            if p.returncode != 0 or not os.path.exists(res):
                failed += 1
                msg = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["(no output)"]
                print(f"FAIL {name}: verify-case exit {p.returncode}: {msg[0]}")
                continue
            out = compare(res, os.path.join(args.cases_dir, name + ".expected.safetensors"),
                          args.atol, args.rtol, args.elementwise, args.out_tol, args.grad_tol)
            if len(out) > 1:
                failed += 1
                print(f"FAIL {name}: " + "; ".join(out))
            elif args.verbose:
                print(f"ok   {name}: {out[0]}")
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
