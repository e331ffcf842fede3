//! Hostile and careless input, end to end: one test per finding of the probe in issue 19
//! (oversized configs, corrupt checkpoints, divergence, empty labels, wrong reports, exit
//! codes). Run directories never clobbered and `--resume` overrides are in `cli.rs`.
//!
//! `RNNKIT_TEST_BIN=/path/to/rnnkit cargo test --test hostile` runs them against another
//! build (e.g. an older one, to see each fail there).

use rnnkit::io::TensorFile;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn bin() -> PathBuf {
    std::env::var_os("RNNKIT_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rnnkit")))
}

/// What a command did: its exit code, its stderr, and how long it took.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
}

fn ran(out: Output, started: Instant) -> Ran {
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Runs `rnnkit args` under a 2 GiB address-space limit (`ulimit -v`) and a 10 s timeout
/// (`timeout`), as the acceptance asks: an input that aborts, allocates past the limit or hangs
/// shows as a code other than the one expected.
fn rnnkit_limited(args: &[&str]) -> Ran {
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 2097152 && exec timeout 10 "$0" "$@""#)
        .arg(bin())
        .args(args)
        .output()
        .unwrap();
    ran(out, started)
}

fn rnnkit(args: &[&str]) -> Ran {
    let started = Instant::now();
    ran(Command::new(bin()).args(args).output().unwrap(), started)
}

/// Asserts the exit code, that nothing panicked or leaked debug text, and that the message
/// holds each of `words`.
fn assert_refused(r: &Ran, code: i32, words: &[&str], what: &str) {
    assert_eq!(r.code, Some(code), "{what}: {}", r.stderr);
    for w in words {
        assert!(r.stderr.contains(w), "{what}: no `{w}` in {}", r.stderr);
    }
    for leak in ["panicked", "RUST_BACKTRACE", "Some(", "None"] {
        assert!(!r.stderr.contains(leak), "{what}: `{leak}` in {}", r.stderr);
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `--set` flags of a seconds-long language-model run on a tiny text in `dir`.
fn tiny_lm(dir: &Path, name: &str) -> Vec<String> {
    let text: String = (0..400)
        .map(|i| format!("line {i}: to be or not to be, that is the question.\n"))
        .collect();
    let data = dir.join("tiny.txt");
    std::fs::write(&data, text).unwrap();
    sets(&[
        &format!("data.path={}", data.display()),
        "model.hidden_size=16",
        "model.embedding_size=8",
        "model.num_layers=1",
        "train.batch_size=8",
        "train.eval_batch_size=8",
        "train.bptt=20",
        "train.epochs=2",
        &format!("output.dir={}", dir.display()),
        &format!("output.name={name}"),
        "output.threads=1",
    ])
}

fn sets(pairs: &[&str]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|s| ["--set".to_string(), s.to_string()])
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Finding 3: sizes that would not fit are refused (exit 2) with the estimate, before anything
/// is allocated and before a run directory is made; threads are bounded.
#[test]
fn oversized_configs_are_refused_before_allocating() {
    let dir = temp("oversized");
    let out = format!("output.dir={}", dir.display());
    let cases: [(&[&str], &str); 6] = [
        (&["model.num_layers=1000000"], "memory is available"),
        (&["model.hidden_size=30000"], "memory is available"),
        (
            &["task=synthetic", "data.length=1000000000"],
            "memory is available",
        ),
        (
            &["task=synthetic", "train.batch_size=100000000"],
            "memory is available",
        ),
        (&["train.batch_size=100000000"], "train.batch_size"),
        (&["output.threads=100000"], "threads"),
    ];
    for (set, words) in cases {
        let mut args = vec!["train".to_string(), "--quiet".into()];
        args.extend(sets(set));
        args.extend(sets(&[&out]));
        let r = rnnkit_limited(&strs(&args));
        assert_refused(&r, 2, &[words], &format!("{set:?}"));
        assert!(r.seconds < 10.0, "{set:?} took {} s", r.seconds);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "{set:?} left a run directory: {left:?}");
    }
}

/// A tiny language-model run, trained once for the tests that damage its files.
fn trained_lm(dir: &Path) -> PathBuf {
    let args = tiny_lm(dir, "good");
    let mut all = vec!["train", "--quiet"];
    all.extend(strs(&args));
    let r = rnnkit(&all);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    dir.join("good")
}

/// A way to damage a checkpoint file in place.
type Damage = dyn Fn(&Path);

/// Copies the run `good` to `dir/name`, applying `damage` to both of its checkpoints.
fn damaged_copy(good: &Path, name: &str, damage: impl Fn(&Path)) -> PathBuf {
    let run = good.parent().unwrap().join(name);
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    for f in ["config.toml", "text.json", "model.safetensors"] {
        std::fs::copy(good.join(f), run.join(f)).unwrap();
    }
    for f in ["best", "latest"] {
        let to = run.join(format!("checkpoints/{f}.safetensors"));
        std::fs::copy(good.join(format!("checkpoints/{f}.safetensors")), &to).unwrap();
        damage(&to);
    }
    run
}

/// Finding 4 (and 9's "truncated exits 2, wrong shape 1"): every kind of damaged checkpoint
/// is refused by every command with exit 1, naming the file and what is wrong; a resume from
/// NaN weights writes nothing over the good `model.safetensors`.
#[test]
fn damaged_checkpoints_are_refused_the_same_way_by_every_command() {
    let dir = temp("damaged");
    let good = trained_lm(&dir);
    let flip = |p: &Path| {
        let mut b = std::fs::read(p).unwrap();
        let mid = b.len() - b.len() / 4;
        for x in &mut b[mid..mid + 64] {
            *x ^= 0xff;
        }
        std::fs::write(p, b).unwrap();
    };
    let nan = |p: &Path| {
        let mut f = TensorFile::read(p).unwrap();
        f.f32.get_mut("rnn.weight_hh_l0").unwrap()[[0, 0]] = f32::NAN;
        f.write(p).unwrap(); // with a checksum of the NaN: only the finite check can see it
    };
    let truncate = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        std::fs::write(p, &b[..b.len() / 2]).unwrap();
    };
    let reshape = |p: &Path| {
        let mut f = TensorFile::read(p).unwrap();
        let w = f.f32.remove("rnn.weight_hh_l0").unwrap();
        let (r, c) = (w.shape()[0], w.shape()[1]);
        let w = w.into_shape_with_order(vec![r / 2, c * 2]).unwrap();
        f.f32.insert("rnn.weight_hh_l0".into(), w);
        f.write(p).unwrap();
    };
    let cases: [(&str, &Damage, &str); 4] = [
        ("flipped", &flip, "is damaged"),
        ("nan", &nan, "non-finite"),
        ("truncated", &truncate, "not a valid safetensors file"),
        ("reshaped", &reshape, "shape"),
    ];
    let model_before = std::fs::read(good.join("model.safetensors")).unwrap();
    for (name, damage, words) in cases {
        let run = damaged_copy(&good, name, damage);
        let run_s = run.display().to_string();
        let commands: [&[&str]; 3] = [
            &["evaluate", "--model", &run_s],
            &["generate", "--model", &run_s, "--length", "5"],
            &["train", "--quiet", "--resume", &run_s],
        ];
        for args in commands {
            let r = rnnkit(args);
            assert_refused(&r, 1, &[words, "checkpoints/"], &format!("{name} {args:?}"));
        }
        if name != "reshaped" {
            // `inspect` shows any well-formed file; it cannot know the shapes it should have.
            let r = rnnkit(&["inspect", &run_s]);
            assert_refused(&r, 1, &[words], &format!("{name} inspect"));
        }
        let model = std::fs::read(run.join("model.safetensors")).unwrap();
        assert_eq!(
            model, model_before,
            "{name}: model.safetensors was rewritten"
        );
    }
}

/// Finding 5: a loss that runs away (SGD at lr 1e6: ~1e6 nats/token where a uniform guess is
/// ~3) stops the run with exit 1 instead of keeping it as "best"; the report says so.
#[test]
fn a_runaway_loss_stops_the_run_and_is_never_best() {
    let dir = temp("runaway");
    let mut args = vec!["train".to_string(), "--quiet".into()];
    args.extend(tiny_lm(&dir, "sgd"));
    args.extend(sets(&[
        "train.optimizer.kind=sgd",
        "train.optimizer.lr=1e6",
        "train.epochs=3",
    ]));
    let r = rnnkit(&strs(&args));
    assert_refused(&r, 1, &["diverged", "diverge_factor"], "lr 1e6");
    let run = dir.join("sgd");
    assert!(!run.join("checkpoints/best.safetensors").exists());
    assert!(!run.join("model.safetensors").exists());
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("failed: training diverged"), "{report}");
}

