//! `rnnkit tune`: a hyperparameter study. The command starts `--workers` worker processes
//! (this same binary with `--worker`), shows a progress line from the study's journal while
//! they run, and writes the study's outputs when they end. `--resume` continues a study after
//! a crash or a stop, or joins one that is running.

use anyhow::{Context, Result};
use rnnkit::train::StopSignal;
use rnnkit::tune::{Study, TrialStatus, count_status, write_outputs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What the command line gave.
pub struct TuneArgs {
    /// `--study FILE`: a new study from this file.
    pub study: Option<PathBuf>,
    /// `--out DIR`: where the new study goes.
    pub out: Option<PathBuf>,
    /// `--resume DIR`: continue (or join) this study.
    pub resume: Option<PathBuf>,
    /// `--workers N`.
    pub workers: usize,
    /// `--threads-per-worker M`.
    pub threads: usize,
    /// `--trials`, `--minutes`, `--epochs`: budget limits to change (None: keep).
    pub budget: (Option<u64>, Option<f64>, Option<usize>),
    /// `--quiet`.
    pub quiet: bool,
    /// Internal: run as worker `(session, id)` of the study in `resume`.
    pub worker: Option<(u64, u32)>,
}

/// Runs the command.
pub fn run(args: TuneArgs) -> Result<()> {
    if let Some((session, id)) = args.worker {
        let dir = args.resume.context("a worker needs the study directory")?;
        return work(&dir, session, id, args.threads, args.quiet);
    }
    // Checked before anything is created.
    if args.workers == 0 || args.threads == 0 {
        return Err(crate::run_config::usage(
            "--workers and --threads-per-worker must be at least 1".into(),
        ));
    }
    let study = match (&args.study, &args.resume) {
        (Some(file), None) => {
            let out = args.out.clone().ok_or_else(|| {
                crate::run_config::usage("a new study needs --out DIR for its directory".into())
            })?;
            let text = std::fs::read_to_string(file).map_err(|e| {
                crate::run_config::usage(format!("reading the study file {}: {e}", file.display()))
            })?;
            let dir = file.parent().unwrap_or(Path::new("."));
            Study::create(&out, &text, &file.display().to_string(), dir)?
        }
        (None, Some(dir)) => Study::open(dir)?,
        _ => {
            return Err(crate::run_config::usage(
                "give --study FILE --out DIR for a new study, or --resume DIR".into(),
            ));
        }
    };
    let session = study.begin_session()?;
    let (trials, minutes, epochs) = args.budget;
    if trials.is_some() || minutes.is_some() || epochs.is_some() {
        let b = study
            .change_budget(session, trials, minutes, epochs)
            .map_err(|e| crate::run_config::usage(e.to_string()))?;
        if !args.quiet {
            eprintln!(
                "budget: {} trials, {} minutes, {} epochs (0: no limit)",
                b.trials, b.minutes, b.epochs
            );
        }
    }
    let exe = std::env::current_exe().context("finding the rnnkit executable")?;
    let mut children: Vec<Child> = (0..args.workers as u32)
        .map(|id| {
            Command::new(&exe)
                .args(["tune", "--resume"])
                .arg(study.dir())
                .args(["--worker-session", &session.to_string()])
                .args(["--worker-id", &id.to_string()])
                .args(["--threads-per-worker", &args.threads.to_string()])
                .args(args.quiet.then_some("--quiet"))
                .spawn()
                .with_context(|| format!("starting worker {id}"))
        })
        .collect::<Result<_>>()?;
    // Ctrl-C reaches the workers too (one process group): they release their jobs with
    // checkpoints. This process only waits for them.
    let stop = StopSignal::new();
    crate::interrupt::stop_on_signal(stop.clone());
    let started = Instant::now();
    // A line when the counts or the best change, and every 30 s regardless (for the ETA).
    let (mut last_line, mut last_at) = (String::new(), Instant::now());
    loop {
        let mut running = 0;
        for c in &mut children {
            if c.try_wait().context("waiting for a worker")?.is_none() {
                running += 1;
            }
        }
        if !args.quiet {
            let (line, time) = progress_line(&study, started)?;
            if line != last_line || last_at.elapsed() >= Duration::from_secs(30) {
                eprintln!("{line} | {time}");
                last_line = line;
                last_at = Instant::now();
            }
        }
        if running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    let mut failed = 0;
    for c in &mut children {
        if !c.wait().context("waiting for a worker")?.success() {
            failed += 1;
        }
    }
    let out = write_outputs(&study)?;
    if !args.quiet {
        if let Some((n, v)) = out.best {
            eprintln!("best: trial {n}, {} {v:.6}", study.spec().objective);
        }
        if let Some(p) = &out.best_config {
            eprintln!("best config {}", p.display());
        }
        eprintln!(
            "trials {}\nreport {}",
            out.csv.display(),
            out.report.display()
        );
    }
    if stop.is_requested() {
        eprintln!(
            "stopped; continue with `rnnkit tune --resume {}`",
            study.dir().display()
        );
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} worker(s) exited with an error (their messages are above); `rnnkit tune \
             --resume {}` continues the study",
            study.dir().display()
        );
    }
    Ok(())
}

