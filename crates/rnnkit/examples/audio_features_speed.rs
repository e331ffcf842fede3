//! Feature extraction throughput over a folder of WAV files on one thread (issue 21):
//! Kaldi fbank, Kaldi MFCC and librosa-style log-mel, the files read into memory first so only
//! the features are timed. `tools/bench_audio_features.py` does the same with torchaudio and
//! librosa, and prints both side by side.
//!
//! ```sh
//! cargo run --release -p rnnkit --example audio_features_speed -- [DIR] [--rounds 5] [--json]
//! ```
//!
//! DIR defaults to `../shared/data/fsdd/recordings`. Each line: the kind, clips per second,
//! seconds of audio per second of CPU (the real-time factor's inverse), the median of the
//! rounds.
use rnnkit::audio::{FeatureConfig, FeatureExtractor, FeatureKind, FeatureStyle, read_wav};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = "../shared/data/fsdd/recordings".to_string();
    let (mut rounds, mut json) = (5usize, false);
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--rounds" => {
                rounds = argv.get(i + 1).ok_or("--rounds N")?.parse()?;
                i += 1;
            }
            "--json" => json = true,
            other => dir = other.to_string(),
        }
        i += 1;
    }
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    paths.sort();
    let clips = paths
        .iter()
        .map(|p| read_wav(p, &Default::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let rate = clips.first().ok_or("no .wav files")?.sample_rate;
    let audio_s: f64 = clips.iter().map(|c| c.seconds()).sum();
    let kinds = [
        ("kaldi-fbank", FeatureKind::Fbank, FeatureStyle::Kaldi),
        ("kaldi-mfcc", FeatureKind::Mfcc, FeatureStyle::Kaldi),
        ("librosa-logmel", FeatureKind::Fbank, FeatureStyle::Librosa),
        ("librosa-mfcc", FeatureKind::Mfcc, FeatureStyle::Librosa),
    ];
    for (name, kind, style) in kinds {
        let config = FeatureConfig {
            kind,
            style,
            n_mels: 40,
            ..Default::default()
        };
        let fx = FeatureExtractor::new(&config, rate)?;
        let mut times = Vec::new();
        let mut frames = 0;
        for _ in 0..rounds.max(1) {
            let t = Instant::now();
            frames = clips
                .iter()
                .map(|c| fx.compute(&c.samples, 0).nrows())
                .sum::<usize>();
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let s = times[times.len() / 2];
        let clips_per_s = clips.len() as f64 / s;
        if json {
            println!(
                "{{\"kind\":\"{name}\",\"clips\":{},\"frames\":{frames},\"seconds\":{s},\"clips_per_s\":{clips_per_s},\"audio_s_per_s\":{}}}",
                clips.len(),
                audio_s / s
            );
        } else {
            println!(
                "{name:<16} {:>9.0} clips/s {:>9.0} s of audio per s  ({} clips, {frames} frames, {s:.3} s)",
                clips_per_s,
                audio_s / s,
                clips.len()
            );
        }
    }
    Ok(())
}
