#!/usr/bin/env python3
"""Generate PyTorch golden verification cases for rnnkit (DESIGN.md section 4).

How to run (from the repository root; needs torch, safetensors, numpy):

    /work/venv/bin/python tools/gen_fixtures.py            # (re)writes tests/fixtures/cases/
    /work/venv/bin/python tools/gen_fixtures.py --check    # regenerate in memory, compare with files

The virtualenv used by the project's maintainers is made with
    python3 -m venv /work/venv && /work/venv/bin/pip install torch safetensors numpy

What it writes, for every case NAME (see `build_case_list` for the full coverage matrix):

  tests/fixtures/cases/NAME.safetensors           the CASE file (input of `rnnkit verify-case`)
      metadata: cell, input_size, hidden_size, num_layers, proj_size, bidirectional, bias
      tensors : every parameter of the stack under PyTorch's state_dict names
                (weight_ih_l{k}[_reverse], weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}),
                input [T,B,I], optional h0 [L*D,B,H_out], optional c0 [L*D,B,H] (LSTM),
                optional lengths [B] (i64), grad_output [T,B,D*H_out], grad_h_n [L*D,B,H_out],
                grad_c_n [L*D,B,H] (LSTM only)
  tests/fixtures/cases/NAME.expected.safetensors  PyTorch's answer, with the RESULT names:
                output, h_n, c_n (LSTM), grad_input, grad_h0 / grad_c0 (only when h0 / c0 are
                in the case), grad.<param name> for every parameter
  tests/fixtures/cases/manifest.json              one entry per case: config, shapes, and the
                largest |float32 torch - float64 torch| seen for that case (a tolerance hint)
  tests/fixtures/cases/README.md                  how the files were made

Semantics: loss = sum(output*grad_output) + sum(h_n*grad_h_n) + sum(c_n*grad_c_n).  Missing h0/c0
mean zeros.  Variable lengths go through pack_padded_sequence(enforce_sorted=False) and
pad_packed_sequence(total_length=T), so padded outputs are zero (and grad_output at padded positions,
random like everywhere else, contributes nothing).

Precision: every parameter and input is first drawn as a float32 value (numpy, seeded per case from
BASE_SEED and the case name), stored as such in the CASE file, and then the PyTorch computation runs in
float64 on exactly those values (module.double()).  Results are rounded to float32 for storage, so the
expected files are the correctly rounded answer, not torch's float32 answer.

Determinism: the per-case seed is BASE_SEED + crc32(name); nothing depends on torch's RNG, the order
of the cases, or the machine.  Re-running produces identical tensor bytes (the expected files also carry
the torch version in their metadata).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from safetensors.numpy import load_file as np_load_file

BASE_SEED = 20240611
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "cases")

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


@dataclass(frozen=True)
class Case:
    name: str
    cell: str
    num_layers: int = 1
    bidirectional: bool = False
    h0: bool = False  # give h0 in the case file
    c0: bool = False  # give c0 (LSTM only)
    varlen: bool = False  # give a lengths tensor
    T: int = 5
    B: int = 3
    input_size: int = 4
    hidden_size: int = 5
    proj_size: int = 0
    bias: bool = True
    lengths: tuple | None = None  # explicit lengths (else random, unsorted, one == T)
    saturate: bool = False  # scale weights/inputs so pre-activations reach about +-50
    note: str = ""


def _tag(c: Case) -> str:
    parts = [c.cell, f"l{c.num_layers}", "bi" if c.bidirectional else "uni"]
    if c.proj_size:
        parts.insert(1, f"proj{c.proj_size}")
    if c.h0 and (c.c0 or c.cell != "lstm"):
        parts.append("h0")
    elif c.h0:
        parts.append("h0only")
    elif c.c0:
        parts.append("c0only")
    parts.append("varlen" if c.varlen else "eqlen")
    if not c.bias:
        parts.append("nobias")
    return "_".join(parts)


def build_case_list() -> list[Case]:
    cases: list[Case] = []

    def add(c: Case):
        cases.append(c)

    # 1. Full matrix: cell x layers x direction x initial state x lengths.
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        for L in (1, 2):
            for bi in (False, True):
                for h0 in (False, True):
                    for varlen in (False, True):
                        c = Case("", cell, L, bi, h0=h0, c0=(h0 and cell == "lstm"), varlen=varlen)
                        add(replace(c, name=_tag(c)))
    # 2. LSTM with projection: layers x direction x initial state x lengths.
    for L in (1, 2):
        for bi in (False, True):
            for h0 in (False, True):
                for varlen in (False, True):
                    c = Case("", "lstm", L, bi, h0=h0, c0=h0, varlen=varlen, proj_size=3)
                    add(replace(c, name=_tag(c)))
    # 3. bias = false, a few combos per cell.
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        for (L, bi, h0, varlen) in ((1, False, False, False), (2, True, True, True)):
            c = Case("", cell, L, bi, h0=h0, c0=(h0 and cell == "lstm"), varlen=varlen, bias=False)
            add(replace(c, name=_tag(c)))
    c = Case("", "lstm", 2, True, h0=True, c0=True, varlen=True, proj_size=2, bias=False)
    add(replace(c, name=_tag(c)))
    # 4. LSTM with only one of h0 / c0 given (the other means zeros).
    for (h0, c0) in ((True, False), (False, True)):
        for L, bi, varlen in ((1, False, False), (2, True, True)):
            c = Case("", "lstm", L, bi, h0=h0, c0=c0, varlen=varlen)
            add(replace(c, name=_tag(c)))
    c = Case("", "lstm", 2, True, h0=True, c0=False, varlen=True, proj_size=3)
    add(replace(c, name=_tag(c)))

    # 5. Edge cases.
    def edge(prefix: str, c: Case, note: str):
        add(replace(c, name=f"edge_{prefix}_{_tag(c)}", note=note))

    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        edge("t1", Case("", cell, 2, True, h0=True, c0=(cell == "lstm"), T=1), "T = 1")
    edge("t1", Case("", "lstm", 1, False, T=1, varlen=True, lengths=(1, 1, 1)), "T = 1 with lengths")
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        edge("b1", Case("", cell, 2, True, h0=True, c0=(cell == "lstm"), B=1), "B = 1")
    edge("b1", Case("", "gru", 1, True, B=1, varlen=True, lengths=(5,)), "B = 1 with lengths = T")
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        edge("h1", Case("", cell, 2, True, h0=True, c0=(cell == "lstm"), varlen=True, hidden_size=1),
             "hidden_size = 1")
    edge("h2p1", Case("", "lstm", 2, True, h0=True, c0=True, varlen=True, hidden_size=2, proj_size=1),
         "hidden_size = 2, proj_size = 1")
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        edge("i1", Case("", cell, 2, True, varlen=True, input_size=1), "input_size = 1")
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        edge("len1", Case("", cell, 2, True, h0=True, c0=(cell == "lstm"), varlen=True, T=4,
                          lengths=(1, 1, 1)), "all lengths = 1 (T = 4)")
    edge("lenmix", Case("", "lstm", 1, True, varlen=True, T=6, B=5, lengths=(2, 6, 1, 6, 4)),
         "lengths with ties, not sorted")
    edge("sorted", Case("", "gru", 1, True, varlen=True, T=6, B=4, lengths=(6, 4, 3, 1)),
         "lengths already sorted descending")
    edge("wide", Case("", "lstm", 1, True, h0=True, c0=True, varlen=True, T=7, B=6, input_size=9,
                      hidden_size=11, proj_size=4), "larger, odd sizes")
    edge("wide", Case("", "gru", 2, True, h0=True, varlen=True, T=7, B=6, input_size=9, hidden_size=11),
         "larger, odd sizes")
    # Saturation: pre-activations reach about +-50; results must stay finite.
    for cell in ("lstm", "gru"):
        for L, bi, h0, varlen in ((1, False, True, False), (2, True, True, True)):
            edge("sat", Case("", cell, L, bi, h0=h0, c0=(h0 and cell == "lstm"), varlen=varlen,
                             saturate=True), "saturated gates (pre-activations about +-50)")
    edge("sat", Case("", "rnn_tanh", 2, True, h0=True, varlen=True, saturate=True),
         "saturated tanh (pre-activations about +-50)")

    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate case names: {sorted(dup)}"
    return cases


# --------------------------------------------------------------------------------------------------

def make_module(c: Case) -> torch.nn.Module:
    kw = dict(num_layers=c.num_layers, bias=c.bias, bidirectional=c.bidirectional)
    if c.cell == "lstm":
        return torch.nn.LSTM(c.input_size, c.hidden_size, proj_size=c.proj_size, **kw)
    if c.cell == "gru":
        return torch.nn.GRU(c.input_size, c.hidden_size, **kw)
    return torch.nn.RNN(c.input_size, c.hidden_size, nonlinearity=c.cell[4:], **kw)


def f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def draw_case(c: Case, module: torch.nn.Module):
    """All values of the CASE file, as float32 numpy arrays (lengths int64)."""
    rng = np.random.default_rng(BASE_SEED + zlib.crc32(c.name.encode()))
    D = 2 if c.bidirectional else 1
    H, P = c.hidden_size, c.proj_size
    Hout = P if P else H
    t: dict[str, np.ndarray] = {}
    # Parameters: PyTorch's default init U(-1/sqrt(H), 1/sqrt(H)); for saturation cases U(-4, 4).
    k = 4.0 if c.saturate else 1.0 / math.sqrt(H)
    for name, p in module.named_parameters():
        t[name] = f32(rng.uniform(-k, k, size=tuple(p.shape)))
    x = rng.standard_normal((c.T, c.B, c.input_size))
    if c.saturate:
        # Scale the input so the largest layer-0 input pre-activation is about 45 (the recurrent
        # part and the biases push it to about +-50).
        pre = np.einsum("tbi,gi->tbg", x, t["weight_ih_l0"].astype(np.float64))
        x *= 45.0 / np.abs(pre).max()
    t["input"] = f32(x)
    if c.h0:
        t["h0"] = f32(rng.uniform(-0.9, 0.9, size=(c.num_layers * D, c.B, Hout)))
    if c.c0:
        t["c0"] = f32(rng.standard_normal((c.num_layers * D, c.B, H)))
    if c.varlen:
        if c.lengths is not None:
            lengths = np.array(c.lengths, dtype=np.int64)
        else:
            lengths = rng.integers(1, c.T + 1, size=c.B)
            lengths[rng.integers(0, c.B)] = c.T
            if c.B > 1 and np.all(np.diff(lengths) <= 0):  # make sure it is not sorted descending
                lengths = lengths[::-1].copy()
                if np.all(np.diff(lengths) <= 0):  # all equal: shorten the first
                    lengths[0] = max(1, c.T - 2)
        assert lengths.shape == (c.B,) and lengths.min() >= 1 and lengths.max() <= c.T
        t["lengths"] = np.ascontiguousarray(lengths.astype(np.int64))
    t["grad_output"] = f32(rng.standard_normal((c.T, c.B, D * Hout)))
    t["grad_h_n"] = f32(rng.standard_normal((c.num_layers * D, c.B, Hout)))
    if c.cell == "lstm":
        t["grad_c_n"] = f32(rng.standard_normal((c.num_layers * D, c.B, H)))
    return t


def run_torch(c: Case, module: torch.nn.Module, t: dict, dtype: torch.dtype) -> dict:
    """Forward + backward in `dtype`; returns RESULT tensors (float64 numpy)."""
    module = module.to(dtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(t[name]).to(dtype))
    module.zero_grad(set_to_none=True)
    D = 2 if c.bidirectional else 1
    H, P = c.hidden_size, c.proj_size
    Hout = P if P else H
    x = torch.from_numpy(t["input"]).to(dtype).requires_grad_(True)
    leaves = {"grad_input": x}
    h0 = c0 = None
    if "h0" in t:
        h0 = torch.from_numpy(t["h0"]).to(dtype).requires_grad_(True)
        leaves["grad_h0"] = h0
    if "c0" in t:
        c0 = torch.from_numpy(t["c0"]).to(dtype).requires_grad_(True)
        leaves["grad_c0"] = c0
    if c.cell == "lstm":
        if h0 is None and c0 is None:
            hx = None
        else:
            zh = torch.zeros(c.num_layers * D, c.B, Hout, dtype=dtype)
            zc = torch.zeros(c.num_layers * D, c.B, H, dtype=dtype)
            hx = (h0 if h0 is not None else zh, c0 if c0 is not None else zc)
    else:
        hx = h0
    if "lengths" in t:
        lengths = torch.from_numpy(t["lengths"])
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out_p, state = module(packed, hx)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, total_length=c.T)
    else:
        out, state = module(x, hx)
    if c.cell == "lstm":
        h_n, c_n = state
    else:
        h_n, c_n = state, None
    loss = (out * torch.from_numpy(t["grad_output"]).to(dtype)).sum()
    loss = loss + (h_n * torch.from_numpy(t["grad_h_n"]).to(dtype)).sum()
    if c_n is not None:
        loss = loss + (c_n * torch.from_numpy(t["grad_c_n"]).to(dtype)).sum()
    loss.backward()
    r = {"output": out, "h_n": h_n}
    if c_n is not None:
        r["c_n"] = c_n
    for k, v in leaves.items():
        r[k] = v.grad
    for name, p in module.named_parameters():
        r["grad." + name] = p.grad if p.grad is not None else torch.zeros_like(p)
    out = {}
    for k, v in r.items():
        assert v is not None, k
        out[k] = v.detach().to(torch.float64).numpy().copy()
    # Shapes per the contract.
    assert out["output"].shape == (c.T, c.B, D * Hout)
    assert out["h_n"].shape == (c.num_layers * D, c.B, Hout)
    return out


def max_preact(c: Case, t: dict) -> float:
    """Largest |W_ih x + b_ih + b_hh| of layer 0 (input part only), for the README."""
    pre = np.einsum("tbi,gi->tbg", t["input"].astype(np.float64), t["weight_ih_l0"].astype(np.float64))
    if c.bias:
        pre = pre + t["bias_ih_l0"] + t["bias_hh_l0"]
    return float(np.abs(pre).max())


def metadata(c: Case) -> dict:
    return {
        "cell": c.cell,
        "input_size": str(c.input_size),
        "hidden_size": str(c.hidden_size),
        "num_layers": str(c.num_layers),
        "proj_size": str(c.proj_size),
        "bidirectional": "true" if c.bidirectional else "false",
        "bias": "true" if c.bias else "false",
    }


def save_file(tensors: dict, path: str, metadata: dict) -> None:
    """Write a safetensors file byte-for-byte reproducibly.

    The safetensors library writes the metadata map in random (hash) order, so two runs give
    different bytes; this writer sorts everything (metadata keys, tensor names), so regenerating
    the fixtures leaves git with nothing to commit.  The result is read back with the safetensors
    library to make sure it is valid."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = tensors[name]
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<")))
        raw = a.tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(len(hb).to_bytes(8, "little"))
        f.write(hb)
        for raw in blobs:
            f.write(raw)
    back = np_load_file(path + ".tmp")
    assert set(back) == set(tensors) and all(np.array_equal(back[k], tensors[k]) for k in tensors)
    os.replace(path + ".tmp", path)