/// One worker process: trains jobs until the study is complete or it is stopped.
fn work(dir: &Path, session: u64, id: u32, threads: usize, quiet: bool) -> Result<()> {
    die_with_parent();
    let study = Study::open(dir)?;
    let stop = StopSignal::new();
    crate::interrupt::stop_on_signal(stop.clone());
    let mut log = |line: &str| {
        if !quiet {
            eprintln!("[worker {id}] {line}");
        }
    };
    study
        .work(session, id, threads, &stop, &mut log)
        .with_context(|| format!("worker {id} of {}", dir.display()))?;
    Ok(())
}

/// A worker whose parent `rnnkit tune` is killed (SIGKILL included) goes too, so that
/// `--resume` never finds a stray worker still training a trial.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

/// `trials 12 (3 running, 5 pruned, 0 failed) | best 0.4321 (trial 7)`, and apart from it the
/// time: `4m10s, ETA 6m02s`.
fn progress_line(study: &Study, started: Instant) -> Result<(String, String)> {
    let state = study.state()?;
    let spec = study.spec();
    let last = spec.pruner.rungs().len() - 1;
    let count = |s: TrialStatus| count_status(&state, last, s);
    let best = rnnkit::tune::best_trial(&state, spec.maximize())
        .map(|(n, v)| format!("best {} {v:.4} (trial {n})", spec.objective))
        .unwrap_or_else(|| "no result yet".into());
    let elapsed = started.elapsed().as_secs_f64();
    // The study's time over all its sessions, so a resumed study's ETA counts what is spent.
    let spent = study.seconds_spent(&state);
    let b = study.budget(&state);
    let mut fractions = Vec::new();
    if b.trials > 0 {
        fractions.push(state.trials.len() as f64 / b.trials as f64);
    }
    if b.minutes > 0.0 {
        fractions.push(spent / (b.minutes * 60.0));
    }
    if b.epochs > 0 {
        let committed = state.epochs_committed(&spec.pruner.rungs());
        fractions.push(committed as f64 / b.epochs as f64);
    }
    let done = fractions.iter().copied().fold(0.0, f64::max).min(1.0);
    let eta = if done > 0.02 && done < 1.0 {
        format!(", ETA {}", minutes(spent * (1.0 - done) / done))
    } else {
        String::new()
    };
    Ok((
        format!(
            "trials {} ({} running, {} finished, {} pruned or waiting, {} failed) | {best}",
            state.trials.len(),
            count(TrialStatus::Running),
            count(TrialStatus::Finished) + count(TrialStatus::StoppedEarly),
            count(TrialStatus::Pruned),
            count(TrialStatus::Failed),
        ),
        format!("{}{eta}", minutes(elapsed)),
    ))
}

fn minutes(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}m{:02}s", s / 60, s % 60)
}
