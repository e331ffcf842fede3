//! bfloat16 parity against PyTorch's autocast: every case under `tests/fixtures/bf16` (written by
//! `tools/gen_bf16_fixtures.py`) runs in rnnkit with precision bf16, forward and backward. Its
//! error against the exact (float64) answer must be of the size of autocast's own error against
//! it, tensor by tensor, and the two bf16 answers must be close to each other. The f32 path is
//! held to 1e-5 by `tests/parity.rs`; here, a bf16 run that silently stayed f32 would fail the
//! check that bf16 rounding is visible.

use rnnkit::Precision;
use rnnkit::io::TensorFile;
use rnnkit::verify::{VerifyCase, compare, worse};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// rnnkit's error may be this many times autocast's, plus [`FLOOR`]: the two round in different
/// places (oneDNN keeps `h` in bf16 between steps; rnnkit rounds it as it enters a product).
const FACTOR: f64 = 2.0;
const FLOOR: f64 = 3e-3;

fn case_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bf16")
}

fn relative_errors(
    got: &BTreeMap<String, ndarray::ArrayD<f32>>,
    want: &BTreeMap<String, ndarray::ArrayD<f32>>,
) -> BTreeMap<String, f64> {
    compare(got, want)
        .unwrap()
        .into_iter()
        .map(|d| (d.name.clone(), d.relative()))
        .collect()
}

#[test]
fn bf16_is_as_close_to_exact_as_pytorch_autocast() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(case_dir())
        .expect("fixture folder")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".safetensors") && n.matches('.').count() == 1
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 18,
        "only {} bf16 fixtures found",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let read = |ext: &str| TensorFile::read(&case.with_extension(ext)).unwrap().f32;
        let (exact, autocast) = (read("expected.safetensors"), read("autocast.safetensors"));
        let verify = VerifyCase::read(case).unwrap();
        let bf16 = verify.run_in(Precision::Bf16).unwrap();
        let ours = relative_errors(&bf16, &exact);
        let theirs = relative_errors(&autocast, &exact);
        let between = relative_errors(&bf16, &autocast);
        let name = case.file_stem().unwrap().to_string_lossy().to_string();
        // A ReLU's kink: bf16 rounding flips which units are active, so which tensor's error is
        // large is chance, for autocast as for rnnkit. Those cases compare the worst tensors.
        let per_tensor = !name.contains("rnn_relu");
        let their_worst = theirs.values().copied().fold(0.0, worse);
        let mut worst = 0.0f64;
        for (tensor, &e) in &ours {
            let reference = if per_tensor {
                theirs[tensor]
            } else {
                their_worst
            };
            let bound = FACTOR * reference + FLOOR;
            worst = worse(worst, e);
            let flag = if e > bound { "  <-- FAIL" } else { "" };
            println!(
                "{name} {tensor:<24} rnnkit {e:.2e}  autocast {:.2e}  between {:.2e}{flag}",
                theirs[tensor], between[tensor]
            );
            if e > bound {
                failures.push(format!("{name}: {tensor} {e:.3e} > {bound:.3e}"));
            }
        }
        // bf16 rounding must show: an f32 run is within 1e-5 of exact on these cases.
        if worst < 1e-4 {
            failures.push(format!("{name}: worst error {worst:.2e}, no sign of bf16"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
