//! Audio features against torchaudio's Kaldi compliance functions and librosa: every case of
//! `tests/fixtures/audio/manifest.json` (written by `tools/gen_audio_fixtures.py`) is computed by
//! rnnkit with the same settings and must agree within 1e-4, relative to the size of the values
//! (log-mel energies in nats or dB, cepstra), clip by clip and frame by frame.

use rnnkit::audio::{FeatureConfig, FeatureExtractor};
use rnnkit::io::TensorFile;
use std::path::PathBuf;

const TOLERANCE: f64 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio")
}

#[derive(serde::Deserialize)]
struct Manifest {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    clip: String,
    sample_rate: u32,
    features: FeatureConfig,
    shape: Vec<usize>,
}

#[test]
fn features_match_torchaudio_kaldi_and_librosa() {
    let dir = fixtures();
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let clips = TensorFile::read(&dir.join("clips.safetensors"))
        .unwrap()
        .f32;
    let expected = TensorFile::read(&dir.join("expected.safetensors"))
        .unwrap()
        .f32;
    assert!(manifest.cases.len() >= 40, "{} cases", manifest.cases.len());
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let clip = &clips[&format!("clip.{}", case.clip)];
        let want = &expected[&format!("case.{}", case.name)];
        assert_eq!(want.shape(), &case.shape[..], "{}", case.name);
        let fx = FeatureExtractor::new(&case.features, case.sample_rate).unwrap();
        let got = fx.compute(clip.as_slice().unwrap(), 0);
        if got.shape() != want.shape() {
            failures.push(format!(
                "{}: shape {:?}, want {:?}",
                case.name,
                got.shape(),
                want.shape()
            ));
            continue;
        }
        // Relative to the row's scale: a cepstrum near zero is judged against its frame's
        // largest coefficient, a log energy against itself (at least 1).
        let mut worst = (0.0f64, 0, 0);
        for (t, (g, w)) in got.outer_iter().zip(want.outer_iter()).enumerate() {
            let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs() as f64));
            for (j, (a, b)) in g.iter().zip(w.iter()).enumerate() {
                let err = (*a as f64 - *b as f64).abs() / scale;
                if err > worst.0 {
                    worst = (err, t, j);
                }
            }
        }
        if worst.0 > TOLERANCE {
            let (e, t, j) = worst;
            failures.push(format!(
                "{}: relative error {e:.2e} at frame {t}, feature {j}: {} vs {}",
                case.name,
                got[[t, j]],
                want.get([t, j]).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
