//! The `rnnkit` binary end to end: verify-case output and agreement, bench JSON, exit codes,
//! and every task trained, scored and applied through the commands a user runs.

use rnnkit::io::TensorFile;
use rnnkit::verify::compare;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// A case file that is not a safetensors file is a corrupt file: exit 1, as for a damaged
/// checkpoint, naming it.
#[test]
fn bad_case_file_exits_1_with_the_file_named() {
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
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rnnkit-cli-junk") && !err.contains("panicked"),
        "{err}"
    );
}

/// `--json` prints one line per requested case, each case once however often it is named, with
/// the contract's three fields, and `tokens_per_s × ms_per_iter / 1000` is the case's tokens per
/// iteration (time steps × batch; 1 for streaming): the two numbers time the same iterations.
#[test]
fn bench_json_prints_each_requested_case_once_with_consistent_numbers() {
    let out = rnnkit()
        .args(["bench", "--json", "--threads", "1"])
        .args(["--case", "lstm-stream,lstm-small", "--case", "lstm-small"])
        .output()
        .unwrap();
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["case", "ms_per_iter", "tokens_per_s"], "{line}");
        let case = v["case"].as_str().unwrap();
        let tokens_per_iter = match case {
            "lstm-small" => 50.0 * 16.0,
            "lstm-stream" => 1.0,
            other => panic!("case {other} was not requested: {stdout}"),
        };
        let tokens_per_s = v["tokens_per_s"].as_f64().unwrap();
        let ms_per_iter = v["ms_per_iter"].as_f64().unwrap();
        assert!(
            tokens_per_s.is_finite() && tokens_per_s > 0.0,
            "tokens_per_s: {line}"
        );
        assert!(
            ms_per_iter.is_finite() && ms_per_iter > 0.0,
            "ms_per_iter: {line}"
        );
        let implied = tokens_per_s * ms_per_iter / 1e3;
        assert!(
            (implied / tokens_per_iter - 1.0).abs() < 1e-9,
            "{line}: {implied} tokens per iteration, expected {tokens_per_iter}"
        );
        seen.push(case.to_string());
    }
    seen.sort();
    assert_eq!(seen, ["lstm-small", "lstm-stream"], "{stdout}");
}

