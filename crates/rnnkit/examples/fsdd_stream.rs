//! The streaming demonstration of issue 21: a 60-second recording made of a trained run's
//! held-out test clips with silence between them, run through the streaming detector frame by
//! frame on one thread, scored against the true clip boundaries.
//!
//! ```sh
//! rnnkit train --config configs/fsdd-digits.toml
//! cargo run --release -p rnnkit --example fsdd_stream -- runs/fsdd-digits [--seconds 60]
//!     [--seed 0] [--wav OUT.wav] [--json OUT.json] [--min-frames N] [--threshold P] [--vad-db DB]
//! ```
//!
//! Silences last 0.4–1.0 s and carry a faint noise floor (about −70 dBFS). The recording is fed
//! in 10 ms chunks, as a live source would deliver it. A clip counts as detected when a
//! detection's segment overlaps it; its latency is the detection's emission time minus the
//! clip's true end (negative: decided before the clip was over).
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rnnkit::audio::read_wav;
use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::audio::{AudioConfig, LoadedAudio};
use rnnkit::tasks::audio_stream::{StreamConfig, StreamDetector};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let run_dir = PathBuf::from(argv.first().ok_or("usage: fsdd_stream RUN_DIR [options]")?);
    let opt = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1).cloned())
    };
    let seconds: f64 = opt("--seconds").map_or(Ok(60.0), |v| v.parse())?;
    let seed: u64 = opt("--seed").map_or(Ok(0), |v| v.parse())?;

    let run = RunDir::open(&run_dir)?;
    let config: AudioConfig = rnnkit::config_file::read_run_config(&run)?
        .try_into()
        .map_err(|_| "not an audio run")?;
    let model = LoadedAudio::load(&run, config, Weights::Best)?;
    let rate = model.front.sample_rate;

    // The run's held-out test clips, in a seeded order.
    let split = std::fs::read_to_string(run.join("split.tsv"))?;
    let mut clips: Vec<(String, PathBuf)> = split
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            (f.len() == 4 && f[0] == "test").then(|| (f[1].to_string(), PathBuf::from(f[3])))
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..clips.len()).rev() {
        clips.swap(i, rng.random_range(0..=i));
    }
    let mut audio: Vec<f32> = Vec::new();
    let mut truth: Vec<(f64, f64, String)> = Vec::new();
    let noise = |rng: &mut ChaCha8Rng| (rng.random::<f32>() - 0.5) * 2.0 * 3e-4;
    for (label, path) in &clips {
        let clip = read_wav(path, &Default::default())?;
        if clip.sample_rate != rate {
            return Err(format!(
                "{}: {} Hz, the model wants {rate}",
                path.display(),
                clip.sample_rate
            )
            .into());
        }
        let gap = (rng.random_range(0.4..1.0) * rate as f64) as usize;
        if (audio.len() + gap + clip.samples.len()) as f64 / rate as f64 > seconds {
            break;
        }
        audio.extend((0..gap).map(|_| noise(&mut rng)));
        let start = audio.len() as f64 / rate as f64;
        audio.extend(&clip.samples);
        truth.push((start, audio.len() as f64 / rate as f64, label.clone()));
    }
    let tail = (seconds * rate as f64) as usize - audio.len().min((seconds * rate as f64) as usize);
    audio.extend((0..tail).map(|_| noise(&mut rng)));
    if let Some(out) = opt("--wav") {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&out, spec)?;
        for v in &audio {
            w.write_sample((v.clamp(-1.0, 1.0) * 32767.0) as i16)?;
        }
        w.finalize()?;
    }

    // Stream it on one thread, 10 ms at a time.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut config = StreamConfig::default();
    if let Some(v) = opt("--min-frames") {
        config.min_frames = Some(v.parse()?);
    }
    if let Some(v) = opt("--threshold") {
        config.threshold = v.parse()?;
    }
    if let Some(v) = opt("--vad-db") {
        config.vad_db = v.parse()?;
    }
    let (detections, busy) = pool.install(|| -> rnnkit::Result<_> {
        let mut det = StreamDetector::new(&model, config)?;
        let mut found = Vec::new();
        for chunk in audio.chunks(rate as usize / 100) {
            found.extend(det.push(chunk)?);
        }
        found.extend(det.finish()?);
        Ok((found, det.busy))
    })?;

    // Score against the truth.
    let overlap = |a: (f64, f64), b: (f64, f64)| (a.1.min(b.1) - a.0.max(b.0)).max(0.0);
    let mut used = vec![false; detections.len()];
    let (mut right, mut missed) = (0, 0);
    let mut latencies = Vec::new();
    for (s, e, label) in &truth {
        let best = detections
            .iter()
            .enumerate()
            .filter(|(i, d)| !used[*i] && overlap((*s, *e), (d.start_s, d.end_s)) > 0.0)
            .max_by(|a, b| {
                overlap((*s, *e), (a.1.start_s, a.1.end_s))
                    .total_cmp(&overlap((*s, *e), (b.1.start_s, b.1.end_s)))
            });
        match best {
            Some((i, d)) => {
                used[i] = true;
                right += usize::from(d.label == *label);
                latencies.push(d.emitted_s - e);
            }
            None => missed += 1,
        }
    }
    let false_alarms = used.iter().filter(|u| !**u).count();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let cpu_ms_per_frame = busy.0.as_secs_f64() * 1e3 / busy.1.max(1) as f64;
    let summary = serde_json::json!({
        "recording_s": audio.len() as f64 / rate as f64, "clips": truth.len(),
        "detections": detections.len(), "correct": right, "missed": missed,
        "false_alarms": false_alarms,
        "accuracy": right as f64 / truth.len().max(1) as f64,
        "latency_s": {"median": pct(0.5), "p10": pct(0.1), "p90": pct(0.9),
                       "min": latencies.first(), "max": latencies.last()},
        "cpu_ms_per_10ms_frame": cpu_ms_per_frame, "frames": busy.1, "threads": 1,
        "stream": {"vad_db": config.vad_db, "hangover_frames": config.hangover_frames,
                   "smooth_frames": config.smooth_frames, "threshold": config.threshold,
                   "min_frames": config.min_frames},
        "run": run_dir.display().to_string(), "seed": seed,
    });
    for d in &detections {
        println!(
            "{:7.2} {:7.2}  {}  p={:.3}  emitted at {:.2} s",
            d.start_s, d.end_s, d.label, d.prob, d.emitted_s
        );
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if let Some(out) = opt("--json") {
        std::fs::write(out, serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(())
}
