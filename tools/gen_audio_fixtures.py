#!/usr/bin/env python3
"""Golden audio features: torchaudio's Kaldi fbank/MFCC and librosa's mel/MFCC (issue 21).

How to run (from the repository root; needs torch, torchaudio, librosa, numpy, safetensors):

    /work/venv/bin/python tools/gen_audio_fixtures.py     # (re)writes tests/fixtures/audio/

It writes, in tests/fixtures/audio/:
  clips.safetensors     every input clip, float32 mono ("clip.NAME")
  expected.safetensors  every case's features, float32 [frames, dims] ("case.NAME")
  manifest.json         per case: the clip, its sample rate, and the settings in rnnkit's own
                        keys (data.features.*), so the test builds the same extractor

The clips: a seeded noise burst, a tone, a chirp, silence (all zeros), a clipped tone, a clip
shorter than one frame, and two real recordings from the Free Spoken Digit Dataset (CC BY-SA 4.0,
Jakobovski and contributors; tests/fixtures/audio/README.md) at 8 kHz, and a 16 kHz noise-and-tone
clip.

Kaldi-style cases call torchaudio.compliance.kaldi.fbank / .mfcc (dither 0, snip_edges, no
energy); librosa-style cases call librosa.feature.melspectrogram (power 2, center, zero padding,
Slaney mel and norm) and librosa.power_to_db(ref=1, amin=1e-10, top_db), then
librosa.feature.mfcc(S=dB, dct_type=2, norm="ortho", lifter). Deltas are
torchaudio.functional.compute_deltas (window 5, edges repeated) appended after the static
features. Everything runs in float32 inputs, as a user would call the libraries.
"""

from __future__ import annotations

import json
import os
import wave

import librosa
import numpy as np
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi
from safetensors.numpy import save_file

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(REPO, "tests", "fixtures", "audio")
FSDD = os.path.join(REPO, "..", "shared", "data", "fsdd", "recordings")
REAL = ["3_jackson_7.wav", "8_nicolas_20.wav"]

KALDI_WINDOW = {"povey": "povey", "hann": "hanning", "hamming": "hamming",
                "blackman": "blackman", "rectangular": "rectangular"}
LIBROSA_WINDOW = {"hann": "hann", "hamming": "hamming", "blackman": "blackman", "rectangular": "boxcar"}


def read_pcm16(path: str) -> np.ndarray:
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (data.astype(np.float64) / 32768.0).astype(np.float32)


def clips() -> dict:
    rng = np.random.default_rng(21)
    out = {}
    t8 = np.arange(8000) / 8000.0
    out["noise8k"] = (0.3 * rng.standard_normal(4000)).astype(np.float32)
    out["tone8k"] = (0.5 * np.sin(2 * np.pi * 440.0 * t8)).astype(np.float32)
    chirp = np.sin(2 * np.pi * (100.0 * t8 + 1800.0 * t8 ** 2))
    out["chirp8k"] = (0.4 * chirp + 0.01 * rng.standard_normal(8000)).astype(np.float32)
    out["silence8k"] = np.zeros(3000, dtype=np.float32)
    out["clipped8k"] = np.clip(3.0 * np.sin(2 * np.pi * 300.0 * t8[:5000]), -1.0, 1.0).astype(np.float32)
    out["short8k"] = (0.2 * rng.standard_normal(150)).astype(np.float32)  # < one 25 ms frame
    t16 = np.arange(12000) / 16000.0
    out["noise16k"] = (0.2 * rng.standard_normal(12000) + 0.3 * np.sin(2 * np.pi * 1000.0 * t16)).astype(np.float32)
    for name in REAL:
        out["fsdd_" + name[:-4]] = read_pcm16(os.path.join(FSDD, name))
    return out


def sample_rate(clip: str) -> int:
    return 16000 if clip.endswith("16k") else 8000


def kaldi_case(y: np.ndarray, sr: int, p: dict) -> np.ndarray:
    wave_t = torch.from_numpy(y).unsqueeze(0)
    common = dict(sample_frequency=float(sr), frame_length=p["frame_length_ms"], frame_shift=p["frame_shift_ms"],
                  window_type=KALDI_WINDOW[p["window"]], num_mel_bins=p["n_mels"], low_freq=p["f_min"],
                  high_freq=p["f_max"], preemphasis_coefficient=p["preemphasis"],
                  remove_dc_offset=p["remove_dc_offset"], dither=0.0, snip_edges=True,
                  round_to_power_of_two=p.get("n_fft") is None, use_energy=False)
    if y.size < int(sr * p["frame_length_ms"] * 0.001):
        dim = p["n_mels"] if p["kind"] == "fbank" else p["n_mfcc"]
        return np.zeros((0, dim * (1 + p["deltas"])), dtype=np.float32)
    if p["kind"] == "fbank":
        f = kaldi.fbank(wave_t, **common)
    else:
        f = kaldi.mfcc(wave_t, num_ceps=p["n_mfcc"], cepstral_lifter=p["lifter"], **common)
    return with_deltas(f, p["deltas"])


