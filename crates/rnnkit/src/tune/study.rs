//! A study directory and the work loop of one worker.
//!
//! ```text
//! STUDY/
//!   study.toml       the study file as given          study.json   it parsed, with the base config
//!   journal.jsonl    every event (journal.lock)        workers/     one lock file per live worker
//!   trials/0000/     each trial's run directory (checkpoints, metrics, report)
//!   trials.csv, trials.jsonl, report.md, plots/, best/config.toml   written by `finish`
//! ```

use super::journal::{Event, Journal, Locked, StudyState, TrialEnd, TrialState, now};
use super::sampler::{Observation, Sampler};
use super::schedule::{Job, next_job};
use super::spec::{Budget, StudySpec};
use super::trial::{JobOutcome, run_job};
use crate::error::{Error, Result};
use crate::train::StopSignal;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A study on disk.
#[derive(Debug)]
pub struct Study {
    dir: PathBuf,
    spec: StudySpec,
    journal: Journal,
    /// The base config's `train.seed`: every trial trains with it, so trials differ only in
    /// their values.
    seed: u64,
}

/// What one worker did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerSummary {
    /// Jobs that reached their rung.
    pub jobs: usize,
    /// Trials it started.
    pub started: usize,
    /// Jobs that failed.
    pub failed: usize,
    /// Whether it stopped because asked to (the rest of the study is left to `--resume`).
    pub stopped: bool,
}

