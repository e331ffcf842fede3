#!/usr/bin/env python3
"""rnnkit's first word-LM training step against PyTorch's in float64 and float32, from the same
weights on the same batch: which side's gradient (and gradient norm) is the more exact one.

    rnnkit train --config configs/wikitext2-small.toml --set train.max_steps=0 --set output.dir=/tmp/s0
    rnnkit train --config configs/wikitext2-small.toml --set train.max_steps=1 --set output.dir=/tmp/s1
    /work/venv/bin/python tools/first_step_check.py --data ../shared/data/wikitext-2 \
        --before /tmp/s0/wikitext2-small --after /tmp/s1/wikitext2-small

`--before` holds the initial weights and the vocabulary, `--after` the weights after one
unclipped SGD step (the small preset's first gradient norm, about 0.17, is below its clip 0.25),
so rnnkit's gradient is (before - after) / lr. Prints, per parameter, the relative error of
rnnkit's gradient and of PyTorch's float32 gradient against PyTorch's float64 one, and the global
norm as float64, as rnnkit reports it (metrics/steps.csv) and as `clip_grad_norm_` returns it.
Not used by `cargo test`.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
import torch_word_lm as lm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--before", type=Path, required=True, help="rnnkit run dir after train.max_steps=0")
    ap.add_argument("--after", type=Path, required=True, help="rnnkit run dir after train.max_steps=1")
    ap.add_argument("--preset", choices=lm.PRESETS, default="small")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = lm.PRESETS[args.preset]
    vocab = json.loads((args.before / "text.json").read_text())["vocab"]["tokens"]
    train = lm.batchify(lm.Corpus(args.data, vocab).train, p["batch"])
    x, y = train[0 : p["bptt"]], train[1 : p["bptt"] + 1]
    w0, w1 = load_file(args.before / "model.safetensors"), load_file(args.after / "model.safetensors")

    grads, norms = {}, {}
    for dtype in (torch.float64, torch.float32):
        model = lm.RNNModel(len(vocab), p).to(dtype)
        model.load_state_dict({k: w0[k].to(dtype) for k in model.state_dict()})
        out, _ = model(x, None)
        nn.functional.cross_entropy(out.view(-1, len(vocab)), y.reshape(-1)).backward()
        grads[dtype] = {k: w.grad.double() for k, w in model.named_parameters()}
        norms[dtype] = nn.utils.clip_grad_norm_(model.parameters(), float("inf")).item()
    exact = grads[torch.float64]
    rnnkit = {k: (w0[k].double() - w1[k].double()) / p["lr"] for k in exact}

    print(f"{'parameter':22s} {'rnnkit rel. error':>18s} {'torch f32 rel. error':>21s}")
    for k, g in exact.items():
        rel = lambda other: ((other - g).norm() / g.norm()).item()  # noqa: E731
        print(f"{k:22s} {rel(rnnkit[k]):18.2e} {rel(grads[torch.float32][k]):21.2e}")
    with open(args.after / "metrics/steps.csv") as f:
        reported = float(next(csv.DictReader(f))["grad_norm"])
    true = torch.cat([g.flatten() for g in exact.values()]).norm().item()
    print(f"global gradient norm: float64 {true:.7f} | rnnkit {reported:.7f} ({reported / true - 1:+.1e}) | "
          f"clip_grad_norm_ float32 {norms[torch.float32]:.7f} ({norms[torch.float32] / true - 1:+.1e})")
    print("(rnnkit's per-parameter error includes the float32 rounding of before - after)")


if __name__ == "__main__":
    main()