def to_torch_tensors(d: dict) -> dict:
    """float32 (lengths int64) numpy arrays for storage."""
    return {k: (np.ascontiguousarray(v) if v.dtype == np.int64 else f32(v)) for k, v in d.items()}


def generate(c: Case):
    module = make_module(c)
    t = draw_case(c, module)
    ref = run_torch(c, module, t, torch.float64)
    lo = run_torch(c, make_module(c), t, torch.float32)
    for k, v in ref.items():
        if not np.all(np.isfinite(v)):
            raise RuntimeError(f"{c.name}: non-finite values in {k}")
        # Padded outputs must be exactly zero.
    if "lengths" in t:
        for b, n in enumerate(t["lengths"]):
            assert np.all(ref["output"][n:, b] == 0.0)
    err32 = max(float(np.abs(lo[k] - ref[k]).max()) for k in ref)
    scale = max(float(np.abs(v).max()) for v in ref.values())
    expected = {k: f32(v) for k, v in ref.items()}
    info = {
        "name": c.name,
        **metadata(c),
        "T": c.T,
        "B": c.B,
        "h0": "h0" in t,
        "c0": "c0" in t,
        "lengths": t["lengths"].tolist() if "lengths" in t else None,
        "max_abs_layer0_input_preactivation": round(max_preact(c, t), 4),
        "max_abs_result": float(f"{scale:.6g}"),
        "max_abs_err_torch_f32_vs_f64": float(f"{err32:.3g}"),
        "note": c.note,
    }
    return t, expected, info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default tests/fixtures/cases)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; regenerate in memory and compare with the files on disk")
    ap.add_argument("--list", action="store_true", help="list case names and exit")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    cases = build_case_list()
    if args.list:
        for c in cases:
            print(c.name)
        return 0
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    bad = 0
    for c in cases:
        t, expected, info = generate(c)
        manifest.append(info)
        case_path = os.path.join(args.out, c.name + ".safetensors")
        exp_path = os.path.join(args.out, c.name + ".expected.safetensors")
        if args.check:
            for path, want in ((case_path, t), (exp_path, expected)):
                have = np_load_file(path)
                if set(have) != set(want) or any(
                        have[k].dtype != want[k].dtype or not np.array_equal(have[k], want[k]) for k in want):
                    print(f"MISMATCH {path}")
                    bad += 1
            continue
        save_file(to_torch_tensors(t), case_path, metadata=metadata(c))
        exp_meta = {"case": c.name, "reference": f"torch {torch.__version__} float64, rounded to float32"}
        save_file(to_torch_tensors(expected), exp_path, metadata=exp_meta)
    if args.check:
        print(f"{len(cases)} cases checked, {bad} mismatches")
        return 1 if bad else 0
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"generator": "tools/gen_fixtures.py", "base_seed": BASE_SEED,
                   "torch_version": torch.__version__, "cases": manifest}, f, indent=1)
        f.write("\n")
    write_readme(args.out, manifest)
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    worst = max(manifest, key=lambda m: m["max_abs_err_torch_f32_vs_f64"])
    print(f"wrote {len(cases)} cases ({2 * len(cases)} safetensors files, {total / 1024:.1f} KiB in all) "
          f"to {os.path.relpath(args.out, REPO_ROOT)}")
    print(f"largest |torch f32 - torch f64| over all result tensors: "
          f"{worst['max_abs_err_torch_f32_vs_f64']:.3g} ({worst['name']})")
    return 0


