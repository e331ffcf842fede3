#!/usr/bin/env python3
"""PyTorch reference for the Tiny Shakespeare character-level LM reproduction (issue 3).

What it is
    The PyTorch side of the side-by-side comparison required by issue 3: it trains, in PyTorch,
    exactly the model and pipeline that `rnnkit` trains, and reports the validation loss (nats per
    character) and the wall time.  The rnnkit run must use the SAME settings (data file, split,
    batch, bptt, model sizes, dropout, optimizer, learning rate, clipping, epochs, threads) for the
    two numbers to be comparable.  Acceptance: rnnkit's validation loss within 0.02 of this
    script's, in less wall time.

How to run (from the repository root, CPU, 2 threads by default)

    /work/venv/bin/python tools/torch_char_lm.py --epochs N
    /work/venv/bin/python tools/torch_char_lm.py --epochs N --json-out torch_lm.json --save torch_lm.safetensors
    /work/venv/bin/python tools/torch_char_lm.py --time-steps 5      # time full-size chunks, estimate s/epoch
    /work/venv/bin/python tools/torch_char_lm.py --epochs 7 --bf16   # mixed precision (autocast bfloat16)
    # PyTorch at its best (its CPU performance guide): preload jemalloc (Debian's libjemalloc2)
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /work/venv/bin/python tools/torch_char_lm.py --epochs 7
    # tiny smoke run (seconds):
    /work/venv/bin/python tools/torch_char_lm.py --max-chars 20000 --hidden 32 --embed 8 --batch 8 --bptt 20 --epochs 2

Exact pipeline
    Data      --data (default data/tinyshakespeare/input.txt in the repository, a byte-identical
              copy of ../shared/data/tinyshakespeare/input.txt), read as UTF-8 text.  With --max-chars N only the first N characters are used
              (before everything below).  Vocabulary = sorted list of the distinct characters of
              the whole (possibly truncated) text (65 for Tiny Shakespeare); id = index in that list.
    Split     cut = int(0.9 * len(text)); train = ids[:cut], validation = ids[cut:].
    Layout    "batchify" of PyTorch's word_language_model example: a split's id stream is cut into
              B columns (B = --batch, default 64) of N = len // B rows; column b holds
              stream[b*N:(b+1)*N]; the remainder is dropped.  Tensor [N, B], time-major.
    Training  rows are walked in chunks of bptt (--bptt, default 100) steps: for i in
              range(0, N-1, bptt), k = min(bptt, N-1-i), inputs rows i..i+k-1, targets rows
              i+1..i+k (the last chunk is shorter).  The LSTM state (h, c) is carried from chunk to
              chunk and detached; it is reset to zeros at the start of every epoch.
              loss = mean cross-entropy over the chunk's k*B tokens; Adam(lr=--lr, default 2e-3,
              betas (0.9, 0.999), eps 1e-8, no weight decay); clip_grad_norm_(all params, 5.0)
              before every step.  Train loss reported = token-weighted mean over the epoch.
    Validation the validation split in the same layout with the same B, same chunking, state
              carried from zeros, model.eval() (no dropout), torch.no_grad();
              val loss = total summed NLL / total counted tokens (nats per character);
              bits/char = val loss / ln 2.  Run after every epoch.
    Model     names as PyTorch's word_language_model, so state_dicts are interchangeable:
                embedding = nn.Embedding(V, 64)
                rnn       = nn.LSTM(64, 512, num_layers=2, dropout=0.2)   # dropout between layers only
                decoder   = nn.Linear(512, V)
              no other dropout, PyTorch default initialization, float32 (with --bf16 the forward
              passes and the loss of training and validation run under
              torch.autocast("cpu", dtype=torch.bfloat16): bfloat16 matrix products, float32
              master weights and optimizer),
              torch.manual_seed(--seed, default 0) right before the model is built.
    Threads   torch.set_num_threads(--threads, default 2), torch.set_num_interop_threads(1).

Output
    One line per epoch: epoch, train loss, validation loss (nats/char) and bits/char, elapsed wall
    time.  At the end one JSON line:
      {"val_loss", "train_loss", "epochs", "wall_s", "tokens_per_s", "threads", "torch", "precision",
       "allocator"}
    val_loss / train_loss are from the last epoch.  wall_s = wall time of the whole training loop
    (all epochs, training and per-epoch validation included; data loading, model construction and
    saving excluded).  tokens_per_s = training tokens (targets) processed / time spent in training
    steps (validation excluded).  --json-out PATH also writes that JSON to a file; --save PATH
    writes the final state_dict with safetensors.torch.save_file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_DATA = os.path.join(REPO, "data", "tinyshakespeare", "input.txt")


class CharLM(nn.Module):
    """Embedding -> multi-layer LSTM -> Linear, parameter names as word_language_model."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden, vocab)
        self.layers, self.hidden = layers, hidden

    def init_state(self, batch: int):
        z = torch.zeros(self.layers, batch, self.hidden)
        return (z, z.clone())

    def forward(self, x, state):
        out, state = self.rnn(self.embedding(x), state)
        return self.decoder(out), state


def allocator() -> str:
    """The allocator this process runs with: jemalloc/tcmalloc when preloaded, else glibc."""
    pre = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc"):
        if name in pre:
            return name
    return "glibc"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch reference: char-level LSTM LM on Tiny Shakespeare",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", default=DEFAULT_DATA, help="text file (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--bptt", type=int, default=100)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2, help="between LSTM layers only")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--bf16", action="store_true",
                    help="mixed precision: forward passes under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--max-chars", type=int, default=None, help="use only the first N characters")
    ap.add_argument("--save", default=None, help="write the final state_dict here (safetensors)")
    ap.add_argument("--json-out", default=None, help="also write the final JSON line here")
    ap.add_argument("--time-steps", type=int, default=0,
                    help="only time this many training chunks (after 1 warm-up) and estimate s/epoch")
    return ap.parse_args(argv)


