#!/usr/bin/env python3
"""PyTorch reference for the names classification example (issue 4).

Trains, in PyTorch, the model of `crates/rnnkit/examples/names_classify.rs` on exactly its split
(read from the `split.tsv` that the rnnkit example writes: `split<TAB>language<TAB>name` per line)
and prints the test accuracy and macro-F1 to compare with rnnkit's `metrics.json`.

    cargo run --release -p rnnkit --example names_classify          # writes runs/names/split.tsv
    /work/venv/bin/python tools/torch_names.py --split runs/names/split.tsv [--json-out F]

Same model and settings as the rnnkit example: character vocabulary of the training names with
<pad>=0 and <unk>=1 (unseen characters in valid/test map to <unk>); nn.Embedding(V, 64,
padding_idx=0) -> nn.LSTM(64, 128) over pack_padded_sequence -> the last valid hidden state ->
nn.Linear(128, 18); cross-entropy; Adam lr 2e-3; batch 64, shuffled each epoch; clip_grad_norm_
at 1.0; up to 30 epochs with early stopping on validation loss (patience 5), keeping the best
weights; PyTorch's default initialization; 2 threads. (rnnkit also buckets batches by length;
that changes which names share a batch, not the model or the objective.)
"""
import argparse
import json
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence


class NamesModel(nn.Module):
    def __init__(self, vocab, classes, embed=64, hidden=128):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.rnn = nn.LSTM(embed, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, ids, lengths):  # ids [T, B]
        e = self.embedding(ids)
        packed = pack_padded_sequence(e, lengths, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.head(h[-1])


def batches(data, size, shuffle, gen):
    order = torch.randperm(len(data), generator=gen).tolist() if shuffle else range(len(data))
    order = list(order)
    for i in range(0, len(order), size):
        items = [data[k] for k in order[i:i + size]]
        lengths = torch.tensor([len(x) for x, _ in items])
        ids = torch.zeros(int(lengths.max()), len(items), dtype=torch.long)
        for b, (x, _) in enumerate(items):
            ids[: len(x), b] = torch.tensor(x)
        yield ids, lengths, torch.tensor([y for _, y in items])


def evaluate(model, data):
    model.eval()
    loss, preds, ys = 0.0, [], []
    with torch.no_grad():
        for ids, lengths, y in batches(data, 512, False, None):
            z = model(ids, lengths)
            loss += nn.functional.cross_entropy(z, y, reduction="sum").item()
            preds += z.argmax(1).tolist()
            ys += y.tolist()
    model.train()
    return loss / len(data), preds, ys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="runs/names/split.tsv")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    rows = [line.rstrip("\n").split("\t") for line in open(args.split, encoding="utf-8")]
    classes = sorted({lang for _, lang, _ in rows})
    chars = sorted({c for split, _, name in rows if split == "train" for c in name})
    index = {c: i + 2 for i, c in enumerate(chars)}  # 0 <pad>, 1 <unk>
    data = {"train": [], "valid": [], "test": []}
    for split, lang, name in rows:
        data[split].append(([index.get(c, 1) for c in name], classes.index(lang)))

    model = NamesModel(len(chars) + 2, len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(args.seed)
    best, best_state, bad = None, None, 0
    start = time.time()
    for epoch in range(args.epochs):
        total, count = 0.0, 0
        for ids, lengths, y in batches(data["train"], 64, True, gen):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(ids, lengths), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(y)
            count += len(y)
        val, _, _ = evaluate(model, data["valid"])
        improved = best is None or val < best
        if improved:
            best, bad = val, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        print(f"epoch {epoch + 1:3d} | train loss {total / count:.4f} | val loss {val:.4f}"
              f"{' *' if improved else ''}", flush=True)
        if bad >= args.patience:
            break
    seconds = time.time() - start
    model.load_state_dict(best_state)
    test_loss, preds, ys = evaluate(model, data["test"])
    k = len(classes)
    counts = [[0] * k for _ in range(k)]
    for y, p in zip(ys, preds):
        counts[y][p] += 1
    accuracy = sum(counts[c][c] for c in range(k)) / len(ys)
    f1 = []
    for c in range(k):
        tp = counts[c][c]
        predicted = sum(counts[r][c] for r in range(k))
        actual = sum(counts[c])
        f1.append(0.0 if tp == 0 else 2 * tp / (predicted + actual))
    result = {"accuracy": accuracy, "macro_f1": sum(f1) / k, "test_loss": test_loss,
              "best_val": best, "epochs": epoch + 1, "seconds": seconds,
              "torch": torch.__version__}
    print(json.dumps(result))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
