#!/usr/bin/env python3
"""Golden run of a tiny language model in PyTorch, for rnnkit's training-step test (issue 3).

Run from the repository root:  /work/venv/bin/python tools/gen_lm_golden.py

Writes tests/fixtures/lm/tiny_lm.safetensors holding
  - the initial weights under the names of PyTorch's word_language_model example
    (embedding.weight, rnn.weight_ih_l0, ..., decoder.weight, decoder.bias), float32;
  - `stream` [N] int64: the token stream (seeded numpy draw with some structure so the loss moves);
  - `losses` [STEPS] float32: the mean cross-entropy of each training step;
  - `final.<name>`: every weight after the last step;
and the setup in the metadata: vocab, embed, hidden, layers, batch, bptt, lr, clip, steps.

The training loop is PyTorch's word_language_model example: batchify the stream into `batch`
columns, walk it in chunks of `bptt` steps, carry the hidden state across chunks (detached),
loss = mean cross-entropy over the chunk, clip_grad_norm_(clip), then plain SGD p -= lr * grad.
Computation in float64 on float32-initialized weights; stored values rounded to float32.
"""

import os

import numpy as np
import torch
from safetensors.numpy import save_file

SEED = 20241124
VOCAB, EMBED, HIDDEN, LAYERS = 17, 8, 12, 2
BATCH, BPTT, LR, CLIP, STEPS = 4, 10, 1.0, 5.0, 10
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "lm", "tiny_lm.safetensors")


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, EMBED)
        self.rnn = torch.nn.LSTM(EMBED, HIDDEN, LAYERS)
        self.decoder = torch.nn.Linear(HIDDEN, VOCAB)

    def forward(self, x, state):
        out, state = self.rnn(self.embedding(x), state)
        return self.decoder(out), state


def main():
    rng = np.random.default_rng(SEED)
    # A stream with structure: a noisy walk, so the model has something to learn.
    n = BATCH * (STEPS * BPTT + 1) + 3
    steps = rng.choice([1, 1, 1, 2, -1], size=n)
    stream = np.cumsum(steps) % VOCAB
    torch.manual_seed(SEED)
    model = Model()
    init = {k: v.detach().numpy().astype(np.float32).copy() for k, v in model.state_dict().items()}
    model = model.double()
    rows = len(stream) // BATCH
    data = torch.tensor(stream[: rows * BATCH].reshape(BATCH, rows).T.copy(), dtype=torch.long)
    state = None
    losses = []
    for step in range(STEPS):
        i = step * BPTT
        x, y = data[i : i + BPTT], data[i + 1 : i + 1 + BPTT]
        if state is not None:
            state = tuple(s.detach() for s in state)
        model.zero_grad()
        logits, state = model(x, state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        with torch.no_grad():
            for p in model.parameters():
                p -= LR * p.grad
        losses.append(loss.item())
    tensors = dict(init)
    tensors["stream"] = stream.astype(np.int64)
    tensors["losses"] = np.array(losses, dtype=np.float32)
    for k, v in model.state_dict().items():
        tensors[f"final.{k}"] = v.detach().numpy().astype(np.float32)
    meta = dict(vocab=VOCAB, embed=EMBED, hidden=HIDDEN, layers=LAYERS, batch=BATCH, bptt=BPTT,
                lr=LR, clip=CLIP, steps=STEPS, seed=SEED, torch=torch.__version__)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata={k: str(v) for k, v in meta.items()})
    print("losses:", " ".join(f"{v:.6f}" for v in losses))
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
