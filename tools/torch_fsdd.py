#!/usr/bin/env python3
"""PyTorch side by side for the spoken-digit classifier (issue 21).

Trains, in PyTorch, the model of `configs/fsdd-digits.toml` on exactly the split an rnnkit run
used (its `split.tsv`: split, label, speaker, path per line), with the same features computed by
torchaudio, and prints the test accuracy and wall time to compare with rnnkit's `metrics.json`:

    rnnkit train --config configs/fsdd-digits.toml --set train.seed=0 --set output.name=fsdd0
    /work/venv/bin/python tools/torch_fsdd.py --split runs/fsdd0/split.tsv --seed 0 [--json-out F]

Same pipeline and settings as the rnnkit config:
  features  torchaudio.compliance.kaldi.mfcc(num_mel_bins=40, num_ceps=13, dither=0, 8 kHz)
            with torchaudio.functional.compute_deltas twice (delta, delta-delta): 39 per frame
  normalize per-dimension mean and standard deviation of the training frames (floor 1e-3)
  model     nn.LSTM(39, 128, num_layers=2) over pack_padded_sequence, the mean of the top
            layer's outputs over each clip's valid frames, nn.Linear(128, 10)
  training  cross-entropy, Adam lr 2e-3, batches of 32 shuffled each epoch, clip_grad_norm_ at
            1.0, up to 30 epochs, early stopping on validation loss with patience 5, keeping the
            best weights; PyTorch's default initialization; 2 threads
The model and augmentation settings are read from the run's `config.toml` beside `split.tsv`
(so PyTorch trains the pipeline that run trained); flags override them:
  --pooling attention   model.pooling = "attention": u = tanh(W h + c), e = v·u, softmax over
                        the valid frames, the weighted sum of h (rnnkit's AttentionPool)
  --speeds 0.9,1.0,1.1  data.perturb.speeds: each epoch every training clip is replayed at a
                        factor drawn from the list (torchaudio.functional.resample from
                        rate·speed to rate) and featurized afresh
  --noise-prob P --snr LO,HI
                        data.perturb.noise_prob / noise_snr_db: white Gaussian noise at an SNR
                        drawn uniformly in dB, with probability P per clip and epoch
The normalization statistics stay those of the unperturbed training clips, as in rnnkit. The wall time printed covers everything after `import torch`: reading the
files, features, training and the test.
"""
import argparse
import json
import os
import time
import tomllib
import wave

import numpy as np
import torch
import torch.nn as nn
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
import torchaudio.transforms as T
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def read_pcm16(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2, path
        rate, ch = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        data = data.reshape(-1, ch).mean(axis=1)
    return torch.from_numpy(data.copy()), rate


def features(path):
    x, rate = read_pcm16(path)
    return features_of(x, rate)


def features_of(x, rate):
    if x.numel() < int(0.025 * rate):
        x = torch.nn.functional.pad(x, (0, int(0.025 * rate) - x.numel()))
    m = kaldi.mfcc(x.unsqueeze(0), num_mel_bins=40, num_ceps=13, dither=0.0, sample_frequency=rate)
    d1 = AF.compute_deltas(m.T.unsqueeze(0)).squeeze(0).T
    d2 = AF.compute_deltas(d1.T.unsqueeze(0)).squeeze(0).T
    return torch.cat([m, d1, d2], dim=1)  # [frames, 39]


_RESAMPLERS = {}


def resampler(orig, new):
    # One torchaudio Resample per speed: its sinc kernel is built once, as torchaudio's docs
    # advise for repeated resampling with the same rates.
    key = (orig, new)
    if key not in _RESAMPLERS:
        _RESAMPLERS[key] = T.Resample(orig, new)
    return _RESAMPLERS[key]


def perturb(x, rate, speeds, noise_prob, snr, gen):
    if speeds:
        s = speeds[int(torch.randint(len(speeds), (1,), generator=gen))]
        if s != 1.0:
            x = resampler(int(round(rate * s)), rate)(x)
    if noise_prob > 0 and float(torch.rand(1, generator=gen)) < noise_prob:
        power = x.pow(2).mean()
        if power > 0:
            db = snr[0] + (snr[1] - snr[0]) * float(torch.rand(1, generator=gen))
            n = torch.randn(x.shape, generator=gen)
            x = x + n * torch.sqrt(power / n.pow(2).mean() / 10 ** (db / 10))
    return x


class DigitModel(nn.Module):
    def __init__(self, dim, classes, hidden=128, layers=2, pooling="mean"):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, num_layers=layers)
        self.pooling = pooling
        if pooling == "attention":
            self.proj = nn.Linear(hidden, hidden)
            self.score = nn.Linear(hidden, 1, bias=False)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x, lengths):  # x [T, B, F]
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, lens = pad_packed_sequence(out)  # [T, B, H], zeros past each length
        if self.pooling == "attention":
            e = self.score(torch.tanh(self.proj(out))).squeeze(2)  # [T, B]
            valid = torch.arange(out.shape[0]).unsqueeze(1) < lens.unsqueeze(0)
            alpha = torch.softmax(e.masked_fill(~valid, float("-inf")), dim=0)
            pooled = (alpha.unsqueeze(2) * out).sum(0)
        else:
            pooled = out.sum(0) / lens.unsqueeze(1).to(out.dtype)
        return self.head(pooled)


