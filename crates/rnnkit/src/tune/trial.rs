//! Running one job: a trial's run directory, trained up to a rung's epoch count, then stopped
//! with its checkpoint so a promotion continues it exactly (`Trainer`'s exact resume), or
//! trained to its end.

use super::journal::{TrialEnd, TrialState};
use super::space::SearchSpace;
use super::spec::StudySpec;
use crate::config_file::ConfigSource;
use crate::error::{Error, Result};
use crate::run::RunDir;
use crate::tasks::{AnyConfig, Observer};
use crate::train::{EpochReport, Reporter, StepReport, StopSignal};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a job did.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum JobOutcome {
    /// The rung was reached (or training ended there, see `end`): its score.
    Reached {
        /// The objective.
        value: f64,
        /// Epochs trained in all.
        epochs: usize,
        /// Validation loss of every epoch so far.
        curve: Vec<f64>,
        /// Set when training ended at this rung (the last rung, or its own early stopping).
        end: Option<TrialEnd>,
    },
    /// Stopped before the rung (the study's time ran out, or a stop was asked for): the
    /// checkpoint stays, the job can be taken again.
    Released,
    /// Training failed; the trial ends.
    Failed(String),
}

/// The run directory of trial `n`.
pub(crate) fn trial_dir(study: &Path, n: u64) -> PathBuf {
    study.join("trials").join(format!("{n:04}"))
}

/// The config of `trial`: the base with its values, `train.epochs` at the last rung, the run
/// directory under the study, and `threads` when given.
pub(crate) fn trial_config(
    spec: &StudySpec,
    study: &Path,
    trial: &TrialState,
    threads: Option<usize>,
) -> Result<AnyConfig> {
    let dir = trial_dir(study, trial.trial);
    let mut sets = SearchSpace::overrides(&trial.params);
    sets.push(format!("train.epochs={}", spec.pruner.max_epochs()));
    sets.push(format!("train.seed={}", trial.seed));
    let parent = dir.parent().unwrap_or(study).display().to_string();
    sets.push(format!("output.dir={}", toml::Value::String(parent)));
    sets.push(format!(
        "output.name={}",
        toml::Value::String(format!("{:04}", trial.trial))
    ));
    sets.push("output.overwrite=false".into());
    if let Some(t) = threads {
        sets.push(format!("output.threads={t}"));
    }
    ConfigSource::new(&spec.base_text, &spec.base.display().to_string(), &sets)?.load()
}

/// Trains `trial` up to `rung_epochs` on `threads` threads. `stop` is raised from outside to
/// give the job up (Ctrl-C); `deadline` does the same when the study's time runs out.
pub(crate) fn run_job(
    spec: &StudySpec,
    study: &Path,
    trial: &TrialState,
    rung_epochs: usize,
    threads: usize,
    stop: &StopSignal,
    deadline: Option<Instant>,
) -> Result<JobOutcome> {
    let cfg = match trial_config(spec, study, trial, Some(threads)) {
        Ok(c) => c,
        Err(e) => return Ok(JobOutcome::Failed(format!("config: {e}"))),
    };
    let dir = trial_dir(study, trial.trial);
    let resuming = dir.join("checkpoints/latest.safetensors").exists();
    let run = if resuming {
        let mut run = RunDir::open(&dir)?;
        run.lock()?;
        run
    } else {
        // A claim whose worker died before the first checkpoint left a directory to redo (it
        // may be short of its config.toml); the claim makes it this worker's alone.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
        }
        let run = RunDir::create(&dir)?;
        run.write_config(&crate::run::config_toml(&cfg)?)?;
        run
    };
    let mut observer = RungObserver {
        until: rung_epochs,
        deadline,
        outer: stop.clone(),
        inner: None,
        curve: trial.curve.clone(),
        epochs: trial.results.values().map(|r| r.epochs).max().unwrap_or(0),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Config(format!("starting {threads} worker threads: {e}")))?;
    let outcome = match pool.install(|| cfg.train(&run, resuming, &mut observer)) {
        Ok(o) => o,
        Err(e) => return Ok(JobOutcome::Failed(e.to_string())),
    };
    let s = &outcome.summary;
    if s.interrupted && s.epochs < rung_epochs {
        return Ok(JobOutcome::Released);
    }
    let Some(&(_, value)) = outcome
        .valid_metrics
        .iter()
        .find(|(name, _)| *name == spec.objective)
    else {
        let have: Vec<&str> = outcome
            .valid_metrics
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        return Ok(JobOutcome::Failed(format!(
            "the task reports no \"{}\" on the validation split (it reports: {})",
            spec.objective,
            have.join(", ")
        )));
    };
    let end = if !s.interrupted && s.stopped_early {
        Some(TrialEnd::StoppedEarly)
    } else if !s.interrupted {
        Some(TrialEnd::Finished)
    } else {
        None
    };
    Ok(JobOutcome::Reached {
        value,
        epochs: s.epochs,
        curve: observer.curve,
        end,
    })
}

/// Stops the run at the rung's last epoch, at the deadline, or when asked from outside;
/// records the validation curve.
struct RungObserver {
    until: usize,
    deadline: Option<Instant>,
    outer: StopSignal,
    inner: Option<StopSignal>,
    curve: Vec<f64>,
    epochs: usize,
}

impl RungObserver {
    fn stop(&self) {
        if let Some(s) = &self.inner {
            s.request();
        }
    }
}

impl Reporter for RungObserver {
    fn step(&mut self, _report: &StepReport) {
        if self.outer.is_requested() || self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stop();
        }
    }

    fn epoch(&mut self, report: &EpochReport) {
        self.curve.truncate(report.epoch);
        self.curve.push(report.val_loss);
        self.epochs = report.epoch + 1;
        if self.epochs >= self.until {
            self.stop();
        }
    }
}

impl Observer for RungObserver {
    fn started(&mut self, stop: &StopSignal) {
        self.inner = Some(stop.clone());
        if self.outer.is_requested() {
            stop.request();
        }
    }
}
