//! `rnnkit tune` end to end on a tiny classification task: a study with two workers, a promoted
//! trial that equals one trained straight through, resume after SIGKILL with no trial lost or
//! run twice, and a bad study file refused with its line.

use rnnkit::run::{RunDir, Weights};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn rnnkit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rnnkit"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-tune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Three classes of short letter strings, one file per class, and a base config over them.
fn write_task(dir: &Path) -> PathBuf {
    write_task_of(dir, 30)
}

/// The same with `lines` strings per class.
fn write_task_of(dir: &Path, lines: usize) -> PathBuf {
    let classes = [("Aa", "ab"), ("Bb", "xyz"), ("Cc", "mno")];
    let data = dir.join("names");
    std::fs::create_dir_all(&data).unwrap();
    for (c, (name, letters)) in classes.iter().enumerate() {
        let letters: Vec<char> = letters.chars().collect();
        let lines: String = (0..lines)
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
    let base = dir.join("base.toml");
    std::fs::write(
        &base,
        format!(
            "task = \"classify\"\n[data]\npath = \"{}\"\nvalid_fraction = 0.2\ntest_fraction = 0.2\n\
             [model]\nhidden_size = 8\nembedding_size = 4\n[train]\nbatch_size = 16\n\
             [output]\nthreads = 1\n",
            data.display()
        ),
    )
    .unwrap();
    base
}

fn study_file(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("study.toml");
    std::fs::write(&p, format!("base = \"base.toml\"\n{body}")).unwrap();
    p
}

/// `rnnkit tune --study FILE --out OUT EXTRA...`.
fn tune_new(file: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec![
        "tune",
        "--study",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    rnnkit(&args)
}

const SPACE: &str = r#"
[space]
"model.cell" = { choice = ["lstm", "gru"] }
"model.hidden_size" = { int_log = [4, 16] }
"train.optimizer.lr" = { loguniform = [1e-3, 3e-2] }
"#;

/// How many trials the journal has started.
fn trial_count(study: &Path) -> u64 {
    let text = std::fs::read_to_string(study.join("journal.jsonl")).unwrap();
    text.lines()
        .filter(|l| l.contains(r#""event":"trial""#))
        .count() as u64
}

/// `(trial, rung) → number of results` from the journal.
fn results(study: &Path) -> BTreeMap<(u64, u64), usize> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string(study.join("journal.jsonl")).unwrap_or_default();
    // Whole lines only: a worker may be writing the last one.
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    for line in whole.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["event"] == "result" {
            let key = (e["trial"].as_u64().unwrap(), e["rung"].as_u64().unwrap());
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

#[test]
fn a_study_with_two_workers_writes_its_outputs_and_a_runnable_best_config() {
    let dir = temp("two");
    write_task(&dir);
    let file = study_file(
        &dir,
        &format!(
            "objective = \"accuracy\"\nseed = 3\n[budget]\ntrials = 6\n[sampler]\nkind = \"random\"\n\
             [pruner]\nkind = \"asha\"\nmin_epochs = 1\nmax_epochs = 4\nreduction = 2\n{SPACE}"
        ),
    );
    let out = dir.join("study");
    let (code, _, err) = tune_new(&file, &out, &["--workers", "2"]);
    assert_eq!(code, Some(0), "{err}");
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(csv.lines().next().unwrap().contains("model.cell"), "{csv}");
    // ASHA with η = 2 promoted someone past the first rung.
    assert!(results(&out).keys().any(|&(_, rung)| rung >= 1), "{err}");
    assert!(results(&out).values().all(|&n| n == 1));
    assert!(out.join("report.md").exists());
    assert!(out.join("trials.jsonl").exists());
    let best = out.join("best/config.toml");
    let (code, _, err) = rnnkit(&[
        "train",
        "--quiet",
        "--config",
        best.to_str().unwrap(),
        "--set",
        &format!("output.dir={}", dir.join("rerun").display()),
        "--set",
        "output.name=best",
    ]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_promoted_trial_equals_training_it_straight_through() {
    let dir = temp("exact");
    write_task(&dir);
    // One trial, checked after every epoch, never pruned: rung by rung to 4 epochs.
    let file = study_file(
        &dir,
        "[budget]\ntrials = 1\n[sampler]\nkind = \"random\"\n[pruner]\nkind = \"median\"\n\
         every_epochs = 1\nmax_epochs = 4\nstartup_trials = 100\n[space]\n\
         \"model.hidden_size\" = { fixed = 8 }\n",
    );
    let out = dir.join("study");
    let (code, _, err) = tune_new(&file, &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(results(&out).len(), 4, "one result per rung");
    let trial = out.join("trials/0000");
    let (code, _, err) = rnnkit(&[
        "train",
        "--quiet",
        "--config",
        trial.join("config.toml").to_str().unwrap(),
        "--set",
        &format!("output.dir={}", dir.display()),
        "--set",
        "output.name=straight",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let tensors = |p: PathBuf| {
        RunDir::open(p)
            .unwrap()
            .model_tensors(Weights::Latest)
            .unwrap()
    };
    assert_eq!(tensors(trial), tensors(dir.join("straight")));
}

#[cfg(unix)]
#[test]
fn a_killed_study_resumes_without_losing_or_repeating_a_trial() {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt;
    let dir = temp("kill");
    // Enough data that the study is still running when it is killed.
    write_task_of(&dir, 400);
    let file = study_file(
        &dir,
        "[budget]\ntrials = 8\n[sampler]\nkind = \"random\"\n[pruner]\nkind = \"asha\"\n\
         min_epochs = 1\nmax_epochs = 6\nreduction = 2\n[space]\n\
         \"model.hidden_size\" = { int_log = [24, 48] }\n\
         \"train.optimizer.lr\" = { loguniform = [1e-3, 3e-2] }\n",
    );
    let out = dir.join("study");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rnnkit"))
        .args(["tune", "--quiet", "--workers", "2", "--study"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .process_group(0)
        .spawn()
        .unwrap();
    // Kill everything (the command and its workers) once some results are in.
    let t0 = std::time::Instant::now();
    while results(&out).len() < 3 && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = results(&out);
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let (code, _, err) = rnnkit(&[
        "tune",
        "--quiet",
        "--resume",
        out.to_str().unwrap(),
        "--workers",
        "2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let after = results(&out);
    assert!(
        after.len() > before.len(),
        "the study finished before it was killed ({} results): make the trials longer",
        before.len()
    );
    // Nothing reported before the kill was lost or run again; every trial has a result.
    for (k, n) in &before {
        assert_eq!(after.get(k), Some(n), "{k:?}");
    }
    assert!(after.values().all(|&n| n == 1), "{after:?}");
    let trials: std::collections::BTreeSet<u64> = after.keys().map(|k| k.0).collect();
    assert_eq!(trials.len(), 8, "{after:?}");
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9, "{csv}");
}

#[test]
fn a_bad_study_file_exits_2_naming_the_line() {
    let dir = temp("bad");
    write_task(&dir);
    let file = study_file(
        &dir,
        "[budget]\ntrials = 2\n[pruner]\nkind = \"none\"\nmax_epochs = 1\n[space]\n\
         \"model.hidden_size\" = { int = [8, 2] }\n",
    );
    let out = dir.join("study");
    let (code, _, err) = tune_new(&file, &out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("study.toml, line 8"), "{err}");
    assert!(!out.exists(), "nothing is created for a refused study");
}

#[test]
fn a_spent_wall_budget_ends_the_study_and_resume_adds_nothing() {
    let dir = temp("minutes");
    write_task_of(&dir, 400);
    // 3 seconds: some trials start, promotions may be cut short, and the study must end
    // rather than claim and release jobs forever.
    let file = study_file(
        &dir,
        "[budget]\nminutes = 0.05\n[sampler]\nkind = \"random\"\n[pruner]\nkind = \"asha\"\n\
         min_epochs = 1\nmax_epochs = 27\nreduction = 3\n[space]\n\
         \"model.hidden_size\" = { int_log = [24, 48] }\n",
    );
    let out = dir.join("study");
    let t0 = std::time::Instant::now();
    let (code, _, err) = tune_new(&file, &out, &["--quiet"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(t0.elapsed().as_secs() < 60, "{:?}", t0.elapsed());
    let before = results(&out);
    assert!(!before.is_empty());
    let (code, _, err) = rnnkit(&["tune", "--quiet", "--resume", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(results(&out), before);

    // A budget with no limit left is refused, and changes nothing.
    let resume = |extra: &[&str]| {
        let mut args = vec!["tune", "--quiet", "--resume", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        rnnkit(&args)
    };
    let (code, _, err) = resume(&["--minutes", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no budget"), "{err}");
    assert_eq!(results(&out), before);

    // More budget on resume: the time limit lifted, two more trials. The study continues
    // where it was: every earlier result kept, exactly two new trials.
    let trials_before = trial_count(&out);
    let cap = (trials_before + 2).to_string();
    let (code, _, err) = resume(&["--minutes", "0", "--trials", &cap]);
    assert_eq!(code, Some(0), "{err}");
    let after = results(&out);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "result {k:?} changed");
    }
    assert_eq!(trial_count(&out), trials_before + 2, "{after:?}");
}
