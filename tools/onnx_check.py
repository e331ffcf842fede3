#!/usr/bin/env python3
"""Checks `rnnkit export` against onnxruntime and the ONNX checker.

For each run directory (or config, which is first trained briefly into --work):

1. exports it twice: the ONNX operators (`--recurrence operators`) and Scan (`--recurrence scan`);
2. runs `onnx.checker.check_model(full_check=True)` (structure and shape inference) on both;
3. feeds the fixed batch of `rnnkit evaluate --outputs` (its inputs, lengths, zero states) to
   onnxruntime and compares with rnnkit's outputs (max|a - b| <= 1e-5 max|b| per tensor, the
   measure of the parity tests);
4. runs both forms on a random batch with random lengths and compares them (sequence_lens in the
   fused operators against the Scan form's masks), and the final states too;
5. language models: streams a sequence one step per call, feeding h_n/c_n back, against the
   whole sequence; and generates greedily from onnxruntime and compares with
   `rnnkit generate --temperature 0` (same prompt, same length), token for token and as text.

6. with --grid DIR: the stack grid of the Rust test `onnx_tract` (every cell kind x directions x
   initial state x projection x operators/scan x full/variable lengths) in onnxruntime.

Usage (a venv with onnx and onnxruntime, outside the repo):

    python tools/onnx_check.py configs/*.toml --rnnkit target/release/rnnkit --work /tmp/onnx-check
    python tools/onnx_check.py runs/my-run
    RNNKIT_ONNX_GRID=/tmp/grid cargo test --release -p rnnkit --test onnx_tract
    python tools/onnx_check.py --grid /tmp/grid

Exit status 0 when every check passes, 1 otherwise. `--json FILE` writes the results.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file

# Pass when max|onnxruntime - rnnkit| <= RTOL * max|rnnkit|, per tensor.
RTOL = 1e-5
# Data the repository does not ship (PTB, WikiText-2): their configs are skipped when absent.
EVAL_UNSUPPORTED = {"synthetic"}


def sh(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


def compare(name, got, want, results):
    """Passes when max|got - want| <= RTOL * max|want| over the tensor: the per-tensor relative
    error the parity tests use (README, "Agreement with PyTorch")."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        results.append({"check": name, "ok": False, "why": f"shape {got.shape} vs {want.shape}"})
        return
    err = float(np.abs(got - want).max()) if got.size else 0.0
    scale = float(np.abs(want).max()) if want.size else 0.0
    rel = err / scale if scale > 0 else err
    results.append({"check": name, "ok": rel <= RTOL, "max_abs": err, "max_rel": rel})


def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def zero_states(sess, batch):
    feeds = {}
    for i in sess.get_inputs():
        if i.name in ("h0", "c0"):
            layers_dirs, _, width = i.shape
            feeds[i.name] = np.zeros((layers_dirs, batch, width), np.float32)
    return feeds


def run_model(sess, x, lengths=None, states=None):
    batch = x.shape[1]
    feeds = {"input": x}
    names = [i.name for i in sess.get_inputs()]
    if "lengths" in names:
        feeds["lengths"] = (
            np.full(batch, x.shape[0], np.int64) if lengths is None else lengths.astype(np.int64)
        )
    feeds.update(states if states is not None else zero_states(sess, batch))
    outs = sess.run(None, feeds)
    return dict(zip([o.name for o in sess.get_outputs()], outs))


def train_quick(rnnkit, config, work, steps):
    name = Path(config).stem
    sh([rnnkit, "train", "--config", config,
        "--set", "train.epochs=1", "--set", f"train.max_steps={steps}",
        "--set", f"output.dir={work}", "--set", f"output.name={name}",
        "--set", "output.overwrite=true"])
    return Path(work) / name


