//! `task = "audio"` end to end through the command line, on synthesized recordings: two tones
//! told apart by pitch, three "speakers" (slightly different pitches and loudness), files named
//! as FSDD names them. Trains, classifies WAV files, evaluates, and refuses bad audio with exit
//! 2 naming the file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn rnnkit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rnnkit"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-audio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A 16-bit mono WAV of a tone with a little noise.
fn write_tone(path: &Path, hz: f32, gain: f32, seconds: f32, rate: u32, seed: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    for i in 0..(seconds * rate as f32) as usize {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.05;
        let t = i as f32 / rate as f32;
        let v = gain * (2.0 * std::f32::consts::PI * hz * t).sin() + noise;
        w.write_sample((v * 32000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// `low_{speaker}_{take}.wav` and `high_...` for three speakers and eight takes.
fn write_corpus(dir: &Path) {
    for (s, speaker) in ["ann", "bob", "cy"].iter().enumerate() {
        for take in 0..8 {
            let shift = 1.0 + 0.05 * s as f32 + 0.01 * take as f32;
            let gain = 0.3 + 0.1 * s as f32;
            let seconds = 0.2 + 0.03 * take as f32;
            let seed = (s * 100 + take) as u32;
            write_tone(
                &dir.join(format!("low_{speaker}_{take}.wav")),
                300.0 * shift,
                gain,
                seconds,
                8000,
                seed,
            );
            write_tone(
                &dir.join(format!("high_{speaker}_{take}.wav")),
                1500.0 * shift,
                gain,
                seconds,
                8000,
                seed + 7,
            );
        }
    }
}

fn train(dir: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let data = format!("data.path={}", dir.join("wav").display());
    let out = format!("output.dir={}", dir.join("runs").display());
    let mut args = vec![
        "train",
        "--quiet",
        "--set",
        "task=audio",
        "--set",
        &data,
        "--set",
        &out,
        "--set",
        "output.name=a",
        "--set",
        "output.threads=1",
        "--set",
        "data.official_test_takes=2",
        "--set",
        "data.valid_fraction=0.15",
        "--set",
        "model.hidden_size=16",
        "--set",
        "model.num_layers=1",
        "--set",
        "train.epochs=12",
        "--set",
        "train.batch_size=8",
        "--set",
        "data.features.kind=fbank",
        "--set",
        "data.features.n_mels=20",
    ];
    args.extend_from_slice(extra);
    rnnkit(&args)
}

#[test]
fn audio_task_trains_classifies_evaluates_and_refuses_bad_audio() {
    let dir = temp("task");
    std::fs::create_dir_all(dir.join("wav")).unwrap();
    write_corpus(&dir.join("wav"));
    // Waveform perturbation on: training still separates the tones.
    let (code, _, err) = train(
        &dir,
        &[
            "--set",
            "data.perturb.speeds=[0.9, 1.0, 1.1]",
            "--set",
            "data.perturb.noise_prob=0.5",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let run = dir.join("runs/a");
    for f in [
        "audio.json",
        "classes.json",
        "split.tsv",
        "metrics.json",
        "report.md",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    // Official split: takes 0 and 1 of every speaker and class are the test set.
    assert_eq!(metrics["test_recordings"], 12);
    assert!(metrics["accuracy"].as_f64().unwrap() >= 0.9, "{metrics}");
    assert_eq!(
        metrics["per_speaker_accuracy"].as_object().unwrap().len(),
        3
    );

    let run_s = run.display().to_string();
    let low = dir.join("wav/low_bob_0.wav").display().to_string();
    let high = dir.join("wav/high_cy_1.wav").display().to_string();
    let (code, out, err) = rnnkit(&["classify", "--model", &run_s, &low, &high]);
    assert_eq!(code, Some(0), "{err}");
    let labels: Vec<&str> = out.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
    assert_eq!(labels, ["low", "high"], "{out}");

    // A list file, and a manifest with a path column, relative to their folder.
    std::fs::write(
        dir.join("list.txt"),
        "wav/low_ann_0.wav\nwav/high_ann_0.wav\n",
    )
    .unwrap();
    std::fs::write(dir.join("m.csv"), "path,label\nwav/high_bob_1.wav,high\n").unwrap();
    for (list, lines) in [("list.txt", 2), ("m.csv", 1)] {
        let l = dir.join(list).display().to_string();
        let (code, out, err) = rnnkit(&["classify", "--model", &run_s, "--input", &l]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out.lines().count(), lines, "{out}");
    }

    let (code, out, err) = rnnkit(&["evaluate", "--model", &run_s, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["recordings"], 12);
    assert_eq!(m["accuracy"], metrics["accuracy"]);

    // Bad audio: exit 2 with the file named, never a panic.
    let good = std::fs::read(dir.join("wav/low_ann_0.wav")).unwrap();
    let mut zero_rate = good.clone();
    zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
    let mut adpcm = good.clone();
    adpcm[20..22].copy_from_slice(&2u16.to_le_bytes()); // format tag 2: MS ADPCM
    let bad: [(&str, &[u8]); 5] = [
        ("truncated.wav", &good[..30]),
        ("empty.wav", b""),
        ("zero-rate.wav", &zero_rate),
        ("adpcm.wav", &adpcm),
        ("text.wav", b"hello, this is not audio at all"),
    ];
    for (name, bytes) in bad {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let (code, _, err) = rnnkit(&["classify", "--model", &run_s, &p.display().to_string()]);
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(
            err.contains(name) && !err.contains("panicked"),
            "{name}: {err}"
        );
    }
    let d = dir.join("wav").display().to_string();
    let (code, _, err) = rnnkit(&["classify", "--model", &run_s, &d]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("directory"), "{err}");

    // A speaker split without a speaker to hold out is a config error naming the speakers.
    let (code, _, err) = train(
        &dir,
        &["--set", "data.split=speaker", "--set", "output.name=b"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("test_speaker") && err.contains("bob"), "{err}");
}

#[test]
fn a_trained_audio_model_streams_over_a_long_recording() {
    use rnnkit::run::{RunDir, Weights};
    use rnnkit::tasks::audio::{AudioConfig, LoadedAudio};
    use rnnkit::tasks::audio_stream::{StreamConfig, StreamDetector};
    let dir = temp("stream");
    std::fs::create_dir_all(dir.join("wav")).unwrap();
    write_corpus(&dir.join("wav"));
    // Attention pooling, which the detector runs online (a running softmax).
    let (code, _, err) = train(&dir, &["--set", "model.pooling=attention"]);
    assert_eq!(code, Some(0), "{err}");
    let run = RunDir::open(dir.join("runs/a")).unwrap();
    let config: AudioConfig = rnnkit::config_file::read_run_config(&run)
        .unwrap()
        .try_into()
        .unwrap();
    let model = LoadedAudio::load(&run, config, Weights::Best).unwrap();
    // Silence, a low tone, silence, a high tone, silence: two detections, in order, each
    // inside its tone's span.
    let read = |name: &str| {
        rnnkit::audio::read_wav(&dir.join("wav").join(name), &Default::default())
            .unwrap()
            .samples
    };
    let (low, high) = (read("low_ann_0.wav"), read("high_bob_1.wav"));
    let quiet = vec![0.0f32; 4000];
    let stream: Vec<f32> = [&quiet, &low, &quiet, &high, &quiet]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let mut det = StreamDetector::new(&model, StreamConfig::default()).unwrap();
    let mut found = Vec::new();
    for chunk in stream.chunks(80) {
        found.extend(det.push(chunk).unwrap());
    }
    found.extend(det.finish().unwrap());
    let labels: Vec<&str> = found.iter().map(|d| d.label.as_str()).collect();
    assert_eq!(labels, ["low", "high"], "{found:?}");
    let low_start = 0.5;
    let high_start = (8000 + low.len()) as f64 / 8000.0;
    assert!((found[0].start_s - low_start).abs() < 0.05, "{found:?}");
    assert!((found[1].start_s - high_start).abs() < 0.05, "{found:?}");
    assert!(
        found.iter().all(|d| d.emitted_s >= d.end_s),
        "decided at segment ends: {found:?}"
    );
}