#[test]
fn usage_errors_exit_2() {
    let out = rnnkit().args(["bench", "--case", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown bench case `nope`"));
    let out = rnnkit().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Asserts that a finished command succeeded, showing its stderr when it did not.
fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert_success(&out);
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
    assert_files(
        &run,
        &[
            "report.md",
            "sample.txt",
            "plots/loss.png",
            "plots/grad_norm.png",
        ],
    );

    // Generation with a fixed seed is reproducible, and the seed matters.
    let generate = |seed: &str| {
        let out = rnnkit()
            .args([
                "generate", "--prompt", "to be", "--length", "40", "--seed", seed, "--model",
            ])
            .arg(&run)
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b, c) = (generate("1"), generate("1"), generate("2"));
    assert!(a.starts_with("to be") && a.chars().count() > 40, "{a:?}");
    assert_eq!(a, b);
    assert_ne!(a, c);
    let run_s = run.display().to_string();
    assert_quiet_into_closed_pipe(&["generate", "--length", "40", "--model", &run_s]);

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
    // Only how long and how it trains on may change on resume; the refusal names the key.
    let refused = rnnkit()
        .args(["train", "--set", "model.hidden_size=8", "--resume"])
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--set model.hidden_size=8") && err.contains("train.epochs"),
        "{err}"
    );
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
    assert_success(&resumed);
    // What the resume changed is in the run's config and its history.
    let cfg = std::fs::read_to_string(cut.join("config.toml")).unwrap();
    assert!(cfg.contains("max_steps = 1000000"), "{cfg}");
    let history = std::fs::read_to_string(cut.join("config_history.txt")).unwrap();
    assert!(
        history.contains("--resume --set train.max_steps=1000000"),
        "{history}"
    );
    assert!(cut.join("config.initial.toml").exists());
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

/// SIGTERM (like Ctrl-C) stops `rnnkit train` at the next step boundary with a checkpoint, the
/// run's files and exit status 0; `--resume` continues from there.
#[cfg(unix)]
#[test]
fn sigterm_stops_training_with_a_checkpoint_that_resumes() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let dir = temp("sigterm");
    let mut args = tiny_run(&dir, "stopped");
    for set in ["train.epochs=1000", "train.patience=1000"] {
        args.extend(["--set".into(), set.into()]);
    }
    let child = rnnkit()
        .arg("train")
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = dir.join("stopped");
    let steps_csv = run.join("metrics/steps.csv");
    let lines = || {
        std::fs::read_to_string(&steps_csv)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while lines() < 20 {
        assert!(std::time::Instant::now() < deadline, "no training progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("stopping after this step") && err.contains("rnnkit train --resume"),
        "{err}"
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("stopped on request"), "{report}");
    assert!(run.join("checkpoints/latest.safetensors").exists());

    // The stop came long before 1000 epochs; resume and finish the epoch it was in.
    let steps = std::fs::read_to_string(&steps_csv).unwrap();
    let last = steps.lines().last().unwrap();
    let epoch: usize = last.split(',').next().unwrap().parse().unwrap();
    let resumed = rnnkit()
        .args(["train", "--quiet", "--set"])
        .arg(format!("train.epochs={}", epoch + 1))
        .arg("--resume")
        .arg(&run)
        .output()
        .unwrap();
    assert_success(&resumed);
    let epochs = std::fs::read_to_string(run.join("metrics/epochs.csv")).unwrap();
    assert_eq!(epochs.lines().count(), 1 + epoch + 1, "{epochs}");
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

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // `rnnkit config | head -0`: the reader has gone before anything is written. Rust ignores
    // SIGPIPE, so a plain `print!` would panic with exit status 101.
    assert_quiet_into_closed_pipe(&["config", "--markdown"]);
}

/// Runs `rnnkit ARGS` with its stdout a pipe whose reader has already gone, and checks that it
/// ends normally, without a panic or an error message.
fn assert_quiet_into_closed_pipe<S: AsRef<std::ffi::OsStr>>(args: &[S]) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = rnnkit()
        .args(args)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

/// Asserts that each of `files` exists under `dir`; the charts (`.png`) only when the CLI was
/// built with the `plot` feature, and not at all without it.
fn assert_files(dir: &Path, files: &[&str]) {
    for f in files {
        let drawn = cfg!(feature = "plot") || !f.ends_with(".png");
        assert_eq!(dir.join(f).exists(), drawn, "{f} in {}", dir.display());
    }
}

/// Parses a JSON file of a run directory.
fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `rnnkit` and returns (exit code, stdout, stderr).
fn run_rnnkit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = rnnkit().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Trains a classifier of three "languages" told apart by their letters (40 names each, 20% of
/// them held out for the test split) in `dir/runs/c`, and returns that run directory.
fn train_classifier(dir: &Path) -> PathBuf {
    let classes = [("Aa", "ab"), ("Bb", "xyz"), ("Cc", "mno")];
    let data = dir.join("names");
    std::fs::create_dir_all(&data).unwrap();
    for (c, (name, letters)) in classes.iter().enumerate() {
        let letters: Vec<char> = letters.chars().collect();
        let lines: String = (0..40)
            .map(|i| {
                let n = 3 + (i + c) % 4;
                (0..n)
                    .map(|j| letters[(i * 7 + j * 3) % letters.len()])
                    .collect::<String>()
                    + "\n"
            })
            .collect();
        std::fs::write(data.join(format!("{name}.txt")), lines).unwrap();
    }
    let run = dir.join("runs/c");
    let data_set = format!("data.path={}", data.display());
    let out_dir = format!("output.dir={}", dir.join("runs").display());
    let (code, _, err) = run_rnnkit(&[
        "train",
        "--quiet",
        "--set",
        "task=classify",
        "--set",
        &data_set,
        "--set",
        &out_dir,
        "--set",
        "output.name=c",
        "--set",
        "train.epochs=15",
        "--set",
        "model.hidden_size=16",
        "--set",
        "model.embedding_size=8",
        "--set",
        "train.batch_size=16",
        "--set",
        "data.valid_fraction=0.2",
        "--set",
        "data.test_fraction=0.2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    run
}

#[test]
fn classify_task_trains_classifies_and_evaluates() {
    let dir = temp("classify");
    let run = train_classifier(&dir);
    assert_files(
        &run,
        &[
            "config.toml",
            "text.json",
            "classes.json",
            "split.tsv",
            "model.safetensors",
            "metrics.json",
            "report.md",
            "plots/confusion.png",
            "plots/loss.png",
            "checkpoints/best.safetensors",
        ],
    );
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("task = \"classify\""), "{cfg}");

    let run_s = run.display().to_string();
    let (code, out, err) =
        run_rnnkit(&["classify", "--model", &run_s, "--top", "2", "abab", "xyzzy"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_quiet_into_closed_pipe(&["classify", "--model", &run_s, "abab"]);
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 5, "{line}"); // text, 2 × (class, probability)
        assert!(["Aa", "Bb", "Cc"].contains(&fields[1]), "{line}");
        let p: f64 = fields[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&p), "{line}");
    }

    let outputs = dir.join("outputs.safetensors");
    let outputs_s = outputs.display().to_string();
    let (code, out, err) = run_rnnkit(&[
        "evaluate",
        "--model",
        &run_s,
        "--json",
        "--outputs",
        &outputs_s,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(m["examples"], 24, "{m}"); // 20% of 120, stratified
    // The model learned: it beats always answering the test split's most common class, and
    // `evaluate` scores the held-out split as training did.
    let split = std::fs::read_to_string(run.join("split.tsv")).unwrap();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for line in split.lines().filter(|l| l.starts_with("test\t")) {
        *counts.entry(line.split('\t').nth(1).unwrap()).or_default() += 1;
    }
    let test_size: usize = counts.values().sum();
    assert_eq!(test_size, 24, "{split}");
    let majority = *counts.values().max().unwrap() as f64 / test_size as f64;
    let accuracy = m["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > majority,
        "accuracy {accuracy} does not beat the majority class ({majority}): {m}"
    );
    // Batched differently, a near tie could flip one example.
    let trained = read_json(&run.join("metrics.json"))["accuracy"]
        .as_f64()
        .unwrap();
    assert!(
        (trained - accuracy).abs() <= 1.0 / 24.0 + 1e-12,
        "training wrote accuracy {trained}, evaluate says {accuracy}"
    );
    let t = TensorFile::read(&outputs).unwrap();
    let (ids, logits) = (&t.i64["input_ids"], &t.f32["logits"]);
    assert_eq!(logits.shape(), &[ids.shape()[1], 3]);
    assert_eq!(t.i64["lengths"].len(), ids.shape()[1]);

    // A classifier cannot generate, and says what to use instead.
    let (code, _, err) = run_rnnkit(&["generate", "--model", &run_s]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("classify"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forecast_task_trains_and_forecasts_a_csv() {
    let dir = temp("forecast");
    let csv = dir.join("series.csv");
    let rows: String = (0..240)
        .map(|i| {
            let month = i % 12 + 1;
            let year = 2000 + i / 12;
            let y = 10.0 + 0.05 * i as f64 + (i as f64 * std::f64::consts::PI / 6.0).sin();
            format!("{year}-{month:02}-01,{y}\n")
        })
        .collect();
    std::fs::write(&csv, format!("month,y\n{rows}")).unwrap();
    let run = dir.join("runs/f");
    let (code, _, err) = run_rnnkit(&[
        "train",
        "--quiet",
        "--set",
        "task=forecast",
        "--set",
        &format!("data.path={}", csv.display()),
        "--set",
        "data.target_columns=[\"y\"]",
        "--set",
        "data.timestamp_column=month",
        "--set",
        "data.lookback=24",
        "--set",
        "data.horizon=3",
        "--set",
        "data.season=12",
        "--set",
        "data.missing=error",
        "--set",
        "data.transform=diff",
        "--set",
        &format!("output.dir={}", dir.join("runs").display()),
        "--set",
        "output.name=f",
        "--set",
        "train.epochs=10",
        "--set",
        "train.optimizer.lr=0.01",
        "--set",
        "model.hidden_size=8",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_files(
        &run,
        &[
            "series.json",
            "model.safetensors",
            "metrics.json",
            "plots/forecast.png",
        ],
    );
    let run_s = run.display().to_string();
    let out_csv = dir.join("next.csv");
    let png = dir.join("next.png");
    let (code, _, err) = run_rnnkit(&[
        "forecast",
        "--model",
        &run_s,
        "--input",
        &csv.display().to_string(),
        "--out",
        &out_csv.display().to_string(),
        "--plot",
        &png.display().to_string(),
    ]);
    if cfg!(feature = "plot") {
        assert_eq!(code, Some(0), "{err}");
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    } else {
        // Built without charts, --plot is refused once the forecast is written.
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("--plot") && err.contains("`plot` feature"),
            "{err}"
        );
    }
    let text = std::fs::read_to_string(&out_csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "step,timestamp,y");
    assert_eq!(lines.len(), 1 + 3, "{text}"); // header + horizon rows
    assert!(lines[1].starts_with("1,2020-01-01,"), "{text}"); // the month after the last
    assert!(lines[3].starts_with("3,2020-03-01,"), "{text}");

    let (code, out, err) = run_rnnkit(&["evaluate", "--model", &run_s, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // The model learned: on the test split it beats repeating the last value (naive) and the
    // value a season back (seasonal naive), and `evaluate` agrees with what training wrote.
    let rmse = m["rmse"].as_f64().unwrap();
    let naive = m["naive_rmse"].as_f64().unwrap();
    let seasonal = m["seasonal_naive_rmse"].as_f64().unwrap();
    assert!(rmse < naive && rmse < seasonal, "{m}");
    let trained = read_json(&run.join("metrics.json"));
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-6 * b;
    assert!(close(&trained["model"]["rmse"], rmse), "{trained}\n{m}");
    assert!(close(&trained["naive"]["rmse"], naive), "{trained}\n{m}");
    // The forecast after the end of the file is closer to the series' continuation than the
    // naive forecast's typical error.
    for (h, line) in lines[1..].iter().enumerate() {
        let i = (240 + h) as f64;
        let want = 10.0 + 0.05 * i + (i * std::f64::consts::PI / 6.0).sin();
        let got: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert!(
            (got - want).abs() < naive / 2.0,
            "step {}: {got}, the series continues with {want}\n{text}",
            h + 1
        );
    }

    // Too little history for one lookback: a usage error naming the file, not a panic.
    let short = dir.join("short.csv");
    std::fs::write(&short, "month,y\n2000-01-01,1\n2000-02-01,2\n").unwrap();
    let (code, _, err) = run_rnnkit(&[
        "forecast",
        "--model",
        &run_s,
        "--input",
        &short.display().to_string(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("short.csv") && err.contains("lookback"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lab_vanishing_writes_its_report_and_charts() {
    let dir = temp("lab");
    let out = dir.join("lab");
    let (code, _, err) = run_rnnkit(&[
        "lab",
        "vanishing",
        "--quick",
        "--quiet",
        "--lengths",
        "12",
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_files(
        &out,
        &[
            "report.md",
            "results.json",
            "grad_vs_distance_init.png",
            "grad_vs_distance_trained.png",
            "learning_T12.png",
            "clipping.png",
            "tbptt.png",
            "explosion.png",
        ],
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let arms = results.as_array().unwrap();
    assert_eq!(
        arms.len(),
        3 + 3 + 2 + 3,
        "three cells, three without clipping, two large-init, three truncated"
    );
    // The gradient of the last step's loss fades going back in time at PyTorch's init, and
    // grows with the recurrent weights scaled up four times.
    let first_last = |a: &serde_json::Value| {
        let n = a["grad_init"]["norm"].as_array().unwrap();
        (n[0].as_f64().unwrap(), n[n.len() - 1].as_f64().unwrap())
    };
    let (n0, nf) = first_last(&arms[0]);
    assert!(nf < 0.1 * n0, "tanh RNN: {n0} → {nf}");
    let (n0, nf) = first_last(&arms[6]);
    assert!(nf > n0, "large init: {n0} → {nf}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("| LSTM 64 | ") && report.contains("decay per"),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn classify_reads_texts_from_a_file_and_from_stdin() {
    let dir = temp("classify-input");
    let run = train_classifier(&dir);
    let run_s = run.display().to_string();
    // One text per line; blank lines are skipped and the texts trimmed.
    let lines = "abab\n\nxyzzy\n  mnom  \n";
    let input = dir.join("texts.txt");
    std::fs::write(&input, lines).unwrap();
    let (code, from_file, err) = run_rnnkit(&[
        "classify",
        "--model",
        &run_s,
        "--input",
        &input.display().to_string(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let texts: Vec<&str> = from_file
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(texts, ["abab", "xyzzy", "mnom"], "{from_file}");
    // The same texts as arguments give the same lines.
    let (code, from_args, err) =
        run_rnnkit(&["classify", "--model", &run_s, "abab", "xyzzy", "mnom"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(from_file, from_args);

    let mut child = rnnkit()
        .args(["classify", "--model", &run_s, "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), from_file);

    let (code, _, err) = run_rnnkit(&["classify", "--model", &run_s, "--input", "/nonexistent"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tiny character-level language model, trained once (on the text of [`tiny_run`]) and shared
/// by the tests that only read its run directory.
fn shared_lm_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = temp("shared-lm");
        let out = rnnkit()
            .args(["train", "--quiet"])
            .args(tiny_run(&dir, "lm"))
            .output()
            .unwrap();
        assert_success(&out);
        dir.join("lm")
    })
}

/// The number of entries in the vocabulary a run saved in `text.json`.
fn vocab_size(run: &Path) -> usize {
    read_json(&run.join("text.json"))["vocab"]["tokens"]
        .as_array()
        .unwrap()
        .len()
}

/// A parameter row of `rnnkit inspect`: name, shape and count.
type ParamRow = (String, Vec<usize>, usize);

/// The parameter rows of `rnnkit inspect TARGET`, its `total` row, and the whole output.
fn inspect_table(target: &Path) -> (Vec<ParamRow>, usize, String) {
    let (code, out, err) = run_rnnkit(&["inspect", &target.display().to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let mut rows = Vec::new();
    let mut total = None;
    let mut in_table = false;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"parameter") {
            in_table = true;
        } else if in_table && fields.first() == Some(&"total") {
            total = Some(fields[1].parse().unwrap());
            break;
        } else if in_table {
            let (name, rest) = line.split_once(' ').unwrap();
            let (shape, count) = rest.trim().rsplit_once(' ').unwrap();
            let shape = shape.trim().trim_matches(['[', ']']);
            let shape = shape.split(", ").map(|d| d.parse().unwrap()).collect();
            rows.push((name.to_string(), shape, count.trim().parse().unwrap()));
        }
    }
    (
        rows,
        total.unwrap_or_else(|| panic!("no total row: {out}")),
        out,
    )
}

#[test]
fn inspect_lists_parameter_names_shapes_and_total() {
    let run = shared_lm_run();
    let v = vocab_size(run);
    // embedding_size 8, hidden_size 16, one LSTM layer (4 gates), decoder with bias.
    let want: Vec<ParamRow> = [
        ("decoder.bias", vec![v]),
        ("decoder.weight", vec![v, 16]),
        ("embedding.weight", vec![v, 8]),
        ("rnn.bias_hh_l0", vec![64]),
        ("rnn.bias_ih_l0", vec![64]),
        ("rnn.weight_hh_l0", vec![64, 16]),
        ("rnn.weight_ih_l0", vec![64, 8]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s.clone(), s.iter().product()))
    .collect();
    let want_total = 25 * v + 64 * (8 + 16 + 2);

    let (rows, total, out) = inspect_table(run);
    assert_eq!(rows, want, "{out}");
    assert_eq!(total, want_total, "{out}");
    assert!(out.contains("config.toml"), "{out}");
    // A checkpoint's optimizer and carried state are counted apart, not as parameters.
    assert!(out.contains("checkpoint tensors not listed"), "{out}");

    let (rows, total, out) = inspect_table(&run.join("model.safetensors"));
    assert_eq!(rows, want, "{out}");
    assert_eq!(total, want_total, "{out}");
    assert!(!out.contains("not listed"), "{out}");
}

#[test]
fn evaluate_scores_a_language_model_on_its_validation_text_and_on_a_file() {
    let run = shared_lm_run();
    let run_s = run.display().to_string();
    let evaluate = |extra: &[&str]| {
        let mut args = vec!["evaluate", "--model", &run_s, "--json"];
        args.extend(extra);
        let (code, out, err) = run_rnnkit(&args);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let v = vocab_size(run) as f64;

    // Without --data: the last 10% (data.valid_fraction) of the training file, which is ASCII.
    let m = evaluate(&[]);
    assert_eq!(m["task"], "lm", "{m}");
    assert!(m["data"].as_str().unwrap().contains("validation"), "{m}");
    let text_len = std::fs::read_to_string(run.parent().unwrap().join("tiny.txt"))
        .unwrap()
        .len();
    let tokens = m["tokens"].as_u64().unwrap() as usize;
    assert!(tokens.abs_diff(text_len / 10) <= 1, "{tokens} tokens: {m}");
    let loss = m["loss_nats_per_token"].as_f64().unwrap();
    let perplexity = m["perplexity"].as_f64().unwrap();
    assert!((perplexity - loss.exp()).abs() < 1e-9 * perplexity, "{m}");
    assert!(
        (m["bits_per_token"].as_f64().unwrap() - loss / std::f64::consts::LN_2).abs() < 1e-9,
        "{m}"
    );
    // Learned: far better than a uniform guess over the vocabulary (perplexity v).
    assert!(
        perplexity < v / 4.0,
        "perplexity {perplexity}, vocabulary {v}"
    );

    // With --data: every character of the file is a token, and text like the training text
    // scores better than the same characters reversed.
    let dir = temp("evaluate-lm");
    let like: String = (1000..1010)
        .map(|i| format!("line {i}: to be or not to be, that is the question.\n"))
        .collect();
    let reversed: String = like.chars().rev().collect();
    let (like_path, reversed_path) = (dir.join("like.txt"), dir.join("reversed.txt"));
    std::fs::write(&like_path, &like).unwrap();
    std::fs::write(&reversed_path, &reversed).unwrap();
    let a = evaluate(&["--data", &like_path.display().to_string()]);
    let b = evaluate(&["--data", &reversed_path.display().to_string()]);
    assert_eq!(a["data"], like_path.display().to_string(), "{a}");
    assert_eq!(a["tokens"].as_u64(), Some(like.len() as u64), "{a}");
    assert_eq!(b["tokens"].as_u64(), Some(like.len() as u64), "{b}");
    let (pa, pb) = (
        a["perplexity"].as_f64().unwrap(),
        b["perplexity"].as_f64().unwrap(),
    );
    assert!(pa < v / 4.0 && pa < pb / 2.0, "{a}\n{b}");

    // The plain output carries the same numbers as lines.
    let (code, out, err) = run_rnnkit(&["evaluate", "--model", &run_s]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l == format!("perplexity: {perplexity:.6}")),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A failure while running (here a checkpoint without one of the model's tensors, beside a
/// config that is fine) exits with status 1, where a usage error exits with 2.
#[test]
fn a_runtime_failure_exits_1() {
    let run = shared_lm_run();
    let dir = temp("runtime-failure");
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    for f in ["config.toml", "text.json"] {
        std::fs::copy(run.join(f), dir.join(f)).unwrap();
    }
    let dir_s = dir.display().to_string();
    // No checkpoint at all: the user pointed at the wrong directory, a usage error.
    let (code, _, err) = run_rnnkit(&["evaluate", "--model", &dir_s]);
    assert_eq!(code, Some(2), "{err}");

    let mut checkpoint = TensorFile::read(&run.join("checkpoints/best.safetensors")).unwrap();
    assert!(checkpoint.f32.remove("rnn.weight_hh_l0").is_some());
    checkpoint
        .write(&dir.join("checkpoints/best.safetensors"))
        .unwrap();
    for command in ["evaluate", "generate"] {
        let (code, _, err) = run_rnnkit(&[command, "--model", &dir_s]);
        assert_eq!(code, Some(1), "{command}: {err}");
        assert!(
            err.contains("weight_hh_l0") && !err.contains("panicked"),
            "{command}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn synthetic_task_trains_and_reports_its_test_loss() {
    let dir = temp("synthetic");
    let (code, _, err) = run_rnnkit(&[
        "train",
        "--quiet",
        "--set",
        "task=synthetic",
        "--set",
        "data.length=10",
        "--set",
        "data.train_size=2000",
        "--set",
        "data.valid_size=200",
        "--set",
        "data.test_size=200",
        "--set",
        "model.hidden_size=16",
        "--set",
        "train.epochs=20",
        "--set",
        "train.optimizer.lr=0.01",
        "--set",
        &format!("output.dir={}", dir.display()),
        "--set",
        "output.name=s",
        "--set",
        "output.threads=1",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let run = dir.join("s");
    for f in [
        "config.toml",
        "model.safetensors",
        "report.md",
        "checkpoints/best.safetensors",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("task = \"synthetic\""), "{cfg}");
    let m = read_json(&run.join("metrics.json"));
    assert_eq!(m["kind"], "adding", "{m}");
    assert_eq!(m["length"], 10, "{m}");
    // The adding problem is learned: the test loss is a small part of the loss of the best
    // memoryless guess.
    let test_loss = m["test_loss"].as_f64().unwrap();
    let baseline = m["baseline"].as_f64().unwrap();
    assert!(
        test_loss.is_finite() && test_loss < 0.1 * baseline,
        "test loss {test_loss}, baseline {baseline}: {m}"
    );
    // There is no data file to evaluate on; `evaluate` says where the score is.
    let (code, _, err) = run_rnnkit(&["evaluate", "--model", &run.display().to_string()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("metrics.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A second `train` into a run's directory is refused (exit 2, saying what to do), never a
/// silent overwrite; `output.overwrite = true` replaces it without stale files; while one
/// process trains a run, another may neither resume nor replace it, and is told the owner's pid.
#[cfg(unix)]
#[test]
fn a_run_directory_is_never_clobbered() {
    let dir = temp("clobber");
    let args = tiny_run(&dir, "once");
    assert_success(&rnnkit().arg("train").args(&args).output().unwrap());
    let run = dir.join("once");
    let stale = run.join("checkpoints/stale.safetensors");
    std::fs::write(&stale, b"left from the first run").unwrap();

    let again = rnnkit().arg("train").args(&args).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("holds a run already")
            && err.contains("--resume")
            && err.contains("overwrite"),
        "{err}"
    );
    assert!(stale.exists(), "a refused run touched the old one");

    let replaced = rnnkit()
        .arg("train")
        .args(&args)
        .args([
            "--set",
            "output.overwrite=true",
            "--set",
            "model.hidden_size=12",
        ])
        .output()
        .unwrap();
    assert_success(&replaced);
    assert!(!stale.exists(), "overwrite kept a file of the old run");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("hidden_size = 12"), "{cfg}");

    // A long run holds the directory; a second process is refused with its pid.
    let mut long = args.clone();
    long.extend(["--set", "train.epochs=1000", "--set", "output.name=busy"].map(String::from));
    let mut child = rnnkit()
        .arg("train")
        .args(&long)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let busy = dir.join("busy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !busy.join("metrics/steps.csv").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the long run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = format!("pid {}", child.id());
    for extra in [
        vec!["--resume".to_string(), busy.display().to_string()],
        [&long[..], &["--set".into(), "output.overwrite=true".into()]].concat(),
    ] {
        let out = rnnkit().arg("train").args(&extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&pid), "{err}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn export_writes_an_onnx_model_that_tract_runs_as_rnnkit_evaluates() {
    use tract_onnx::prelude::*;
    let run = shared_lm_run();
    let dir = temp("export");
    let model = dir.join("lm.onnx");
    let run_s = run.display().to_string();
    let model_s = model.display().to_string();
    let (code, out, err) = run_rnnkit(&[
        "export",
        "--model",
        &run_s,
        "--out",
        &model_s,
        "--no-lengths",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("inputs: input, h0, c0"), "{out}");

    // The preprocessing beside it carries the run's vocabulary.
    let prep = read_json(&dir.join("lm.preprocessing.json"));
    assert_eq!(prep["format"], "rnnkit-onnx-preprocessing");
    assert_eq!(prep["task"], "lm");
    assert_eq!(
        prep["text"]["vocab"]["tokens"].as_array().unwrap().len(),
        vocab_size(run)
    );

    // tract runs it on `rnnkit evaluate --outputs`'s batch and gets rnnkit's logits.
    let outputs = dir.join("outputs.safetensors");
    let outputs_s = outputs.display().to_string();
    let (code, _, err) = run_rnnkit(&["evaluate", "--model", &run_s, "--outputs", &outputs_s]);
    assert_eq!(code, Some(0), "{err}");
    let file = TensorFile::read(&outputs).unwrap();
    let ids: Vec<i64> = file.i64["input_ids"].iter().copied().collect();
    let want: Vec<f32> = file.f32["logits"].iter().copied().collect();
    let steps = ids.len();
    let (layers, hidden) = (1, 16);
    let input = Tensor::from_shape(&[steps, 1], &ids).unwrap();
    let zeros = Tensor::zero::<f32>(&[layers, 1, hidden]).unwrap();
    let plan = tract_onnx::onnx()
        .model_for_path(&model)
        .unwrap()
        .with_input_fact(0, InferenceFact::dt_shape(i64::datum_type(), [steps, 1]))
        .unwrap()
        .with_input_fact(
            1,
            InferenceFact::dt_shape(f32::datum_type(), [layers, 1, hidden]),
        )
        .unwrap()
        .with_input_fact(
            2,
            InferenceFact::dt_shape(f32::datum_type(), [layers, 1, hidden]),
        )
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let got = plan
        .run(tvec!(
            input.into_tvalue(),
            zeros.clone().into_tvalue(),
            zeros.into_tvalue()
        ))
        .unwrap();
    let got = got[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs() + 1e-6,
            "tract {g}, rnnkit {w}"
        );
    }

    // Mistakes are usage errors (exit 2) that say what to do.
    let (code, _, err) = run_rnnkit(&["export", "--model", &run_s, "--format", "tflite"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("onnx"), "{err}");
    let dir_s = dir.display().to_string();
    let (code, _, err) = run_rnnkit(&["export", "--model", &run_s, "--out", &dir_s]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("model.onnx"), "{err}");
    let (code, _, err) = run_rnnkit(&["export", "--model", "/nonexistent/run"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/run"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
