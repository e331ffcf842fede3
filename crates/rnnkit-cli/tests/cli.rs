//! The `rnnkit` binary end to end: verify-case output and agreement, bench JSON, exit codes.

use rnnkit::io::TensorFile;
use rnnkit::verify::compare;
use std::path::PathBuf;
use std::process::Command;

fn rnnkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rnnkit"))
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cases")
}

#[test]
fn verify_case_writes_the_contract_result() {
    let out = std::env::temp_dir().join(format!(
        "rnnkit-cli-result-{}.safetensors",
        std::process::id()
    ));
    let case = fixtures().join("gru_l2_bi_h0_varlen.safetensors");
    let status = rnnkit()
        .arg("verify-case")
        .arg(&case)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let got = TensorFile::read(&out).unwrap().f32;
    let want = TensorFile::read(&case.with_extension("expected.safetensors"))
        .unwrap()
        .f32;
    for d in compare(&got, &want).unwrap() {
        assert!(d.relative() < 1e-4, "{}: {:e}", d.name, d.relative());
    }
    assert!(got.contains_key("grad.bias_hh_l1_reverse") && got.contains_key("grad_h0"));
}

#[test]
fn bad_case_file_exits_2_with_the_file_named() {
    let junk = std::env::temp_dir().join(format!(
        "rnnkit-cli-junk-{}.safetensors",
        std::process::id()
    ));
    std::fs::write(&junk, b"{}").unwrap();
    let out = rnnkit()
        .arg("verify-case")
        .arg(&junk)
        .arg("--out")
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rnnkit-cli-junk") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn bench_json_prints_the_contract_fields() {
    let out = rnnkit()
        .args(["bench", "--json", "--threads", "1", "--case", "lstm-small"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["case"], "lstm-small");
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["ms_per_iter"].as_f64().unwrap() > 0.0);
}

#[test]
fn usage_errors_exit_2() {
    let out = rnnkit().args(["bench", "--case", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown bench case `nope`"));
    let out = rnnkit().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
