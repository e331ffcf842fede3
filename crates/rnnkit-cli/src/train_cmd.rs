//! `rnnkit train`: config → run directory → the library's task driver, with a progress
//! display, Ctrl-C handling and a summary of where the files went. With no arguments it
//! trains the bundled default (a character LSTM on the bundled Tiny Shakespeare text).

use crate::run_config::{RunConfig, usage};
use anyhow::{Context, Result};
use rnnkit::config_file;
use rnnkit::run::RunDir;
use rnnkit::tasks::{Observer, Outcome, TaskKind};
use rnnkit::train::{EpochReport, Reporter, StepReport, StopSignal};
use std::io::Write;
use std::path::PathBuf;

/// What the command line gave.
pub struct TrainArgs {
    /// `--config FILE.toml`.
    pub config: Option<PathBuf>,
    /// `--set key=value`, in order.
    pub set: Vec<String>,
    /// `--resume RUN_DIR`.
    pub resume: Option<PathBuf>,
    /// `--quiet`.
    pub quiet: bool,
}

/// Runs the command.
pub fn run(args: TrainArgs) -> Result<()> {
    let (cfg, run, resuming) = match &args.resume {
        Some(dir) => {
            let mut run = RunDir::open(dir).map_err(|e| usage(e.to_string()))?;
            run.lock()?;
            let path = run.config_path();
            let text = run.read_config()?;
            let cfg = config_file::parse_for_resume(&text, &path.display().to_string(), &args.set)?;
            if !args.set.is_empty() {
                let sets: Vec<String> = args.set.iter().map(|s| format!("--set {s}")).collect();
                let change = format!("{} --resume {}", timestamp(), sets.join(" "));
                run.update_config(&config_text(&run, &cfg)?, &change)?;
            }
            (cfg, run, true)
        }
        None => {
            let (text, source) = match &args.config {
                Some(p) => (
                    std::fs::read_to_string(p)
                        .map_err(|e| usage(format!("reading the config {}: {e}", p.display())))?,
                    p.display().to_string(),
                ),
                None => (String::new(), "the bundled default config".to_string()),
            };
            let cfg = config_file::parse(&text, &source, &args.set)?;
            // Checked before the run directory exists, so a mistake leaves nothing behind.
            worker_threads(&cfg)?;
            let out = cfg.output();
            let name = if out.name.is_empty() {
                timestamp()
            } else {
                out.name.to_string()
            };
            let path = out.dir.join(name);
            let run = if out.overwrite {
                RunDir::replace(path)?
            } else {
                RunDir::create(path)?
            };
            (cfg, run, false)
        }
    };
    if !resuming {
        run.write_config(&config_text(&run, &cfg)?)?;
    }
    let threads = worker_threads(&cfg)?;
    let pool = rayon_pool(threads)?;
    let quiet = args.quiet;
    let precision = cfg.train_config().precision;
    if !quiet {
        let runs = precision.effective();
        eprintln!(
            "run directory {} ({threads} threads, {runs})",
            run.path().display()
        );
        if let Some(notice) = precision.fallback_notice() {
            eprintln!("note: {notice}");
        }
    }
    let unit = if cfg.kind() == TaskKind::Lm {
        "tok"
    } else {
        "seq"
    };
    let mut observer = Terminal {
        progress: crate::progress::Progress::new(cfg.train_config().epochs, unit, quiet),
        quiet,
    };
    let outcome = match pool.install(|| cfg.train(&run, resuming, &mut observer)) {
        Ok(outcome) => outcome,
        // A new run refused for its config or data (found once the data was read) leaves
        // no directory behind to be refused by the next try.
        Err(e) if !resuming && e.is_bad_input() => {
            run.discard()?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if !quiet {
        print_outcome(&cfg, &run, &outcome, resuming);
    }
    Ok(())
}

/// Shows a run on the terminal: progress bars or lines, the task's notes, the sample as it is
/// generated; routes Ctrl-C to the run's stop signal.
struct Terminal {
    progress: crate::progress::Progress,
    quiet: bool,
}

impl Reporter for Terminal {
    fn step(&mut self, report: &StepReport) {
        self.progress.step(report);
    }

    fn epoch(&mut self, report: &EpochReport) {
        self.progress.epoch(report);
    }
}

impl Observer for Terminal {
    fn started(&mut self, stop: &StopSignal) {
        crate::interrupt::stop_on_signal(stop.clone());
    }

    fn note(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn text(&mut self, piece: &str) {
        if !self.quiet {
            eprint!("{piece}");
            let _ = std::io::stderr().flush();
        }
    }
}

/// Where a finished run put its files, and how it went.
fn print_outcome(cfg: &RunConfig, run: &RunDir, outcome: &Outcome, resuming: bool) {
    let s = &outcome.summary;
    if let Some((best, epoch)) = s.best_val {
        let bits = if cfg.kind() == TaskKind::Lm {
            format!(" nats/token ({:.3} bits)", best / std::f64::consts::LN_2)
        } else {
            String::new()
        };
        eprintln!(
            "best validation loss {best:.4}{bits} at epoch {}; {} steps in {:.1} s; clip rate {:.1}%",
            epoch + 1,
            s.steps,
            outcome.seconds,
            100.0 * s.clip_rate
        );
    }
    if resuming {
        eprintln!("{:.1} s of training in all sittings", s.train_seconds);
    }
    if s.interrupted {
        eprintln!("{}", outcome.status);
    }
    let plots = if cfg!(feature = "plot") {
        outcome
            .plots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        "none (this rnnkit was built without the `plot` feature)".to_string()
    };
    eprintln!(
        "weights {}\nmetrics {}\nplots {plots}\nreport {}",
        outcome.model.display(),
        run.metrics_dir().display(),
        outcome.report.display()
    );
}

/// The worker threads of `cfg`'s `output.threads` (0: all cores), bounded by
/// [`rnnkit::resources::worker_threads`].
fn worker_threads(cfg: &RunConfig) -> Result<usize> {
    rnnkit::resources::worker_threads(cfg.output().threads).context("output.threads")
}

/// A pool of `threads` workers for the kernels.
pub fn rayon_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the worker threads")
}

/// `YYYY-MM-DDTHH-MM-SS` (UTC) for run directory names.
/// The `config.toml` a run saves: how to rerun it, then the resolved config.
fn config_text(run: &RunDir, cfg: &RunConfig) -> Result<String> {
    Ok(format!(
        "# Rerun with: rnnkit train --config {} --set output.name=NEW_NAME\n\
         # (or --set output.overwrite=true to replace this run; --resume {} continues it)\n{}",
        run.config_path().display(),
        run.path().display(),
        rnnkit::run::config_toml(cfg).context("writing the resolved config")?
    ))
}

pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Calendar arithmetic lives in the series code; midnight prints without a time there.
    let text = rnnkit::data::series::format_timestamp(secs);
    let (date, time) = text.split_once(' ').unwrap_or((&text, "00:00:00"));
    format!("{date}T{}", time.replace(':', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_dates() {
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
