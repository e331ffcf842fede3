#!/usr/bin/env python3
"""PyTorch peer of `rnnkit bench` (DESIGN.md section 5): same case names, shapes and measures.

Run from the repository root with a Python that has torch (CPU is enough):

    /work/venv/bin/python tools/bench_torch.py                       # all cases, table
    /work/venv/bin/python tools/bench_torch.py --json --threads 1    # one JSON line per case
    /work/venv/bin/python tools/bench_torch.py --case lstm-med --case gru-med
    /work/venv/bin/python tools/bench_torch.py --case lstm-small,lstm-stream --min-time 1
    /work/venv/bin/python tools/bench_torch.py --bf16 --case lstm-med,lstm-med-infer   # autocast bf16
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /work/venv/bin/python tools/bench_torch.py

JSON lines: {"case": NAME, "tokens_per_s": X, "ms_per_iter": Y}  (the contract of `rnnkit bench`),
plus "precision" ("f32", or "bf16" with --bf16) and "allocator" (see below).

Cases:
  lstm-small, lstm-med, lstm-large, gru-med, rnn-med   training: forward + backward of torch.nn.LSTM /
      GRU / RNN(tanh), time-major input [T,B,I] float32 with requires_grad, upstream gradient all
      ones for the output sequence, gradients for the input and every weight, no optimizer; inputs
      and weights made once, outside the timing.  tokens_per_s = T*B / seconds per iteration.
  lstm-stream      inference (torch.no_grad()), 2-layer LSTM 256/256, batch 1, one time step per
      iteration with the state carried over.  tokens_per_s = steps per second.
  ptb-small-train  one full training step of Zaremba et al.'s small LM: embedding 10000->200, 2-layer
      LSTM 200, linear 200->10000, batch 20, 20 steps, cross-entropy, state carried (detached),
      clip_grad_norm_(5), plain SGD lr 1; random token ids.  tokens_per_s = 400 / seconds per step.
  ptb-medium-train the same for the medium model: 650 wide, batch 20, 35 steps, nn.Dropout(0.5) on the
      embedding and the LSTM output and dropout=0.5 between the layers (the word_language_model
      example's model).  tokens_per_s = 700 / seconds per step.
  wikitext2-small-train the small model over WikiText-2's vocabulary: embedding 33278->200, decoder
      200->33278, otherwise as ptb-small-train.  tokens_per_s = 400 / seconds per step.
  lstm-packed      training as above of torch.nn.LSTM(256, 256, 2) on a packed batch of 32 sequences
      padded to 64 steps, lengths[b] = 16 + (29*b mod 49) for b = 0..31 (16..64, 1274 in all; the same
      formula as rnnkit's bench::packed_lengths): per iteration pack_padded_sequence(x [64,32,256],
      lengths, enforce_sorted=False), the LSTM on the packed sequence, pad_packed_sequence(
      total_length=64), backward with an upstream gradient of ones at the valid steps (t < lengths[b])
      and zeros at the padding.  tokens_per_s = sum(lengths) = 1274 real tokens / seconds per iteration.
  lstm-proj        training of torch.nn.LSTM(256, 256, 2, proj_size=64), batch 32, 64 steps, upstream
      ones [64,32,64].  tokens_per_s = T*B.
  bilstm-med       training of torch.nn.LSTM(256, 256, 2, bidirectional=True), batch 32, 64 steps,
      upstream ones [64,32,512].  tokens_per_s = T*B.
  lstm-med-dropout training of torch.nn.LSTM(256, 256, 2, dropout=0.3) in train mode (dropout between
      the layers is applied), batch 32, 64 steps.  tokens_per_s = T*B.
  lstm-small-infer, lstm-med-infer, lstm-large-infer, gru-med-infer, rnn-med-infer   inference: the
      module and shapes of the case without "-infer", module.eval(), forward only under
      torch.no_grad(), input without requires_grad, zero initial state.  tokens_per_s = T*B.

--bf16: every case runs its forward pass (and its loss, in the ptb cases) inside
torch.autocast("cpu", dtype=torch.bfloat16), the backward pass (and clipping and the optimizer)
outside it, as PyTorch's AMP recipe does; weights stay float32, no gradient scaling (bf16 does not
need it).  Without avx512_bf16 or amx_bf16 in /proc/cpuinfo it still runs, with a warning on stderr.

Allocator: stderr (and "allocator" in each JSON line) says which allocator the process runs with:
"jemalloc (LD_PRELOAD)" when LD_PRELOAD names jemalloc, "glibc, tuned thresholds" when
MALLOC_MMAP_THRESHOLD_ is set, else "glibc default".  tools/bench_compare.py picks one for torch.

Timing: warm-up iterations (at least --warmup and about 0.3 s), then timed iterations until both
--min-iters and --min-time are reached (capped by --max-iters); the reported time is the median
iteration.  Torch's threads: --threads N sets torch.set_num_threads(N) (intra-op) and, before any
parallel work, torch.set_num_interop_threads(1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

CASES = ["lstm-small", "lstm-med", "lstm-large", "gru-med", "rnn-med", "lstm-stream", "ptb-small-train",
         "ptb-medium-train", "wikitext2-small-train", "lstm-packed", "lstm-proj", "bilstm-med",
         "lstm-med-dropout", "lstm-small-infer", "lstm-med-infer", "lstm-large-infer", "gru-med-infer",
         "rnn-med-infer"]

# name: (vocabulary, hidden = embedding size, batch, steps, dropout): Zaremba et al. (2014) small and
# medium on Penn Treebank's 10,000 types, and small on WikiText-2's 33,278.
PTB = {"ptb-small-train": (10000, 200, 20, 20, 0.0), "ptb-medium-train": (10000, 650, 20, 35, 0.5),
       "wikitext2-small-train": (33278, 200, 20, 20, 0.0)}

# name: (module kind, layers, input, hidden, batch, steps[, extra keyword arguments of the module])
TRAIN = {
    "lstm-small": ("lstm", 1, 32, 64, 16, 50),
    "lstm-med": ("lstm", 2, 256, 256, 32, 64),
    "lstm-large": ("lstm", 1, 1024, 1024, 64, 32),
    "gru-med": ("gru", 2, 256, 256, 32, 64),
    "rnn-med": ("rnn_tanh", 2, 256, 256, 32, 64),
    "lstm-packed": ("lstm", 2, 256, 256, 32, 64),  # padded length 64; the real lengths: PACKED_LENGTHS
    "lstm-proj": ("lstm", 2, 256, 256, 32, 64, {"proj_size": 64}),
    "bilstm-med": ("lstm", 2, 256, 256, 32, 64, {"bidirectional": True}),
    "lstm-med-dropout": ("lstm", 2, 256, 256, 32, 64, {"dropout": 0.3}),
}

# inference case: the training case whose module and shapes it runs forward only
INFER = {n + "-infer": n for n in ("lstm-small", "lstm-med", "lstm-large", "gru-med", "rnn-med")}

# lstm-packed's sequence lengths (16..64, 1274 tokens); rnnkit's bench::packed_lengths is the same.
PACKED_LENGTHS = [16 + (b * 29) % 49 for b in range(32)]

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"  # Debian's libjemalloc2


def allocator_name(env=None) -> str:
    """The allocator a process with environment `env` (default: this one) runs with."""
    this = env is None
    env = os.environ if this else env
    if "jemalloc" in env.get("LD_PRELOAD", ""):
        if not this or jemalloc_mapped():
            return "jemalloc (LD_PRELOAD)"
        print("warning: LD_PRELOAD names jemalloc but it is not loaded (ld.so refused it?)", file=sys.stderr)
    if env.get("MALLOC_MMAP_THRESHOLD_"):
        return "glibc, tuned thresholds"
    return "glibc default"


def jemalloc_mapped() -> bool:
    """Whether a jemalloc library is mapped into this process (True where /proc cannot tell)."""
    try:
        with open("/proc/self/maps") as f:
            return "jemalloc" in f.read()
    except OSError:
        return True


def cpu_flags() -> set:
    """The CPU feature flags of /proc/cpuinfo's first processor (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch side of the rnnkit benchmark suite",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's own default)")
    ap.add_argument("--case", action="append", default=[],
                    help="case name; repeatable or comma-separated (default: all)")
    ap.add_argument("--json", action="store_true", help="one JSON line per case")
    ap.add_argument("--min-time", type=float, default=2.0, help="timed seconds per case (default 2)")
    ap.add_argument("--min-iters", type=int, default=10, help="timed iterations at least (default 10)")
    ap.add_argument("--max-iters", type=int, default=100000, help="timed iterations at most")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up iterations at least (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-onednn", action="store_true",
                    help="disable oneDNN (torch.backends.mkldnn) to see torch's native path; by default "
                         "torch picks oneDNN for float32 LSTM on CPU (not for GRU/RNN)")
    ap.add_argument("--bf16", action="store_true",
                    help="run the forward passes under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    args = ap.parse_args(argv)
    names = [n.strip() for c in args.case for n in c.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    args.cases = names or list(CASES)
    return args


def busy_cpus(interval: float = 0.3) -> float:
    """CPUs kept busy by other processes, sampled from /proc/stat (Linux; 0 elsewhere)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except (OSError, ValueError):
        return 0.0
    return (os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0))


def measure(step, args):
    """Run `step()` for warm-up, then time iterations; returns the list of per-iteration seconds."""
    clock = time.perf_counter
    t0 = clock()
    n = 0
    while n < args.warmup or (clock() - t0 < 0.3 and n < 1000):
        step()
        n += 1
    times = []
    start = clock()
    while len(times) < args.max_iters and (len(times) < args.min_iters or clock() - start < args.min_time):
        a = clock()
        step()
        times.append(clock() - a)
    return times


def make_module(torch, name):
    """The module of a TRAIN case, its input width and the width of its output sequence."""
    kind, layers, inp, hidden, batch, steps, *extra = TRAIN[name]
    kw = extra[0] if extra else {}
    if kind == "lstm":
        m = torch.nn.LSTM(inp, hidden, layers, **kw)
    elif kind == "gru":
        m = torch.nn.GRU(inp, hidden, layers, **kw)
    else:
        m = torch.nn.RNN(inp, hidden, layers, nonlinearity="tanh", **kw)
    out_width = (kw.get("proj_size") or hidden) * (2 if kw.get("bidirectional") else 1)
    return m, inp, out_width


def make_train(torch, name, autocast):
    _, _, _, _, batch, steps, *_ = TRAIN[name]
    m, inp, out_width = make_module(torch, name)
    m.train()
    x = torch.randn(steps, batch, inp, requires_grad=True)
    params = list(m.parameters())
    if name == "lstm-packed":
        lengths = torch.tensor(PACKED_LENGTHS, dtype=torch.int64)
        assert len(PACKED_LENGTHS) == batch and max(PACKED_LENGTHS) <= steps
        # the upstream gradient: ones at the valid steps, zeros at the padding
        valid = (torch.arange(steps)[:, None] < lengths[None, :]).float()  # [T, B]
        ones = valid[:, :, None].expand(steps, batch, out_width).contiguous()
        tokens = sum(PACKED_LENGTHS)
        pack, unpack = torch.nn.utils.rnn.pack_padded_sequence, torch.nn.utils.rnn.pad_packed_sequence

        def forward():
            out, _ = m(pack(x, lengths, enforce_sorted=False))
            return unpack(out, total_length=steps)[0]
    else:
        ones = torch.ones(steps, batch, out_width)
        tokens = steps * batch

        def forward():
            return m(x)[0]
    grad_of = {}  # the upstream gradient in the output's dtype (bfloat16 under autocast), made once

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        with autocast():
            out = forward()
        g = grad_of.get(out.dtype)
        if g is None:
            g = grad_of[out.dtype] = ones.to(out.dtype)
        out.backward(g)

    return step, tokens


def make_infer(torch, name, autocast):
    base = INFER[name]
    _, _, _, _, batch, steps, *_ = TRAIN[base]
    m, inp, _ = make_module(torch, base)
    m.eval()
    x = torch.randn(steps, batch, inp)

    def step():
        with torch.no_grad(), autocast():
            m(x)

    return step, steps * batch


def make_stream(torch, autocast):
    m = torch.nn.LSTM(256, 256, 2)
    m.eval()
    xs = [torch.randn(1, 1, 256) for _ in range(64)]
    state = [(torch.zeros(2, 1, 256), torch.zeros(2, 1, 256))]
    i = [0]

    def step():
        with torch.no_grad(), autocast():
            _, state[0] = m(xs[i[0] & 63], state[0])
        i[0] += 1

    return step, 1


def make_ptb(torch, name, autocast):
    V, H, B, T, drop_p = PTB[name]
    E = H

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = torch.nn.Dropout(drop_p)
            self.embedding = torch.nn.Embedding(V, E)
            self.rnn = torch.nn.LSTM(E, H, 2, dropout=drop_p)
            self.decoder = torch.nn.Linear(H, V)
            for w in (self.embedding.weight, self.decoder.weight):
                torch.nn.init.uniform_(w, -0.1, 0.1)
            torch.nn.init.zeros_(self.decoder.bias)
            for p in self.rnn.parameters():
                torch.nn.init.uniform_(p, -0.1, 0.1)

        def forward(self, ids, hidden):
            out, hidden = self.rnn(self.drop(self.embedding(ids)), hidden)
            return self.decoder(self.drop(out)).view(-1, V), hidden

    model = Model()
    model.train()
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=1.0)
    crit = torch.nn.CrossEntropyLoss()
    nb = 16
    data = torch.randint(0, V, (nb * T + 1, B))  # a random "corpus", made once
    hidden = [(torch.zeros(2, B, H), torch.zeros(2, B, H))]
    i = [0]

    def step():
        k = i[0] % nb
        i[0] += 1
        ids = data[k * T:(k + 1) * T]
        targets = data[k * T + 1:(k + 1) * T + 1].reshape(-1)
        h = tuple(s.detach() for s in hidden[0])
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits, h = model(ids, h)
            loss = crit(logits, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        hidden[0] = h

    return step, B * T


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        print("\n".join(CASES))
        return 0
    import torch  # after parsing, so --help and --list are fast

    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.no_onednn:
        torch.backends.mkldnn.enabled = False
    threads = torch.get_num_threads()
    precision = "bf16" if args.bf16 else "f32"
    allocator = allocator_name()
    print(f"allocator: {allocator}", file=sys.stderr, flush=True)
    if args.bf16:
        flags = cpu_flags()
        if not flags & {"avx512_bf16", "amx_bf16"}:
            print("warning: this CPU has neither avx512_bf16 nor amx_bf16: bf16 is converted in software "
                  "here, so the --bf16 timings say little about bf16 hardware", file=sys.stderr, flush=True)

        def autocast():
            return torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext
    busy = busy_cpus()
    if busy >= 0.5:
        print(f"warning: other processes are using about {busy:.1f} CPU(s); timings will be skewed "
              f"(torch's OpenMP threads degrade badly when a core is taken)", file=sys.stderr)
    if not args.json:
        print(f"torch {torch.__version__}, {threads} thread(s), oneDNN {'off' if args.no_onednn else 'default'}, "
              f"{precision}, median of >= {args.min_iters} iterations / {args.min_time:g} s per case; "
              f"allocator: {allocator}")
        print(f"{'case':<16} {'tokens/s':>12} {'ms/iter':>10} {'iters':>7}")
    for name in args.cases:
        if name in TRAIN:
            step, tokens = make_train(torch, name, autocast)
        elif name in INFER:
            step, tokens = make_infer(torch, name, autocast)
        elif name == "lstm-stream":
            step, tokens = make_stream(torch, autocast)
        else:
            step, tokens = make_ptb(torch, name, autocast)
        times = measure(step, args)
        med = statistics.median(times)
        if args.json:
            print(json.dumps({"case": name, "tokens_per_s": round(tokens / med, 3),
                              "ms_per_iter": round(med * 1e3, 6), "precision": precision,
                              "allocator": allocator}), flush=True)
        else:
            print(f"{name:<16} {tokens / med:>12.1f} {med * 1e3:>10.3f} {len(times):>7}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