def random_input(sess, prep, rng, t, b):
    spec = sess.get_inputs()[0]
    if spec.type == "tensor(int64)":
        vocab = len(prep["text"]["vocab"]["tokens"]) if "text" in prep else 4
        return rng.integers(1, vocab, size=(t, b)).astype(np.int64)
    return rng.standard_normal((t, b, spec.shape[2])).astype(np.float32)


def check_run(rnnkit, run, tmp, results):
    run = Path(run)
    prep = None
    sessions = {}
    for recurrence in ("operators", "scan"):
        out = Path(tmp) / f"{run.name}-{recurrence}.onnx"
        sh([rnnkit, "export", "--model", run, "--out", out, "--recurrence", recurrence])
        model = onnx.load(out)
        try:
            onnx.checker.check_model(model, full_check=True)
            results.append({"check": f"{recurrence}: onnx.checker", "ok": True})
        except Exception as e:  # noqa: BLE001 - the checker's own error types vary
            results.append({"check": f"{recurrence}: onnx.checker", "ok": False, "why": str(e)[:500]})
        sessions[recurrence] = session(out)
        prep = json.loads(out.with_name(out.stem + ".preprocessing.json").read_text())
    task = prep["task"]

    # 3. rnnkit's own outputs on its fixed batch.
    if task not in EVAL_UNSUPPORTED:
        outputs = Path(tmp) / f"{run.name}-outputs.safetensors"
        sh([rnnkit, "evaluate", "--model", run, "--outputs", outputs])
        ref = load_file(str(outputs))
        x = ref.get("input_ids", ref.get("inputs", ref.get("features")))
        want = ref.get("logits", ref.get("forecasts"))
        lengths = ref.get("lengths")
        for recurrence, sess in sessions.items():
            got = run_model(sess, x, lengths)
            out_name = sess.get_outputs()[0].name
            compare(f"{recurrence}: {out_name} vs rnnkit evaluate --outputs", got[out_name], want, results)

    # 4. Variable lengths: fused operators against Scan masks.
    rng = np.random.default_rng(0)
    t, b = 12, 5
    x = random_input(sessions["operators"], prep, rng, t, b)
    lengths = rng.integers(1, t + 1, size=b).astype(np.int64)
    lengths[0] = t
    ops = run_model(sessions["operators"], x, lengths)
    scan = run_model(sessions["scan"], x, lengths)
    for k in ops:
        if k == "logits" and ops[k].ndim == 3:  # per-step: compare valid steps
            for j, n in enumerate(lengths):
                compare(f"operators vs scan, variable lengths: {k}[:, {j}]", ops[k][:n, j], scan[k][:n, j], results)
        else:
            compare(f"operators vs scan, variable lengths: {k}", ops[k], scan[k], results)

    # 5. Language models: streaming and greedy generation.
    if task == "lm":
        sess = sessions["operators"]
        x = random_input(sess, prep, rng, 20, 1)
        whole = run_model(sess, x)["logits"]
        states = zero_states(sess, 1)
        steps = []
        for i in range(x.shape[0]):
            out = run_model(sess, x[i:i + 1], states=states)
            steps.append(out["logits"])
            states = {"h0": out["h_n"], **({"c0": out["c_n"]} if "c_n" in out else {})}
        compare("streaming one step per call vs whole sequence", np.concatenate(steps), whole, results)
        check_generation(rnnkit, run, sess, prep, results)


