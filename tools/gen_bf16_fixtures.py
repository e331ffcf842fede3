#!/usr/bin/env python3
"""bfloat16 parity cases: PyTorch's autocast answer beside the exact one (issue 20).

How to run (from the repository root; needs torch, safetensors, numpy):

    /work/venv/bin/python tools/gen_bf16_fixtures.py    # (re)writes tests/fixtures/bf16/

For every case NAME it writes, in tests/fixtures/bf16/:
  NAME.safetensors           the CASE file, as tools/gen_fixtures.py writes it (same drawing)
  NAME.expected.safetensors  the exact answer: the computation in float64 on the case's values
  NAME.autocast.safetensors  PyTorch float32 modules run under
                             torch.autocast("cpu", dtype=torch.bfloat16), results cast to float32
  manifest.json              per case: config and the scale-relative error of autocast against the
                             exact answer, per tensor

tests/parity_bf16.rs runs each case in rnnkit with precision bf16 and checks that its error against
the exact answer is of the same size as autocast's (and that the two answers are close). Autocast is
not one fixed arithmetic (oneDNN's fused LSTM keeps h in bf16; packed sequences and GRU go through
matmuls cast one by one), so "as close to exact as PyTorch's bf16" is the contract, not bitwise
agreement.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_fixtures as gf  # noqa: E402

OUT = os.path.join(gf.REPO_ROOT, "tests", "fixtures", "bf16")


def case_list() -> list:
    cases = []
    for cell in ["lstm", "gru", "rnn_tanh", "rnn_relu"]:
        for bi in [False, True]:
            for varlen in [False, True]:
                c = gf.Case(name="", cell=cell, num_layers=2, bidirectional=bi, varlen=varlen,
                            h0=True, c0=cell == "lstm", T=10, B=5, input_size=16, hidden_size=32)
                cases.append(c)
    cases.append(gf.Case(name="", cell="lstm", num_layers=2, proj_size=8, T=10, B=5,
                         input_size=16, hidden_size=32, varlen=True))
    cases.append(gf.Case(name="", cell="lstm", num_layers=1, T=20, B=4,
                         input_size=64, hidden_size=96, note="k = 96: longer dot products"))
    out = []
    for c in cases:
        tag = gf._tag(c)
        size = f"h{c.hidden_size}_t{c.T}"
        out.append(gf.replace(c, name=f"bf16_{tag}_{size}"))
    return out


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-6))


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    manifest = []
    for c in case_list():
        module = gf.make_module(c)
        t = gf.draw_case(c, module)
        exact = gf.run_torch(c, module, t, torch.float64)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = gf.run_torch(c, gf.make_module(c), t, torch.float32)
        meta = gf.metadata(c)
        gf.save_file(gf.to_torch_tensors(t), os.path.join(OUT, c.name + ".safetensors"), meta)
        src = {"torch_version": torch.__version__, "generator": "tools/gen_bf16_fixtures.py"}
        gf.save_file({k: gf.f32(v) for k, v in exact.items()},
                     os.path.join(OUT, c.name + ".expected.safetensors"), src)
        gf.save_file({k: gf.f32(v) for k, v in auto.items()},
                     os.path.join(OUT, c.name + ".autocast.safetensors"),
                     {**src, "autocast": "cpu bfloat16"})
        errs = {k: float(f"{rel(auto[k], exact[k]):.3g}") for k in sorted(exact)}
        manifest.append({"name": c.name, **meta, "T": c.T, "B": c.B, "note": c.note,
                         "autocast_rel_err": errs})
        print(f"{c.name}: autocast worst rel err {max(errs.values()):.3g}")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/gen_bf16_fixtures.py", "torch_version": torch.__version__,
                   "cases": manifest}, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