/// A labelled CSV in `dir` with the given rows (`text,label`).
fn csv(dir: &Path, name: &str, rows: &[(&str, &str)]) -> PathBuf {
    let body: String = rows.iter().map(|(t, l)| format!("{t},{l}\n")).collect();
    let p = dir.join(name);
    std::fs::write(&p, format!("text,label\n{body}")).unwrap();
    p
}

/// Finding 7: an empty label is an error naming its line (not a class called ""), and so is
/// an empty text; neither leaves a run directory.
#[test]
fn empty_labels_and_texts_are_errors_naming_the_line() {
    let dir = temp("empty-labels");
    let mut rows: Vec<(&str, &str)> = (0..30).map(|i| (["abc", "xyz"][i % 2], "a")).collect();
    rows[3] = ("abc", "");
    let no_label = csv(&dir, "no-label.csv", &rows);
    rows[3] = ("", "b");
    let no_text = csv(&dir, "no-text.csv", &rows);
    let all_empty = csv(&dir, "all-empty.csv", &[("", "a"), ("", "b"), ("", "a")]);
    let runs = dir.join("runs");
    for (file, words) in [
        (&no_label, ["line 5", "label is empty"]),
        (&no_text, ["line 5", "is empty"]),
        (&all_empty, ["line 2", "is empty"]),
    ] {
        let mut args = vec!["train".to_string(), "--quiet".into()];
        args.extend(sets(&[
            "task=classify",
            &format!("data.path={}", file.display()),
            &format!("output.dir={}", runs.display()),
        ]));
        let r = rnnkit(&strs(&args));
        assert_refused(&r, 2, &words, &file.display().to_string());
        assert!(
            !runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none(),
            "{}: a partial run directory was left",
            file.display()
        );
    }
}