def librosa_case(y: np.ndarray, sr: int, p: dict) -> np.ndarray:
    win = int(sr * p["frame_length_ms"] * 0.001)
    hop = int(sr * p["frame_shift_ms"] * 0.001)
    n_fft = p.get("n_fft") or 1 << (win - 1).bit_length()
    fmax = p["f_max"] if p["f_max"] > 0 else sr / 2 + p["f_max"]
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, win_length=win,
                                         window=LIBROSA_WINDOW[p["window"]], center=True, pad_mode="constant",
                                         power=2.0, n_mels=p["n_mels"], fmin=p["f_min"], fmax=fmax,
                                         htk=False, norm="slaney")
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=p["top_db"])
    if p["kind"] == "mfcc":
        f = librosa.feature.mfcc(S=db, n_mfcc=p["n_mfcc"], dct_type=2, norm="ortho", lifter=p["lifter"])
    else:
        f = db
    return with_deltas(torch.from_numpy(np.ascontiguousarray(f.T)), p["deltas"])


def with_deltas(f: torch.Tensor, order: int) -> np.ndarray:
    blocks = [f]
    for _ in range(order):
        blocks.append(torchaudio.functional.compute_deltas(blocks[-1].T.contiguous(), win_length=5).T)
    return torch.cat(blocks, dim=1).contiguous().numpy().astype(np.float32)


KALDI_BASE = dict(style="kaldi", kind="fbank", frame_length_ms=25.0, frame_shift_ms=10.0, window="povey",
                  n_mels=23, f_min=20.0, f_max=0.0, n_mfcc=13, lifter=22.0, preemphasis=0.97,
                  remove_dc_offset=True, deltas=0, n_fft=None)
LIBROSA_BASE = dict(style="librosa", kind="fbank", frame_length_ms=32.0, frame_shift_ms=8.0, window="hann",
                    n_mels=40, f_min=0.0, f_max=0.0, n_mfcc=20, lifter=0.0, preemphasis=0.0,
                    remove_dc_offset=False, deltas=0, n_fft=None, top_db=80.0)


def cases(all_clips: dict) -> list:
    out = []
    every = list(all_clips)

    def add(name, clip, **p):
        out.append((name, clip, p))

    for clip in every:
        add(f"kaldi_fbank_{clip}", clip, **KALDI_BASE)
        add(f"kaldi_mfcc_{clip}", clip, **dict(KALDI_BASE, kind="mfcc"))
        add(f"librosa_mel_{clip}", clip, **LIBROSA_BASE)
        add(f"librosa_mfcc_{clip}", clip, **dict(LIBROSA_BASE, kind="mfcc"))
    speech = "fsdd_" + REAL[0][:-4]
    for window in ["hann", "hamming", "blackman", "rectangular"]:
        add(f"kaldi_fbank_window_{window}", speech, **dict(KALDI_BASE, window=window))
    add("kaldi_fbank_40mel_band", speech, **dict(KALDI_BASE, n_mels=40, f_min=60.0, f_max=-400.0))
    add("kaldi_fbank_no_dc_no_preemph", speech, **dict(KALDI_BASE, preemphasis=0.0, remove_dc_offset=False))
    add("kaldi_fbank_nfft_is_frame", speech, **dict(KALDI_BASE, n_fft=200))
    add("kaldi_fbank_long_frames", speech, **dict(KALDI_BASE, frame_length_ms=50.0, frame_shift_ms=12.5))
    add("kaldi_mfcc_no_lifter_deltas2", speech, **dict(KALDI_BASE, kind="mfcc", lifter=0.0, deltas=2, n_mels=40))
    add("kaldi_mfcc_deltas1", "noise16k", **dict(KALDI_BASE, kind="mfcc", deltas=1))
    add("librosa_mel_no_floor", "chirp8k", **dict(LIBROSA_BASE, top_db=None))
    add("librosa_mfcc_lifter_deltas", speech, **dict(LIBROSA_BASE, kind="mfcc", lifter=22.0, deltas=2))
    add("librosa_mel_hamming_band", speech, **dict(LIBROSA_BASE, window="hamming", f_min=100.0, f_max=3500.0,
                                                    frame_length_ms=25.0, n_fft=256))
    return out


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    all_clips = clips()
    expected, manifest = {}, []
    for name, clip, p in cases(all_clips):
        y, sr = all_clips[clip], sample_rate(clip)
        f = kaldi_case(y, sr, p) if p["style"] == "kaldi" else librosa_case(y, sr, p)
        expected["case." + name] = np.ascontiguousarray(f, dtype=np.float32)
        settings = {k: v for k, v in p.items() if v is not None or k == "top_db"}
        manifest.append({"name": name, "clip": clip, "sample_rate": sr, "features": settings,
                         "shape": list(f.shape)})
    save_file({"clip." + k: v for k, v in all_clips.items()}, os.path.join(OUT, "clips.safetensors"))
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump({"torch": torch.__version__, "torchaudio": torchaudio.__version__,
                   "librosa": librosa.__version__, "cases": manifest}, fh, indent=1)
        fh.write("\n")
    print(f"{len(manifest)} cases, {len(all_clips)} clips -> {OUT}")


if __name__ == "__main__":
    main()
