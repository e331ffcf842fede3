#!/usr/bin/env python3
"""Feature extraction throughput, rnnkit against torchaudio and librosa, on one thread (issue 21).

    /work/venv/bin/python tools/bench_audio_features.py [--dir ../shared/data/fsdd/recordings]
        [--rounds 5] [--json-out docs/bench-audio-features-DATE.json]

Every side gets the same clips already decoded in memory (float32 mono) and computes, per clip,
the same features rnnkit's defaults compute (40 mel bands, 25 ms frames, 10 ms hop; MFCC 13):
  kaldi-fbank      torchaudio.compliance.kaldi.fbank(dither=0)     vs rnnkit kind=fbank style=kaldi
  kaldi-mfcc       torchaudio.compliance.kaldi.mfcc(dither=0)      vs rnnkit kind=mfcc  style=kaldi
  librosa-logmel   power_to_db(melspectrogram(...), top_db=80)     vs rnnkit kind=fbank style=librosa
  librosa-mfcc     librosa.feature.mfcc(S=that, n_mfcc=13)         vs rnnkit kind=mfcc  style=librosa
torch runs with torch.set_num_threads(1); rnnkit's extractor is single-threaded. The rnnkit side
is `cargo run --release --example audio_features_speed` (built first unless --no-build). Sides
alternate per round; each figure is the median over the rounds of the time for all clips.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import wave

import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_DIR = os.path.join(REPO, "..", "shared", "data", "fsdd", "recordings")


def read_pcm16(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path) as w:
        assert w.getsampwidth() == 2, path
        rate, ch = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        data = data.reshape(-1, ch).mean(axis=1)
    return data.astype(np.float32), rate


def python_sides(clips, rate):
    import librosa
    import torch
    import torchaudio.compliance.kaldi as kaldi

    torch.set_num_threads(1)
    tensors = [torch.from_numpy(c).unsqueeze(0) for c in clips]
    n_fft = 256 if rate == 8000 else 512
    win = int(0.025 * rate)
    hop = int(0.010 * rate)

    def fbank():
        return sum(kaldi.fbank(t, num_mel_bins=40, dither=0.0, sample_frequency=rate).shape[0] for t in tensors)

    def mfcc():
        return sum(kaldi.mfcc(t, num_mel_bins=40, num_ceps=13, dither=0.0, sample_frequency=rate).shape[0]
                   for t in tensors)

    def logmel_of(c):
        s = librosa.feature.melspectrogram(y=c, sr=rate, n_fft=n_fft, hop_length=hop, win_length=win,
                                           n_mels=40, fmin=20.0, power=2.0)
        return librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=80.0)

    def logmel():
        return sum(logmel_of(c).shape[1] for c in clips)

    def lmfcc():
        return sum(librosa.feature.mfcc(S=logmel_of(c), n_mfcc=13).shape[1] for c in clips)

    return {"kaldi-fbank": ("torchaudio", fbank), "kaldi-mfcc": ("torchaudio", mfcc),
            "librosa-logmel": ("librosa", logmel), "librosa-mfcc": ("librosa", lmfcc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=DEFAULT_DIR)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()

    files = sorted(f for f in os.listdir(args.dir) if f.endswith(".wav"))
    decoded = [read_pcm16(os.path.join(args.dir, f)) for f in files]
    rate = decoded[0][1]
    clips = [c for c, _ in decoded]
    audio_s = sum(len(c) for c in clips) / rate
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "rnnkit", "--example", "audio_features_speed"],
                       cwd=REPO, check=True)
    exe = os.path.join(REPO, "target", "release", "examples", "audio_features_speed")
    py = python_sides(clips, rate)
    py["kaldi-fbank"][1]()  # warm-up: imports, FFT plans
    py["librosa-logmel"][1]()
    times = {k: {"rnnkit": [], py[k][0]: []} for k in py}
    for r in range(args.rounds):
        out = subprocess.run([exe, args.dir, "--rounds", "1", "--json"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            row = json.loads(line)
            times[row["kind"]]["rnnkit"].append(row["seconds"])
        for kind, (peer, fn) in py.items():
            t0 = time.perf_counter()
            fn()
            times[kind][peer].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    rows = []
    print(f"{len(clips)} clips, {audio_s:.0f} s of audio at {rate} Hz, 1 thread, median of {args.rounds} rounds")
    print("| features | rnnkit clips/s | peer | peer clips/s | rnnkit / peer |")
    print("|---|---:|---|---:|---:|")
    for kind, sides in times.items():
        peer = py[kind][0]
        rk, pk = statistics.median(sides["rnnkit"]), statistics.median(sides[peer])
        rows.append({"kind": kind, "peer": peer, "rnnkit_s": sides["rnnkit"], "peer_s": sides[peer],
                     "rnnkit_clips_per_s": len(clips) / rk, "peer_clips_per_s": len(clips) / pk})
        print(f"| {kind} | {len(clips) / rk:,.0f} | {peer} | {len(clips) / pk:,.0f} | {pk / rk:.2f}× |")
    if args.json_out:
        import librosa
        import torch
        import torchaudio
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
        with open(args.json_out, "w") as f:
            json.dump({"clips": len(clips), "audio_s": audio_s, "rate": rate, "rounds": args.rounds,
                       "cpu": cpu, "python": platform.python_version(), "torch": torch.__version__,
                       "torchaudio": torchaudio.__version__, "librosa": librosa.__version__,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
