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

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tiny text and the `--set` flags of a seconds-long run on it.
fn tiny_run(dir: &std::path::Path, name: &str) -> Vec<String> {
    let text: String = (0..400)
        .map(|i| format!("line {i}: to be or not to be, that is the question.\n"))
        .collect();
    let data = dir.join("tiny.txt");
    std::fs::write(&data, text).unwrap();
    [
        format!("data.path={}", data.display()),
        "model.hidden_size=16".into(),
        "model.embedding_size=8".into(),
        "model.num_layers=1".into(),
        "train.batch_size=8".into(),
        "train.eval_batch_size=8".into(),
        "train.bptt=20".into(),
        "train.epochs=2".into(),
        format!("output.dir={}", dir.display()),
        format!("output.name={name}"),
        "output.threads=1".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

#[test]
fn train_writes_a_run_directory_and_resumes_exactly() {
    let dir = temp("train");
    let out = rnnkit()
        .arg("train")
        .args(tiny_run(&dir, "full"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = dir.join("full");
    for f in [
        "config.toml",
        "text.json",
        "metrics/epochs.csv",
        "checkpoints/best.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("hidden_size = 16") && config.contains("bptt = 20"),
        "{config}"
    );
    for f in [
        "report.md",
        "sample.txt",
        "plots/loss.png",
        "plots/grad_norm.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }

    // Generation with a fixed seed is reproducible, and the seed matters.
    let generate = |seed: &str| {
        let out = rnnkit()
            .args([
                "generate", "--prompt", "to be", "--length", "40", "--seed", seed, "--model",
            ])
            .arg(&run)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b, c) = (generate("1"), generate("1"), generate("2"));
    assert!(a.starts_with("to be") && a.chars().count() > 40, "{a:?}");
    assert_eq!(a, b);
    assert_ne!(a, c);

    // Stop after 5 steps, resume, and end where the uninterrupted run ended.
    let mut args = tiny_run(&dir, "cut");
    args.extend(["--set".into(), "train.max_steps=5".into()]);
    assert!(
        rnnkit()
            .arg("train")
            .args(&args)
            .status()
            .unwrap()
            .success()
    );
    let cut = dir.join("cut");
    let resumed = rnnkit()
        .args([
            "train",
            "--quiet",
            "--set",
            "train.max_steps=1000000",
            "--resume",
        ])
        .arg(&cut)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let a = TensorFile::read(&run.join("checkpoints/latest.safetensors"))
        .unwrap()
        .f32;
    let b = TensorFile::read(&cut.join("checkpoints/latest.safetensors"))
        .unwrap()
        .f32;
    for (k, v) in &a {
        if !k.starts_with("optim.") {
            assert!(*v == b[k], "{k} differs after resume");
        }
    }
}

#[test]
fn train_config_errors_name_the_key_and_exit_2() {
    let dir = temp("badcfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, "[model]\nhiden_size = 32\n").unwrap();
    let out = rnnkit()
        .arg("train")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hiden_size") && err.contains("bad.toml"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let out = rnnkit()
        .args(["train", "--set", "train.epochs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key=value"));
}

#[test]
fn docs_config_md_lists_the_code_defaults() {
    let out = rnnkit().args(["config", "--markdown"]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md"),
    )
    .unwrap();
    assert!(
        doc.contains(&table),
        "docs/config.md is stale: regenerate its table with `rnnkit config --markdown`"
    );
}