def batches(clips, labels, idx, size):
    for i in range(0, len(idx), size):
        part = idx[i:i + size]
        xs = [clips[k] for k in part]
        lengths = torch.tensor([x.shape[0] for x in xs])
        x = nn.utils.rnn.pad_sequence(xs)  # [T, B, F]
        yield x, lengths, torch.tensor([labels[k] for k in part])


def evaluate(model, clips, labels, idx, size=256):
    model.eval()
    loss, right, n = 0.0, 0, 0
    with torch.no_grad():
        for x, lengths, y in batches(clips, labels, idx, size):
            logits = model(x, lengths)
            loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            right += (logits.argmax(1) == y).sum().item()
            n += len(y)
    return loss / n, right / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", required=True, help="an rnnkit audio run's split.tsv")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--pooling", choices=["mean", "attention"], default=None)
    ap.add_argument("--speeds", default=None, help="e.g. 0.9,1.0,1.1")
    ap.add_argument("--noise-prob", type=float, default=None)
    ap.add_argument("--snr", default=None, help="LO,HI in dB")
    args = ap.parse_args()
    run_config = os.path.join(os.path.dirname(os.path.abspath(args.split)), "config.toml")
    cfg = tomllib.load(open(run_config, "rb")) if os.path.exists(run_config) else {}
    pert = cfg.get("data", {}).get("perturb", {})
    model_cfg = cfg.get("model", {})
    if model_cfg.get("cell", "lstm") != "lstm" or model_cfg.get("bidirectional", False):
        raise SystemExit("torch_fsdd.py mirrors unidirectional LSTM runs only")
    if pert.get("noise_dir"):
        raise SystemExit("torch_fsdd.py mirrors white noise only (the run has data.perturb.noise_dir)")
    pooling = args.pooling or model_cfg.get("pooling", "mean")
    speeds = ([float(v) for v in args.speeds.split(",") if v] if args.speeds is not None
              else [float(v) for v in pert.get("speeds", [])])
    noise_prob = args.noise_prob if args.noise_prob is not None else float(pert.get("noise_prob", 0.0))
    snr = ([float(v) for v in args.snr.split(",")] if args.snr is not None
           else [float(v) for v in pert.get("noise_snr_db", [5.0, 20.0])])
    hidden = int(model_cfg.get("hidden_size", 128))
    layers = int(model_cfg.get("num_layers", 2))
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rows = [line.rstrip("\n").split("\t") for line in open(args.split)][1:]
    classes = sorted({r[1] for r in rows}, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c))
    cid = {c: i for i, c in enumerate(classes)}
    base = os.path.dirname(os.path.abspath(args.split))
    paths = [r[3] if os.path.isabs(r[3]) or os.path.exists(r[3]) else os.path.join(base, r[3]) for r in rows]
    waves = [read_pcm16(p) for p in paths]
    clips = [features_of(x, r) for x, r in waves]
    labels = [cid[r[1]] for r in rows]
    parts = {s: [k for k, r in enumerate(rows) if r[0] == s] for s in ("train", "valid", "test")}
    train_frames = torch.cat([clips[k] for k in parts["train"]])
    mean, std = train_frames.mean(0), train_frames.std(0, unbiased=False).clamp_min(1e-3)
    clips = [(c - mean) / std for c in clips]
    t_features = time.perf_counter() - t0

    perturbing = any(v != 1.0 for v in speeds) or noise_prob > 0
    model = DigitModel(clips[0].shape[1], len(classes), hidden, layers, pooling)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(args.seed)
    best, best_state, since, epochs = float("inf"), None, 0, 0
    for epoch in range(args.epochs):
        model.train()
        order = [parts["train"][i] for i in torch.randperm(len(parts["train"]), generator=gen).tolist()]
        epoch_clips = clips
        if perturbing:
            epoch_clips = list(clips)
            with torch.no_grad():
                for k in parts["train"]:
                    x, r = waves[k]
                    epoch_clips[k] = (features_of(perturb(x, r, speeds, noise_prob, snr, gen), r) - mean) / std
        for x, lengths, y in batches(epoch_clips, labels, order, 32):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x, lengths), y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        val_loss, _ = evaluate(model, clips, labels, parts["valid"])
        epochs = epoch + 1
        print(f"epoch {epochs} | val loss {val_loss:.4f}", flush=True)
        if val_loss < best:
            best, since = val_loss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= args.patience:
                break
    model.load_state_dict(best_state)
    test_loss, acc = evaluate(model, clips, labels, parts["test"])
    wall = time.perf_counter() - t0
    result = {"accuracy": acc, "test_loss": test_loss, "best_val": best, "epochs": epochs,
              "wall_s": wall, "features_s": t_features, "seed": args.seed, "threads": args.threads,
              "torch": torch.__version__, "test_recordings": len(parts["test"]),
              "pooling": pooling, "speeds": speeds, "noise_prob": noise_prob, "snr": snr}
    print(json.dumps(result))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