/// Finding 8: a classifier stopped mid-epoch by `max_steps` reports the test loss `evaluate`
/// gives for the same weights (not NaN); `max_steps = 0` and `epochs = 0` are refused up front.
#[test]
fn a_classifier_stopped_mid_epoch_reports_its_real_test_loss() {
    let dir = temp("midepoch");
    let rows: Vec<(String, &str)> = (0..120)
        .map(|i| {
            let (letters, label) = [("abab", "a"), ("xyzx", "b"), ("mnom", "c")][i % 3];
            (format!("{}{}", &letters[..2 + i % 3], i % 7), label)
        })
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(t, l)| (t.as_str(), *l)).collect();
    let data = csv(&dir, "texts.csv", &rows);
    let base = sets(&[
        "task=classify",
        &format!("data.path={}", data.display()),
        &format!("output.dir={}", dir.display()),
        "model.hidden_size=8",
        "model.embedding_size=4",
        "train.batch_size=4",
        "output.threads=1",
    ]);
    for (extra, name) in [
        ("train.max_steps=0", "zero-steps"),
        ("train.epochs=0", "zero-epochs"),
    ] {
        let mut args = vec!["train".to_string(), "--quiet".into()];
        args.extend(base.clone());
        args.extend(sets(&[extra, &format!("output.name={name}")]));
        let r = rnnkit(&strs(&args));
        assert_refused(
            &r,
            2,
            &[extra
                .split('=')
                .next()
                .unwrap()
                .trim_start_matches("train.")],
            extra,
        );
        assert!(!dir.join(name).exists(), "{extra} left a run directory");
    }
    let mut args = vec!["train".to_string(), "--quiet".into()];
    args.extend(base);
    args.extend(sets(&["train.max_steps=5", "output.name=stopped"]));
    let r = rnnkit(&strs(&args));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let run = dir.join("stopped");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let reported = metrics["test_loss"].as_f64().expect("a number, not NaN");
    let r = rnnkit(&["evaluate", "--json", "--model", &run.display().to_string()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let scored: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let loss = find_number(&scored, "loss_nats_per_example")
        .unwrap_or_else(|| panic!("no loss in {scored}"));
    assert!(
        (reported - loss).abs() < 1e-4,
        "report {reported} vs evaluate {loss}"
    );
}

/// The number under `key` anywhere in `v`.
fn find_number(v: &serde_json::Value, key: &str) -> Option<f64> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .or_else(|| m.values().find_map(|x| find_number(x, key))),
        _ => None,
    }
}