def load(path: str, max_chars: int | None):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if max_chars is not None:
        text = text[:max_chars]
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = int(0.9 * len(ids))
    return vocab, ids[:cut], ids[cut:]


def batchify(stream: torch.Tensor, batch: int) -> torch.Tensor:
    """[len] -> [N, B] with column b = stream[b*N:(b+1)*N]; remainder dropped."""
    n = stream.numel() // batch
    return stream[: n * batch].view(batch, n).t().contiguous()


def chunks(rows: int, bptt: int):
    for i in range(0, rows - 1, bptt):
        yield i, min(bptt, rows - 1 - i)


def detach(state):
    return tuple(s.detach() for s in state)


def autocast(bf16: bool):
    """bfloat16 autocast on the CPU when asked for, else a no-op context."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def train_step(model, opt, params, data, i, k, state, clip, bf16=False):
    x, y = data[i : i + k], data[i + 1 : i + 1 + k]
    state = detach(state)
    opt.zero_grad(set_to_none=True)
    with autocast(bf16):
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
    state = tuple(s.float() for s in state)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    return loss.item(), state


@torch.no_grad()
def evaluate(model, data, bptt, bf16=False):
    model.eval()
    state = model.init_state(data.size(1))
    total, count = 0.0, 0
    for i, k in chunks(data.size(0), bptt):
        x, y = data[i : i + k], data[i + 1 : i + 1 + k]
        with autocast(bf16):
            logits, state = model(x, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        state = tuple(s.float() for s in state)
        total += loss.item()
        count += y.numel()
    model.train()
    return total / count


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    vocab, train_ids, val_ids = load(args.data, args.max_chars)
    train = batchify(train_ids, args.batch)
    val = batchify(val_ids, args.batch)
    if train.size(0) < 2 or val.size(0) < 2:
        sys.exit("data too small for this batch size")

    torch.manual_seed(args.seed)
    model = CharLM(len(vocab), args.embed, args.hidden, args.layers, args.dropout)
    model.train()
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    n_params = sum(p.numel() for p in params)
    n_chunks = len(list(chunks(train.size(0), args.bptt)))
    print(f"data {args.data}: {len(train_ids) + len(val_ids)} chars, vocab {len(vocab)}, "
          f"train {len(train_ids)} -> [{train.size(0)} x {train.size(1)}], "
          f"val {len(val_ids)} -> [{val.size(0)} x {val.size(1)}]", flush=True)
    print(f"model embed {args.embed} lstm {args.layers}x{args.hidden} dropout {args.dropout}, "
          f"{n_params} params; batch {args.batch} bptt {args.bptt} ({n_chunks} chunks/epoch) "
          f"Adam lr {args.lr} clip {args.clip}; threads {args.threads}; torch {torch.__version__}; "
          f"{'bf16 autocast' if args.bf16 else 'float32'}; allocator {allocator()}",
          flush=True)

    if args.time_steps > 0:
        state = model.init_state(args.batch)
        times = []
        for j, (i, k) in enumerate(chunks(train.size(0), args.bptt)):
            if j > args.time_steps:
                break
            t0 = time.perf_counter()
            loss, state = train_step(model, opt, params, train, i, k, state, args.clip, args.bf16)
            dt = time.perf_counter() - t0
            if j > 0:  # first chunk is warm-up
                times.append(dt)
            print(f"chunk {j} ({k} steps): {dt:.3f} s  loss {loss:.4f}", flush=True)
        med = statistics.median(times)
        t0 = time.perf_counter()
        vloss = evaluate(model, val, args.bptt, args.bf16)
        tv = time.perf_counter() - t0
        est = med * n_chunks + tv
        print(json.dumps({"s_per_chunk_median": round(med, 4), "s_per_chunk": [round(t, 4) for t in times],
                          "chunks_per_epoch": n_chunks, "val_s": round(tv, 2),
                          "est_s_per_epoch": round(est, 1), "epochs_in_20min": int(1200 // est),
                          "val_loss_after": round(vloss, 4), "threads": args.threads}), flush=True)
        return

    t_start = time.perf_counter()
    train_time, train_tokens = 0.0, 0
    train_loss = val_loss = float("nan")
    for epoch in range(1, args.epochs + 1):
        state = model.init_state(args.batch)
        total, count = 0.0, 0
        t0 = time.perf_counter()
        for i, k in chunks(train.size(0), args.bptt):
            loss, state = train_step(model, opt, params, train, i, k, state, args.clip, args.bf16)
            total += loss * k * args.batch
            count += k * args.batch
        train_time += time.perf_counter() - t0
        train_tokens += count
        train_loss = total / count
        val_loss = evaluate(model, val, args.bptt, args.bf16)
        elapsed = time.perf_counter() - t_start
        print(f"epoch {epoch:3d} | train loss {train_loss:.4f} | val loss {val_loss:.4f} nats/char "
              f"({val_loss / math.log(2):.4f} bits/char) | elapsed {elapsed:.1f} s", flush=True)
    wall = time.perf_counter() - t_start

    result = {"val_loss": val_loss, "train_loss": train_loss, "epochs": args.epochs,
              "wall_s": round(wall, 3), "tokens_per_s": round(train_tokens / train_time, 1),
              "threads": args.threads, "torch": torch.__version__,
              "precision": "bf16" if args.bf16 else "f32", "allocator": allocator()}
    line = json.dumps(result)
    print(line, flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    if args.save:
        from safetensors.torch import save_file
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, args.save)


if __name__ == "__main__":
    main()
