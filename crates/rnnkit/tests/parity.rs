//! Golden parity against PyTorch: every case file under `tests/fixtures/cases` (written by
//! `tools/gen_fixtures.py`, seeded; see its README) is run through the verify-case path and
//! every output and gradient tensor is compared with PyTorch's.

use rnnkit::io::TensorFile;
use rnnkit::verify::{VerifyCase, compare, worse};
use std::path::PathBuf;

/// Acceptance bounds of the engine issue: scale-relative error.
const OUTPUT_TOL: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-4;

fn case_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cases")
}

#[test]
fn every_fixture_matches_pytorch() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(case_dir())
        .expect("fixture folder")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".safetensors") && !n.ends_with(".expected.safetensors")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 64, "only {} fixtures found", cases.len());
    let mut failures = Vec::new();
    let (mut worst_out, mut worst_grad) = (0.0f64, 0.0f64);
    for case in &cases {
        let expected_path = case.with_extension("expected.safetensors");
        let want = TensorFile::read(&expected_path).unwrap().f32;
        let got = VerifyCase::read(case).unwrap().run().unwrap();
        let diffs = compare(&got, &want).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
        let mut lines = Vec::new();
        for d in &diffs {
            let is_grad = d.name.starts_with("grad");
            let tol = if is_grad { GRAD_TOL } else { OUTPUT_TOL };
            if is_grad {
                worst_grad = worse(worst_grad, d.relative());
            } else {
                worst_out = worse(worst_out, d.relative());
            }
            let flag = if d.relative() > tol { "  <-- FAIL" } else { "" };
            lines.push(format!(
                "    {:<28} max|diff| {:.3e}  scale {:.3e}  rel {:.3e}{flag}",
                d.name,
                d.max_abs,
                d.scale,
                d.relative()
            ));
            if d.relative() > tol || !d.max_abs.is_finite() {
                failures.push(case.file_name().unwrap().to_string_lossy().to_string());
            }
        }
        if failures
            .last()
            .is_some_and(|f| *f == *case.file_name().unwrap().to_string_lossy())
        {
            eprintln!("{}:\n{}", case.display(), lines.join("\n"));
        }
    }
    failures.dedup();
    println!(
        "{} cases: worst relative error {worst_out:.2e} (outputs), {worst_grad:.2e} (gradients)",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} cases differ from PyTorch: {failures:?}",
        failures.len()
    );
}
