#!/usr/bin/env python3
"""Load a model trained by `rnnkit train` into PyTorch and check it computes what rnnkit does.

    rnnkit evaluate --model RUN_DIR --outputs /tmp/outputs.safetensors
    python tools/torch_load_run.py RUN_DIR /tmp/outputs.safetensors

Builds the `torch.nn` model that `RUN_DIR/config.toml` describes (the language model, the
classifier or the forecaster, written the way the PyTorch examples write them), loads
`RUN_DIR/model.safetensors` with `load_state_dict(strict=True)` -- so every parameter name and
shape must match, none missing, none extra -- runs the inputs rnnkit wrote with `--outputs`,
and compares with rnnkit's outputs. Exits 1 when the largest difference exceeds --tol (1e-4).

Needs: torch, safetensors (Python 3.11+ for tomllib). Not used by `cargo test`.
"""

import argparse
import sys
import tomllib
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def recurrent(model_cfg: dict, input_size: int) -> nn.Module:
    """The `nn.LSTM` / `nn.GRU` / `nn.RNN` of a `[model]` section (time-major, PyTorch's default)."""
    cell = model_cfg.get("cell", "lstm")
    kwargs = dict(
        input_size=input_size,
        hidden_size=model_cfg["hidden_size"],
        num_layers=model_cfg.get("num_layers", 1),
        dropout=model_cfg.get("dropout", 0.0),
        bidirectional=model_cfg.get("bidirectional", False),
    )
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    if cell == "gru":
        return nn.GRU(**kwargs)
    if cell in ("rnn_tanh", "rnn_relu"):
        return nn.RNN(nonlinearity=cell.removeprefix("rnn_"), **kwargs)
    raise SystemExit(f"unknown cell {cell!r}")


class LanguageModel(nn.Module):
    """embedding -> stack -> decoder, as pytorch/examples word_language_model."""

    def __init__(self, cfg: dict, vocab: int):
        super().__init__()
        m = cfg["model"]
        self.embedding = nn.Embedding(vocab, m["embedding_size"])
        self.rnn = recurrent(m, m["embedding_size"])
        self.decoder = nn.Linear(m["hidden_size"], vocab)
        if m.get("tie_weights", False):
            self.decoder.weight = self.embedding.weight

    def forward(self, ids):  # [T, B] -> [T, B, V]
        out, _ = self.rnn(self.embedding(ids))
        return self.decoder(out)


def last_step(out, lengths, h_n, bidirectional: bool):
    """The top layer's final state of each direction (rnnkit's `pooling = "last"`)."""
    h = h_n[0] if isinstance(h_n, tuple) else h_n  # LSTM gives (h, c)
    if bidirectional:
        return torch.cat([h[-2], h[-1]], dim=1)
    return h[-1]


class Classifier(nn.Module):
    """embedding (padding 0) -> packed stack -> pooling -> linear head."""

    def __init__(self, cfg: dict, vocab: int, classes: int):
        super().__init__()
        m = cfg["model"]
        self.pooling = m.get("pooling", "last")
        self.bidirectional = m.get("bidirectional", False)
        self.embedding = nn.Embedding(vocab, m["embedding_size"], padding_idx=0)
        self.rnn = recurrent(m, m["embedding_size"])
        width = m["hidden_size"] * (2 if self.bidirectional else 1)
        self.head = nn.Linear(width, classes)

    def forward(self, ids, lengths):  # [T, B], [B] -> [B, C]
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), enforce_sorted=False)
        out, h_n = self.rnn(packed)
        padded, _ = pad_packed_sequence(out, total_length=ids.shape[0])  # [T, B, D]
        valid = (torch.arange(ids.shape[0])[:, None] < lengths[None, :]).unsqueeze(-1)
        if self.pooling == "last":
            pooled = last_step(padded, lengths, h_n, self.bidirectional)
        elif self.pooling == "mean":
            pooled = (padded * valid).sum(0) / lengths[:, None].to(padded.dtype)
        elif self.pooling == "max":
            pooled = padded.masked_fill(~valid, float("-inf")).max(0).values
        else:
            raise SystemExit(f"unknown pooling {self.pooling!r}")
        return self.head(pooled)


class Forecaster(nn.Module):
    """stack -> last step's output -> linear to horizon x targets."""

    def __init__(self, cfg: dict, features: int):
        super().__init__()
        d = cfg["data"]
        self.horizon, self.targets = d["horizon"], len(d["target_columns"])
        self.rnn = recurrent(cfg["model"], features)
        self.head = nn.Linear(cfg["model"]["hidden_size"], self.horizon * self.targets)

    def forward(self, x):  # [L, B, F] -> [B, H, K]
        out, _ = self.rnn(x)
        return self.head(out[-1]).view(x.shape[1], self.horizon, self.targets)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("outputs", type=Path, help="the file `rnnkit evaluate --outputs` wrote")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    cfg = tomllib.loads((args.run_dir / "config.toml").read_text())
    task = cfg.get("task", "lm")
    state = load_file(args.run_dir / "model.safetensors")
    got = load_file(args.outputs)

    if task == "lm":
        model = LanguageModel(cfg, state["embedding.weight"].shape[0])
        if cfg["model"].get("tie_weights", False):
            state.setdefault("decoder.weight", state["embedding.weight"])
        inputs, want = (got["input_ids"],), got["logits"]
    elif task == "classify":
        model = Classifier(cfg, state["embedding.weight"].shape[0], state["head.weight"].shape[0])
        inputs, want = (got["input_ids"], got["lengths"]), got["logits"]
    elif task == "forecast":
        model = Forecaster(cfg, state["rnn.weight_ih_l0"].shape[1])
        inputs, want = (got["inputs"],), got["forecasts"]
    else:
        raise SystemExit(f"unknown task {task!r}")

    model.load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        ours = model(*inputs)
    diff = (ours - want).abs().max().item()
    scale = want.abs().max().item()
    ok = diff <= args.tol
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in got.items())
    print(
        f"{task}: strict load_state_dict of {len(state)} tensors OK; {shapes}; "
        f"max |torch - rnnkit| = {diff:.3e} (outputs up to {scale:.3g}); "
        f"{'within' if ok else 'ABOVE'} tolerance {args.tol:g}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