impl Study {
    /// Creates the study in `dir` (which must not exist or be empty) from a study file's
    /// `text`; relative paths in it resolve against `spec_dir`.
    ///
    /// # Errors
    /// A bad study file (naming the line); a directory that holds something already.
    pub fn create(dir: &Path, text: &str, source: &str, spec_dir: &Path) -> Result<Study> {
        let spec = StudySpec::parse(text, source, spec_dir)?;
        if dir.exists()
            && std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(Error::RunDir {
                path: dir.display().to_string(),
                msg: "exists and is not empty; continue that study with `rnnkit tune --resume \
                      DIR`, or pick another --out"
                    .into(),
            });
        }
        let io = |p: &Path, e: std::io::Error| Error::Io {
            path: p.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir.join("trials")).map_err(|e| io(dir, e))?;
        std::fs::create_dir_all(dir.join("workers")).map_err(|e| io(dir, e))?;
        std::fs::write(dir.join("study.toml"), text).map_err(|e| io(dir, e))?;
        let json = serde_json::to_string_pretty(&spec).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(dir.join("study.json"), json).map_err(|e| io(dir, e))?;
        Study::with_spec(dir, spec)
    }

    fn with_spec(dir: &Path, spec: StudySpec) -> Result<Study> {
        let base = crate::config_file::ConfigSource::new(
            &spec.base_text,
            &spec.base.display().to_string(),
            &[],
        )?
        .load()?;
        Ok(Study {
            journal: Journal::new(dir),
            dir: dir.to_path_buf(),
            seed: base.train_config().seed,
            spec,
        })
    }

    /// Opens the study in `dir`.
    ///
    /// # Errors
    /// Not a study directory, or its `study.json` is damaged.
    pub fn open(dir: &Path) -> Result<Study> {
        let path = dir.join("study.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::RunDir {
                    path: dir.display().to_string(),
                    msg: "is not a study (no study.json); start one with `rnnkit tune --study \
                          FILE --out DIR`"
                        .into(),
                }
            } else {
                Error::read(&path, e)
            }
        })?;
        let spec: StudySpec = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            msg: format!("not a study description ({e})"),
        })?;
        Study::with_spec(dir, spec)
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its parsed study file.
    pub fn spec(&self) -> &StudySpec {
        &self.spec
    }

    /// The journal's state now.
    ///
    /// # Errors
    /// An unreadable journal.
    pub fn state(&self) -> Result<StudyState> {
        self.journal.read()
    }

    /// Starts a session (one `rnnkit tune` invocation): its number for [`Study::work`].
    ///
    /// # Errors
    /// The journal cannot be written.
    pub fn begin_session(&self) -> Result<u64> {
        let mut l = self.journal.lock()?;
        let session = l.state().sessions + 1;
        l.append(&[Event::Session {
            session,
            pid: std::process::id(),
            host: hostname(),
            at: now(),
        }])?;
        Ok(session)
    }

    fn worker_lock_path(&self, session: u64, worker: u32) -> PathBuf {
        self.dir
            .join("workers")
            .join(format!("{session}-{worker}.lock"))
    }

    /// Whether worker `worker` of `session` still runs: its lock file is locked.
    fn worker_alive(&self, session: u64, worker: u32) -> bool {
        let Ok(f) = File::open(self.worker_lock_path(session, worker)) else {
            return false;
        };
        match f.try_lock_shared() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        }
    }

    /// Wall seconds the study has run: the union of its sessions' spans, this one to now.
    pub fn seconds_spent(&self, state: &StudyState) -> f64 {
        let mut spans = state.session_spans.clone();
        if let Some(last) = spans.last_mut() {
            last.1 = now();
        }
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut total, mut end) = (0.0, f64::NEG_INFINITY);
        for (s, e) in spans {
            let s = s.max(end);
            if e > s {
                total += e - s;
            }
            end = end.max(e);
        }
        total
    }

    /// The budget in force: the latest one set on resume, or the study file's.
    pub fn budget(&self, state: &StudyState) -> Budget {
        state
            .budget
            .clone()
            .unwrap_or_else(|| self.spec.budget.clone())
    }

    /// Replaces the budget for every worker from now on (`--trials`, `--minutes`, `--epochs`
    /// given with `--resume`); `None` keeps that limit as it is, `Some(0)` removes it.
    ///
    /// # Errors
    /// No limit would be left; the journal cannot be written.
    pub fn change_budget(
        &self,
        session: u64,
        trials: Option<u64>,
        minutes: Option<f64>,
        epochs: Option<usize>,
    ) -> Result<Budget> {
        let mut l = self.journal.lock()?;
        let mut b = self.budget(l.state());
        b.trials = trials.unwrap_or(b.trials);
        b.minutes = minutes.unwrap_or(b.minutes);
        b.epochs = epochs.unwrap_or(b.epochs);
        if !(b.minutes.is_finite() && b.minutes >= 0.0) {
            return Err(Error::Config(format!(
                "--minutes must be a number of minutes, at least 0 (got {})",
                b.minutes
            )));
        }
        if b.trials == 0 && b.minutes == 0.0 && b.epochs == 0 {
            return Err(Error::Config(
                "the study would have no budget left: keep at least one of --trials, \
                 --minutes, --epochs above 0"
                    .into(),
            ));
        }
        l.append(&[Event::Budget {
            budget: b.clone(),
            session,
            at: now(),
        }])?;
        Ok(b)
    }

    /// Whether the budget allows starting a new trial.
    fn may_start(&self, state: &StudyState) -> bool {
        let b = &self.budget(state);
        let rungs = self.spec.pruner.rungs();
        (b.trials == 0 || (state.trials.len() as u64) < b.trials)
            && (b.minutes <= 0.0 || self.seconds_spent(state) < b.minutes * 60.0)
            && (b.epochs == 0 || state.epochs_committed(&rungs) + rungs[0] <= b.epochs)
    }

    /// Whether the budget forbids any further work: the wall time is spent, or the epochs are
    /// (a promotion is work too; only the trial count still lets trials be continued).
    fn exhausted(&self, state: &StudyState) -> bool {
        let b = &self.budget(state);
        (b.minutes > 0.0 && self.seconds_spent(state) >= b.minutes * 60.0)
            || (b.epochs > 0 && state.epochs_committed(&self.spec.pruner.rungs()) >= b.epochs)
    }

    /// When the wall budget runs out, if it has one.
    fn deadline(&self, state: &StudyState) -> Option<Instant> {
        let b = &self.budget(state);
        (b.minutes > 0.0).then(|| {
            let left = (b.minutes * 60.0 - self.seconds_spent(state)).max(0.0);
            Instant::now() + Duration::from_secs_f64(left)
        })
    }

    /// The trials so far as a sampler sees them: each one's highest rung and its score there,
    /// oriented so lower is better (failed trials are left out).
    pub fn observations(&self, state: &StudyState) -> Vec<Observation> {
        let max = self.spec.maximize();
        state
            .trials
            .values()
            .filter(|t| !matches!(t.end, Some((TrialEnd::Failed, _))))
            .filter_map(|t| {
                let (&rung, r) = t.results.iter().next_back()?;
                let v = if max { -r.value } else { r.value };
                Some(Observation {
                    params: t.params.clone(),
                    rung,
                    score: if v.is_nan() { f64::INFINITY } else { v },
                })
            })
            .collect()
    }

    /// Picks and claims the next job under the lock; `None` when the study is complete.
    fn claim(
        &self,
        session: u64,
        worker: u32,
        started: &mut usize,
    ) -> Result<Option<(TrialState, usize)>> {
        loop {
            let mut l = self.journal.lock()?;
            let state = l.state().clone();
            if self.exhausted(&state) {
                return Ok(None);
            }
            let orphans = state.orphaned_claims(|s, w| self.worker_alive(s, w));
            let mut may_start = self.may_start(&state);
            let mut job = next_job(
                &state,
                &self.spec.pruner,
                self.spec.maximize(),
                may_start,
                &orphans,
            );
            if job == Job::New {
                let trial = state.trials.len() as u64;
                let history = self.observations(&state);
                match self
                    .spec
                    .sampler
                    .sample(&self.spec.space, &history, trial, self.spec.seed)?
                {
                    Some(params) => {
                        claim_new(&mut l, trial, params, self.seed, session, worker)?;
                        *started += 1;
                        return Ok(Some((l.state().trials[&trial].clone(), 0)));
                    }
                    // A grid with nothing left: no more new trials.
                    None => {
                        may_start = false;
                        job = next_job(
                            &state,
                            &self.spec.pruner,
                            self.spec.maximize(),
                            may_start,
                            &orphans,
                        );
                    }
                }
            }
            match job {
                Job::Train { trial, rung } => {
                    l.append(&[Event::Claim {
                        trial,
                        rung,
                        session,
                        worker,
                        at: now(),
                    }])?;
                    return Ok(Some((l.state().trials[&trial].clone(), rung)));
                }
                Job::Done => return Ok(None),
                Job::Wait | Job::New => {
                    drop(l);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    /// Works as worker `worker` of `session`: claims jobs and trains them on `threads` threads
    /// until the study is complete or `stop` is raised (the job in hand is then released with
    /// its checkpoint). `log` gets a line per job.
    ///
    /// # Errors
    /// The journal or a run directory cannot be written. A trial that fails to train is
    /// recorded as failed, not returned.
    pub fn work(
        &self,
        session: u64,
        worker: u32,
        threads: usize,
        stop: &StopSignal,
        log: &mut dyn FnMut(&str),
    ) -> Result<WorkerSummary> {
        let lock_path = self.worker_lock_path(session, worker);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::Io {
                path: lock_path.display().to_string(),
                source: e,
            })?;
        lock.try_lock().map_err(|_| Error::RunDir {
            path: lock_path.display().to_string(),
            msg: format!("worker {worker} of session {session} is already running"),
        })?;
        let rungs = self.spec.pruner.rungs();
        let mut summary = WorkerSummary::default();
        while !stop.is_requested() {
            let Some((trial, rung)) = self.claim(session, worker, &mut summary.started)? else {
                break;
            };
            let started = Instant::now();
            let deadline = self.deadline(&self.state()?);
            let outcome = run_job(
                &self.spec,
                &self.dir,
                &trial,
                rungs[rung],
                threads,
                stop,
                deadline,
            )?;
            let seconds = started.elapsed().as_secs_f64();
            let mut l = self.journal.lock()?;
            let n = trial.trial;
            match outcome {
                JobOutcome::Reached {
                    value,
                    epochs,
                    curve,
                    end,
                } => {
                    summary.jobs += 1;
                    log(&format!(
                        "trial {n}: rung {rung} ({epochs} epochs) {} {value:.4} in {seconds:.1} s",
                        self.spec.objective
                    ));
                    let mut events = vec![Event::Result {
                        trial: n,
                        rung,
                        epochs,
                        value,
                        curve,
                        seconds,
                        at: now(),
                    }];
                    if let Some(status) = end {
                        events.push(Event::End {
                            trial: n,
                            status,
                            message: String::new(),
                            at: now(),
                        });
                    }
                    l.append(&events)?;
                }
                JobOutcome::Released => {
                    l.append(&[Event::Release {
                        trial: n,
                        at: now(),
                    }])?;
                    if stop.is_requested() {
                        summary.stopped = true;
                    }
                }
                JobOutcome::Failed(message) => {
                    summary.failed += 1;
                    log(&format!("trial {n}: failed: {message}"));
                    l.append(&[Event::End {
                        trial: n,
                        status: TrialEnd::Failed,
                        message,
                        at: now(),
                    }])?;
                }
            }
        }
        summary.stopped |= stop.is_requested();
        drop(lock);
        let _ = std::fs::remove_file(&lock_path);
        Ok(summary)
    }
}

fn claim_new(
    l: &mut Locked<'_>,
    trial: u64,
    params: super::space::Params,
    seed: u64,
    session: u64,
    worker: u32,
) -> Result<()> {
    let at = now();
    l.append(&[
        Event::Trial {
            trial,
            params,
            seed,
            at,
        },
        Event::Claim {
            trial,
            rung: 0,
            session,
            worker,
            at,
        },
    ])
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