def check_generation(rnnkit, run, sess, prep, results, length=200, prompt="ROMEO:"):
    text_spec = prep["text"]
    if text_spec["tokenizer"]["kind"] != "char":
        results.append({"check": "greedy generation", "ok": True, "skipped": True,
                        "why": "skipped: compared as text for character models only"})
        return
    tokens = text_spec["vocab"]["tokens"]
    index = {t: i for i, t in enumerate(tokens)}
    unk, eos = index["<unk>"], index["<eos>"]
    ids = [index.get(ch, unk) if ch != "\n" else eos for ch in prompt] or [eos]
    states = zero_states(sess, 1)
    out = run_model(sess, np.array(ids, np.int64)[:, None], states=states)
    generated = []
    for _ in range(length):
        logits = out["logits"][-1, 0]
        nxt = 1 + int(np.argmax(logits[1:]))  # never <pad> (id 0); first maximum wins
        generated.append(nxt)
        states = {"h0": out["h_n"], **({"c0": out["c_n"]} if "c_n" in out else {})}
        out = run_model(sess, np.array([[nxt]], np.int64), states=states)
    text = "".join("\n" if i == eos else ("" if tokens[i].startswith("<") and len(tokens[i]) > 1 else tokens[i]) for i in generated)
    want = sh([rnnkit, "generate", "--model", run, "--prompt", prompt, "--length", str(length),
               "--temperature", "0"])
    want = want[len(prompt):] if want.startswith(prompt) else want
    same = want.rstrip("\n") == text.rstrip("\n")
    results.append({
        "check": f"greedy generation ({length} tokens after {prompt!r}) vs rnnkit generate --temperature 0",
        "ok": same,
        **({} if same else {"onnxruntime": text[:200], "rnnkit": want[:200]}),
    })


def check_grid(grid, results):
    """The stack grid the Rust test `onnx_tract` writes with RNNKIT_ONNX_GRID=DIR: every cell kind
    x one or two directions x zero or given state x projection x {operators, scan} x {full,
    variable lengths}, each model beside its inputs and rnnkit's outputs."""
    for model in sorted(Path(grid).glob("*.onnx")):
        data = load_file(str(model.with_suffix(".safetensors")))
        onnx.checker.check_model(onnx.load(model), full_check=True)
        sess = session(model)
        feeds = {k: v for k, v in data.items() if not k.startswith("want.")}
        outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        for name in ("output", "h_n", "c_n"):
            if f"want.{name}" in data:
                compare(f"{model.stem}: {name}", outs[name], data[f"want.{name}"], results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", help="run directories, or configs to train briefly first")
    ap.add_argument("--grid", default=None,
                    help="also check the stack grid written by "
                         "`RNNKIT_ONNX_GRID=DIR cargo test --release -p rnnkit --test onnx_tract`")
    ap.add_argument("--rnnkit", default="target/release/rnnkit")
    ap.add_argument("--work", default=None, help="where quick runs go (default: a temp dir)")
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="onnx-check-")
    os.makedirs(work, exist_ok=True)
    report = {
        "host": platform.node(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "runs": {},
    }
    failed = 0
    items = ([f"grid:{args.grid}"] if args.grid else []) + args.runs
    for item in items:
        results = []
        try:
            if item.startswith("grid:"):
                check_grid(item[len("grid:"):], results)
                run = None
            elif item.endswith(".toml"):
                run = train_quick(args.rnnkit, item, work, args.train_steps)
            else:
                run = Path(item)
            if run is not None:
                check_run(args.rnnkit, run, work, results)
        except Exception as e:  # noqa: BLE001 - report and go on with the next run
            results.append({"check": "run", "ok": False, "why": str(e)[-800:]})
        bad = [r for r in results if not r["ok"]]
        failed += len(bad)
        report["runs"][item] = results
        print(f"{'ok  ' if not bad else 'FAIL'} {item}: {len(results) - len(bad)}/{len(results)} checks pass")
        worst = max((r.get("max_rel", 0.0) for r in results), default=0.0)
        print(f"    worst max|a - b| / max|b|: {worst:.1e} (bound {RTOL:g})")
        for r in results if (bad or not item.startswith("grid:")) else []:
            extra = f" (max|a - b| / max|b| = {r['max_rel']:.1e})" if "max_rel" in r else ""
            status = "skip" if r.get("skipped") else ("ok  " if r["ok"] else "FAIL")
            print(f"    {status} {r['check']}{extra}{'' if r['ok'] and not r.get('skipped') else ': ' + r.get('why', '')}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
