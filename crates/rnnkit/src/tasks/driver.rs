//! [`train`]: one driver for every task, from a config to a finished run directory.

use super::{Observer, Task, TaskConfig};
use crate::error::{Error, Result, ResultExt};
use crate::run::{ReportSummary, RunDir, write_diagnostics_plot, write_plots};
use crate::train::{EpochReport, Reporter, RunSummary, StepReport, TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A finished (or stopped) run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// How training went.
    pub summary: RunSummary,
    /// Wall-clock seconds of this sitting.
    pub seconds: f64,
    /// `model.safetensors`.
    pub model: PathBuf,
    /// The charts drawn.
    pub plots: Vec<PathBuf>,
    /// `report.md`.
    pub report: PathBuf,
    /// How the run ended, as the report says it.
    pub status: String,
    /// The task's metrics on the validation split with the final weights
    /// ([`Task::valid_metrics`]), and `loss`: the validation loss of the best epoch.
    pub valid_metrics: Vec<(String, f64)>,
}

/// Trains task `T` per `config` in `run` (continuing from its latest checkpoint when
/// `resuming`), then writes `model.safetensors`, the charts, the task's files and `report.md`.
/// Writing `config.toml` is the caller's (it knows the text the user gave). Example in the
/// [module docs](super).
///
/// # Errors
/// Bad data or config ([`crate::Error::is_bad_input`]), a divergence the guard gave up on, a
/// file that cannot be written.
pub fn train<T: Task>(
    config: &T::Config,
    run: &RunDir,
    resuming: bool,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let cfg = config.train();
    cfg.validate().context("[train]")?;
    let default = TrainConfig::default();
    if !T::USES_BPTT && (cfg.bptt != default.bptt || cfg.variable_bptt) {
        return Err(Error::Config(format!(
            "train.bptt and train.variable_bptt apply to language models (task = \"lm\") \
             only, not to task = \"{}\": remove them from the config",
            T::KIND
        )));
    }
    let task = T::prepare(config, run, resuming)?;
    observer.note(&task.describe(config));
    task.memory(config).check()?;
    let model = task.model(config)?;
    let mut trainer = if resuming {
        let checkpoint = run.latest_checkpoint();
        Trainer::resume(
            model,
            &checkpoint,
            Some(cfg.clone()),
            Some(run.path().into()),
        )
        .with_context(|| format!("resuming from {}", checkpoint.display()))?
    } else {
        Trainer::new(model, cfg.clone(), Some(run.path().into()))?
    };
    observer.started(&trainer.stop_signal());
    let splits = task.splits();
    let started = Instant::now();
    let mut counting = Counting {
        inner: observer,
        counted: 0,
    };
    let summary = match trainer.run(splits.train, splits.valid, splits.test, &mut counting) {
        Ok(summary) => summary,
        Err(e) => {
            if matches!(e.root(), Error::Diverged(_)) {
                report_divergence::<T>(&task, cfg, run, trainer.progress(), &e);
            }
            return Err(e);
        }
    };
    let counted = counting.counted;
    let mut valid_metrics = task.valid_metrics(trainer.model())?;
    if let Some((loss, _)) = summary.best_val {
        valid_metrics.insert(0, ("loss".into(), loss));
    }
    // For tools outside rnnkit that tune or compare runs (tools/optuna_tune.py).
    let by_name: std::collections::BTreeMap<&str, f64> = valid_metrics
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    run.write_json("valid_metrics.json", &by_name)?;
    let seconds = started.elapsed().as_secs_f64();
    let model_path = run.save_model(trainer.model(), &T::KIND.to_string())?;

    let loss_name = task.loss_name();
    let baseline = task.baseline();
    let mut plots = write_plots(
        run.path(),
        cfg.clip_norm.map(f64::from),
        &loss_name,
        baseline.as_ref().map(|(l, v)| (l.as_str(), *v)),
    )
    .context("drawing the plots")?;
    plots.extend(write_diagnostics_plot(run.path())?);
    let status = status(&summary, trainer.stop_signal().is_requested(), run.path());
    let (throughput, unit) = task.throughput(&summary, seconds, counted);
    let mut report = ReportSummary {
        task: T::KIND.to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config_path: Some(run.config_path()),
        status: status.clone(),
        loss_name,
        best_val: summary.best_val,
        epochs: summary.epochs,
        steps: summary.steps,
        wall_seconds: seconds,
        training_seconds: Some(summary.train_seconds),
        throughput: Some(throughput),
        throughput_unit: unit,
        clip_rate: cfg.clip_norm.map(|_| summary.clip_rate),
        skipped: summary.skipped,
        ..Default::default()
    };
    task.finish(
        config,
        run,
        trainer.model(),
        &summary,
        &mut report,
        observer,
    )?;
    // The task may have drawn more charts (a confusion matrix, a forecast): list them too,
    // whatever their names.
    if let Ok(entries) = std::fs::read_dir(run.plots_dir()) {
        let mut extra: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "png") && !plots.contains(p))
            .collect();
        extra.sort();
        plots.extend(extra);
    }
    let report_path = crate::run::write_report_md(run.path(), &report)?;
    Ok(Outcome {
        summary,
        seconds,
        model: model_path,
        plots,
        report: report_path,
        status,
        valid_metrics,
    })
}

/// A diverged run still gets its charts and a report saying what happened, so the loss curve
/// that shows it is there to look at; failures to draw them are left unsaid (the divergence is
/// the error to report).
fn report_divergence<T: Task>(
    task: &T,
    cfg: &TrainConfig,
    run: &RunDir,
    progress: &crate::train::checkpoint::Progress,
    e: &Error,
) {
    let loss_name = task.loss_name();
    let plots = write_plots(run.path(), cfg.clip_norm.map(f64::from), &loss_name, None);
    let report = ReportSummary {
        task: T::KIND.to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config_path: Some(run.config_path()),
        status: format!("failed: {e}"),
        loss_name,
        best_val: progress.best_val,
        epochs: progress.epoch,
        steps: progress.step,
        skipped: progress.skipped,
        notes: match plots {
            Ok(p) if !p.is_empty() => vec!["The charts show the loss as it diverged.".into()],
            _ => Vec::new(),
        },
        ..Default::default()
    };
    let _ = crate::run::write_report_md(run.path(), &report);
}

/// How a run ended, in words.
fn status(summary: &RunSummary, requested: bool, run: &Path) -> String {
    if summary.interrupted {
        let why = if requested {
            "stopped on request (Ctrl-C or SIGTERM)"
        } else {
            "stopped at train.max_steps"
        };
        format!(
            "{why}; continue with `rnnkit train --resume {}`",
            run.display()
        )
    } else if summary.stopped_early {
        "stopped early (no validation improvement)".into()
    } else {
        "finished".into()
    }
}

/// Passes reports on, counting the elements trained on (tokens, examples, windows).
struct Counting<'a> {
    inner: &'a mut dyn Observer,
    counted: u64,
}

impl Reporter for Counting<'_> {
    fn step(&mut self, report: &StepReport) {
        // A skipped update still read its batch: it counts toward the throughput.
        self.counted += report.count as u64;
        self.inner.step(report);
    }

    fn epoch(&mut self, report: &EpochReport) {
        self.inner.epoch(report);
    }
}

/// A relative path that does not exist from the working directory is looked up in the
/// repository rnnkit was built from, so the bundled data (`data/...`) is found from anywhere.
///
/// ```
/// let p = rnnkit::tasks::bundled_or_given("data/names".as_ref());
/// assert!(p.is_dir());
/// ```
pub fn bundled_or_given(path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let candidate = repo.join(path);
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}
