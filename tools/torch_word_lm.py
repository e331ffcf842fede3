#!/usr/bin/env python3
"""The PyTorch side of the word-level language-model comparison (issue 7): Zaremba et al.'s
small and medium PTB models, written the way pytorch/examples word_language_model writes them
(Corpus with <eos> per line, batchify, repackaged hidden state, clip_grad_norm_, plain SGD),
with the schedule and initialization of `configs/ptb-*.toml`.

    python tools/torch_word_lm.py --data ../shared/data/ptb --preset small --threads 2 \
        [--epochs N] [--json out.json] [--checkpoint run.pt [--resume]] [--init-from RUN_DIR]

`--data ../shared/data/wikitext-2` trains the same model on WikiText-2. With `--checkpoint`,
the state (weights, best weights, log, RNG, wall time so far) is saved after every epoch and
every `--checkpoint-every` batches within one (with the position, the carried hidden state and
the epoch's running totals), and `--resume` continues from it exactly where it was saved: long
runs (medium, WikiText-2) can span several sittings, and a killed sitting loses only the batches
since its last save, which do not count in the wall time either. The file is replaced
atomically, so a kill during a save leaves the previous one.

`--init-from RUN_DIR` starts from an rnnkit run directory's `model.safetensors` (PyTorch's
names) and uses its vocabulary (`text.json`, with rnnkit's `<pad>` and `<bos>`), so that both
sides train the very same model from the very same weights and the comparison is not between
two random initializations. rnnkit writes its initial weights with
`rnnkit train --config F --set train.max_steps=0 --set output.dir=D`.

Prints one line per epoch (train/valid perplexity, seconds) and, at the end, the test
perplexity of the best-validation weights and the wall time, like `rnnkit train`. Not used by
`cargo test`.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

PRESETS = {
    # Zaremba et al. (2014), Table 1; TensorFlow's ptb_word_lm.py SmallConfig / MediumConfig.
    # Their loss is summed over the BPTT steps, ours (and PyTorch's) is the mean over tokens:
    # their lr 1 and clip 5 are lr = bptt and clip = 5 / bptt here.
    "small": dict(hidden=200, layers=2, init=0.1, lr=20.0, decay=0.5, after=4, epochs=13,
                  batch=20, bptt=20, clip=0.25, dropout=0.0),
    "medium": dict(hidden=650, layers=2, init=0.05, lr=35.0, decay=0.8, after=6, epochs=39,
                   batch=20, bptt=35, clip=5.0 / 35, dropout=0.5),
}


class Corpus:
    """Words split on whitespace, <eos> at each line end, vocabulary from the training file."""

    def __init__(self, root: Path, vocab: list[str] | None = None):
        # PTB's files are ptb.{train,valid,test}.txt, WikiText-2's {train,valid,test}.txt.
        prefix = "ptb." if (root / "ptb.train.txt").exists() else ""
        # A given vocabulary (rnnkit's, for --init-from) fixes every index; else it grows in
        # order of first appearance, as the PyTorch example's does.
        self.index = {w: i for i, w in enumerate(vocab)} if vocab else {}
        self.train = self.tokenize(root / f"{prefix}train.txt", grow=not vocab)
        self.valid = self.tokenize(root / f"{prefix}valid.txt", grow=False)
        self.test = self.tokenize(root / f"{prefix}test.txt", grow=False)

    def tokenize(self, path: Path, grow: bool) -> torch.Tensor:
        ids = []
        for line in path.read_text().splitlines():
            for w in line.split() + ["<eos>"]:
                if w not in self.index:
                    if not grow:
                        w = "<unk>"
                    else:
                        self.index[w] = len(self.index)
                ids.append(self.index[w])
        return torch.tensor(ids, dtype=torch.long)


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    n = data.size(0) // bsz
    return data[: n * bsz].view(bsz, -1).t().contiguous()  # [N, B]


class RNNModel(nn.Module):
    def __init__(self, vocab: int, p: dict):
        super().__init__()
        self.drop = nn.Dropout(p["dropout"])
        self.embedding = nn.Embedding(vocab, p["hidden"])
        self.rnn = nn.LSTM(p["hidden"], p["hidden"], p["layers"], dropout=p["dropout"])
        self.decoder = nn.Linear(p["hidden"], vocab)
        for w in self.parameters():
            nn.init.uniform_(w, -p["init"], p["init"])

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.embedding(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def repackage(h):
    return tuple(v.detach() for v in h)


def evaluate(model, data, bptt, bsz, vocab):
    model.eval()
    total, count = 0.0, 0
    hidden = None
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, bptt):
            seq = min(bptt, data.size(0) - 1 - i)
            x, y = data[i : i + seq], data[i + 1 : i + 1 + seq]
            out, hidden = model(x, hidden)
            total += nn.functional.cross_entropy(out.view(-1, vocab), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ptb"))
    ap.add_argument("--preset", choices=PRESETS, default="small")
    ap.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--checkpoint", type=Path, default=None, help="save the state after each epoch")
    ap.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    ap.add_argument("--checkpoint-every", type=int, default=1000,
                    help="batches between checkpoints within an epoch (0: only at epoch ends)")
    ap.add_argument("--print-steps", type=int, default=0, help="print the first N training losses")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="an rnnkit run directory: start from its model.safetensors with its "
                         "vocabulary (text.json), e.g. the initial weights of `rnnkit train "
                         "--set train.max_steps=0`, so both sides train the very same model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    p = PRESETS[args.preset]
    epochs = args.epochs or p["epochs"]

    rnnkit_vocab = None
    if args.init_from:
        rnnkit_vocab = json.loads((args.init_from / "text.json").read_text())["vocab"]["tokens"]
    corpus = Corpus(args.data, rnnkit_vocab)
    vocab = len(corpus.index)
    train = batchify(corpus.train, p["batch"])
    valid = batchify(corpus.valid, 10)
    test = batchify(corpus.test, 10)
    model = RNNModel(vocab, p)
    if args.init_from:
        from safetensors.torch import load_file  # only this option needs the package

        weights = load_file(args.init_from / "model.safetensors")
        model.load_state_dict({k: weights[k] for k in model.state_dict()})
        print(f"initial weights and vocabulary from {args.init_from}")
    print(f"{args.preset}: vocabulary {vocab}, train tokens {corpus.train.numel()}, torch {torch.__version__}, {args.threads} threads")

    started = time.time()
    best, best_state, log, first, pos = math.inf, None, [], 1, None
    if args.resume:
        ck = torch.load(args.checkpoint, weights_only=False)
        model.load_state_dict(ck["model"])
        best, best_state, log = ck["best"], ck["best_state"], ck["log"]
        torch.set_rng_state(ck["rng"])
        started -= ck["wall_s"]
        first, pos = len(log) + 1, ck.get("pos")
        where = f", batch {pos['i'] // p['bptt']} of epoch {pos['epoch']}" if pos else ""
        print(f"resumed after epoch {len(log)}{where} ({ck['wall_s']:.0f} s so far)")

    def save(pos):
        state = dict(model=model.state_dict(), best=best, best_state=best_state, log=log,
                     rng=torch.get_rng_state(), wall_s=time.time() - started, pos=pos)
        tmp = args.checkpoint.with_name(args.checkpoint.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, args.checkpoint)

    for epoch in range(first, epochs + 1):
        lr = p["lr"] * p["decay"] ** max(0, epoch - p["after"])
        model.train()
        # A mid-epoch checkpoint carries the position, the hidden state and the running totals.
        start, hidden, total, count, before = 0, None, 0.0, 0, 0.0
        if pos is not None and pos["epoch"] == epoch:
            start, hidden, total, count, before = pos["i"], pos["hidden"], pos["total"], pos["count"], pos["seconds"]
        pos = None
        t0 = time.time() - before
        last = train.size(0) - 1
        for i in range(start, last, p["bptt"]):
            seq = min(p["bptt"], last - i)
            x, y = train[i : i + seq], train[i + 1 : i + 1 + seq]
            hidden = repackage(hidden) if hidden is not None else None
            model.zero_grad()
            out, hidden = model(x, hidden)
            loss = nn.functional.cross_entropy(out.view(-1, vocab), y.reshape(-1))
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), p["clip"])
            with torch.no_grad():
                for w in model.parameters():
                    w.add_(w.grad, alpha=-lr)
            total += loss.item() * y.numel()
            if epoch == 1 and i // p["bptt"] < args.print_steps:
                # To set beside rnnkit's metrics/steps.csv: from the same weights (--init-from)
                # the first two losses agree to 1e-6; the clipped steps then split (first_step_check.py).
                print(f"step {i // p['bptt'] + 1} loss {loss.item():.6f} grad norm {norm.item():.6g}", flush=True)
            count += y.numel()
            done = i // p["bptt"] + 1
            if args.checkpoint and args.checkpoint_every and done % args.checkpoint_every == 0 and i + seq < last:
                save(dict(epoch=epoch, i=i + seq, hidden=repackage(hidden), total=total, count=count,
                          seconds=time.time() - t0))
        seconds = time.time() - t0
        val = evaluate(model, valid, p["bptt"], 10, vocab)
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        log.append(dict(epoch=epoch, lr=lr, train_ppl=math.exp(total / count), valid_ppl=math.exp(val),
                        train_seconds=seconds, tokens_per_s=count / seconds))
        print(f"epoch {epoch:3d} | lr {lr:.4f} | train ppl {math.exp(total / count):8.2f} | "
              f"valid ppl {math.exp(val):8.2f} | {seconds:.1f} s ({count / seconds:.0f} tok/s)", flush=True)
        if args.checkpoint:
            save(None)
    model.load_state_dict(best_state)
    test_loss = evaluate(model, test, p["bptt"], 10, vocab)
    wall = time.time() - started
    print(f"test ppl {math.exp(test_loss):.2f} | best valid ppl {math.exp(best):.2f} | wall {wall:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(dict(preset=args.preset, epochs=log, test_ppl=math.exp(test_loss),
                                             best_valid_ppl=math.exp(best), wall_s=wall,
                                             threads=args.threads, torch=torch.__version__), indent=1) + "\n")


if __name__ == "__main__":
    main()