/// Finding 9: one exit-code table for every command (2: what the user gave is wrong, a
/// missing input file included; 1: the run or a file it wrote failed), a line number for bad
/// text input, no partial run directory after a config error.
#[test]
fn exit_codes_agree_across_commands() {
    let dir = temp("exit-codes");
    let missing = dir.join("no-such-thing");
    let missing_s = missing.display().to_string();
    // A missing input or run directory is the user's to fix: exit 2, in every command.
    let mut train = vec!["train".to_string(), "--quiet".into()];
    train.extend(sets(&[
        &format!("data.path={missing_s}"),
        &format!("output.dir={}", dir.join("runs").display()),
    ]));
    let r = rnnkit(&strs(&train));
    assert_refused(&r, 2, &["no-such-thing"], "train with a missing data file");
    assert!(
        !dir.join("runs").exists()
            || std::fs::read_dir(dir.join("runs"))
                .unwrap()
                .next()
                .is_none()
    );
    for cmd in [
        vec!["inspect", &missing_s],
        vec!["generate", "--model", &missing_s],
        vec!["evaluate", "--model", &missing_s],
        vec!["classify", "--model", &missing_s, "x"],
    ] {
        let r = rnnkit(&cmd);
        assert_refused(&r, 2, &["no-such-thing"], &format!("{cmd:?}"));
        // Each OS error once.
        assert!(r.stderr.matches("os error").count() <= 1, "{}", r.stderr);
    }
    // A directory that holds no run is a usage mistake too.
    let r = rnnkit(&["inspect", &dir.display().to_string()]);
    assert_refused(
        &r,
        2,
        &["is it a run directory"],
        "inspect of a non-run directory",
    );
    // A key that applies to another task, found after the run directory was made: exit 2 and
    // no directory left behind.
    let mut args = vec!["train".to_string(), "--quiet".into()];
    args.extend(sets(&[
        "task=forecast",
        "train.bptt=50",
        &format!("output.dir={}", dir.join("runs").display()),
        "output.name=wrong-key",
    ]));
    let r = rnnkit(&strs(&args));
    assert_refused(&r, 2, &["train.bptt"], "bptt for a forecaster");
    assert!(
        !dir.join("runs/wrong-key").exists(),
        "a partial run directory"
    );
}

/// Finding 3's per-line input and 9's UTF-8: `classify --input` names the line of a bad or
/// enormous text (exit 2), reading no more of a line than it takes.
#[test]
fn classify_input_names_the_line_of_bad_text() {
    let dir = temp("classify-input");
    let rows: Vec<(&str, &str)> = (0..40)
        .map(|i| (["abc", "xyz"][i % 2], ["a", "b"][i % 2]))
        .collect();
    let data = csv(&dir, "texts.csv", &rows);
    let mut args = vec!["train".to_string(), "--quiet".into()];
    args.extend(sets(&[
        "task=classify",
        &format!("data.path={}", data.display()),
        &format!("output.dir={}", dir.display()),
        "output.name=c",
        "train.epochs=1",
        "model.hidden_size=8",
        "model.embedding_size=4",
        "output.threads=1",
    ]));
    let r = rnnkit(&strs(&args));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let run = dir.join("c").display().to_string();

    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"abc\ncaf\xe9\n").unwrap();
    let huge = dir.join("huge.txt");
    std::fs::write(&huge, "ab".repeat(5_000_000)).unwrap();
    for (file, words) in [(&latin1, ["line 2", "UTF-8"]), (&huge, ["line 1", "bytes"])] {
        let f = file.display().to_string();
        let r = rnnkit_limited(&["classify", "--model", &run, "--input", &f]);
        assert_refused(&r, 2, &words, &f);
    }
}