def write_readme(out_dir: str, manifest: list):
    n = len(manifest)
    normal = [m for m in manifest if "sat" not in m["name"]]
    sat = [m for m in manifest if "sat" in m["name"]]
    err_n = max(m["max_abs_err_torch_f32_vs_f64"] for m in normal)
    err_s = max(m["max_abs_err_torch_f32_vs_f64"] for m in sat)
    pre_n = max(m["max_abs_layer0_input_preactivation"] for m in normal)
    pre_s = (min(m["max_abs_layer0_input_preactivation"] for m in sat),
             max(m["max_abs_layer0_input_preactivation"] for m in sat))
    lines = f"""# Verification cases (PyTorch golden fixtures)

Generated by `tools/gen_fixtures.py` (run `/work/venv/bin/python tools/gen_fixtures.py` from the
repository root; `--check` regenerates in memory and compares with these files). Do not edit by hand.

- torch {torch.__version__} (CPU), numpy {np.__version__}; base seed {BASE_SEED}, per-case seed
  `base + crc32(name)` (numpy `default_rng`); nothing depends on torch's RNG.
- {n} cases. Each `NAME.safetensors` is a CASE file and `NAME.expected.safetensors` is PyTorch's
  RESULT for it, both exactly per DESIGN.md section 4. (A test that globs `*.safetensors` must skip
  `*.expected.safetensors`.) `manifest.json` lists every case with its configuration, lengths and
  the tolerance hint below.
- Parameters and inputs were drawn as float32 values (PyTorch's default init U(-1/sqrt(H), 1/sqrt(H))
  for weights, N(0,1) inputs, h0 ~ U(-0.9,0.9), c0 and all upstream gradients ~ N(0,1)); PyTorch then
  ran in **float64** on exactly those values and the results were rounded to float32. So the expected
  values are the correctly rounded answer; a float32 implementation differs from them by its own
  rounding only.
- Variable lengths use `pack_padded_sequence(enforce_sorted=False)` and
  `pad_packed_sequence(total_length=T)`: padded outputs are exactly 0. `grad_output` is random at the
  padded positions too (it must contribute nothing). Lengths are unsorted, in 1..=T, at least one = T,
  except in the `edge_len1_*` cases (all lengths 1) and `edge_sorted_*`.
- Loss = sum(output*grad_output) + sum(h_n*grad_h_n) + sum(c_n*grad_c_n). `grad_h0`/`grad_c0` are in
  the expected file only when `h0`/`c0` are in the case (`*_h0only_*`/`*_c0only_*`: LSTM with one of
  them, the other means zeros).

Naming: `CELL[_projP]_lL_(uni|bi)[_h0|_h0only|_c0only]_(eqlen|varlen)[_nobias]`, `edge_KIND_...`:
`t1` T=1, `b1` B=1, `h1` hidden 1, `h2p1` hidden 2 with proj 1, `i1` input 1, `len1` all lengths 1,
`lenmix` ties in lengths, `sorted` lengths already sorted, `wide` larger odd sizes, `sat` saturated
gates. Default shapes: T=5, B=3, input 4, hidden 5, proj 3.

Coverage: every cell (lstm, gru, rnn_tanh, rnn_relu) x layers (1, 2) x (uni, bi) x (with h0 [and c0],
without) x (equal lengths, variable lengths); LSTM with proj_size 3 over the same 16 combinations;
bias=false for each cell (two combos each, plus LSTM+proj); LSTM with only h0 or only c0; edge cases
as above.

Tolerance hint: the largest |torch float32 - torch float64| over all result tensors of a case is in
`manifest.json` (`max_abs_err_torch_f32_vs_f64`): at most {err_n:.2g} for the ordinary cases
(largest layer-0 input pre-activation {pre_n:.2f}), and {err_s:.2g} for the saturated cases (`edge_sat_*`:
weights U(-4,4), input scaled so the layer-0 input pre-activations reach {pre_s[0]:.0f}..{pre_s[1]:.0f};
output values are O(1) but some weight gradients are large, so compare those relatively).
PyTorch's own float32 results pass both the scale-relative test (max|diff| / max|want| per tensor
<= 1e-5 for outputs, 1e-4 for gradients) and the element-wise one (|diff| <= 1e-5 + 1e-4*|want|) on
every case. Closest to the bound: `edge_h1_rnn_relu_l2_bi_h0_varlen`, whose one-element
`grad.bias_hh_l0` (-0.0029) is a sum with cancellation: float32 gets it to 7.5e-5 scale-relative.

Check rnnkit against all cases: `/work/venv/bin/python tools/compare_result.py --all` (runs
`target/release/rnnkit verify-case CASE --out RESULT` per case and compares; `--filter`, `-v`,
`--elementwise`, `--out-tol`, `--grad-tol`, `--atol`, `--rtol`).
"""
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(lines)


if __name__ == "__main__":
    sys.exit(main())
