//! What `rnnkit train` prints while it trains: a progress bar per epoch on a terminal, plain
//! lines in logs, nothing when quiet.
//!
//! On a terminal (stderr) each epoch gets an indicatif bar whose message shows the step, the
//! smoothed loss, throughput, gradient norm, learning rate and ETA; when the epoch ends the bar
//! is cleared and a one-line summary stays:
//!
//! ```text
//! epoch 3/7 | train loss 1.478 | val loss 1.569 (best) | 152.3 s
//! ```
//!
//! In CI or when stderr goes to a file, bars would fill the log with control codes, so only the
//! summaries are printed, plus a plain progress line at most every [`PLAIN_EVERY`].
//!
//! The lines are built by pure functions ([`step_message`], [`plain_line`], [`epoch_line`]) so
//! their format is tested without a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rnnkit::train::{EpochReport, Reporter, StepReport};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The shortest time between two plain progress lines when stderr is not a terminal: often
/// enough to show a run is alive, rare enough to keep a CI log short.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// Weight of the past in the displayed loss (an exponential moving average): per-chunk losses
/// jump by tenths of a nat, the smoothed value is readable.
const EMA_DECAY: f64 = 0.9;

/// The bar's layout: `epoch 3/7 [=====>    ] 120/400 | step 1234 | loss 1.482 | … | ETA 2m`.
const BAR_TEMPLATE: &str = "epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} | {msg} | ETA {eta}";

/// Where the output goes.
enum Mode {
    /// Nothing at all.
    Quiet,
    /// An indicatif bar per epoch, drawn on stderr.
    Bar,
    /// Summary lines and a progress line at most every [`PLAIN_EVERY`], written to `out`.
    Plain(Box<dyn Write + Send>),
}

/// The state of the running epoch that the displayed numbers are computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    /// Epoch, 1-based as shown.
    pub epoch: usize,
    /// Total epochs of the run.
    pub epochs: usize,
    /// Chunks (or batches) done in this epoch.
    pub chunk: usize,
    /// Chunks in this epoch.
    pub chunks: usize,
    /// Optimizer steps taken in the run.
    pub step: u64,
    /// Smoothed training loss; `None` before the first finite loss.
    pub loss: Option<f64>,
    /// Throughput in `unit`s per second; `None` before any time has passed.
    pub rate: Option<f64>,
    /// Throughput unit (`tok`, `seq`).
    pub unit: String,
    /// Gradient norm of the last step, before clipping.
    pub grad_norm: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Estimated time left in the epoch; `None` when unknown.
    pub eta: Option<Duration>,
}

/// Progress output of a training run: implements [`Reporter`], so the trainer drives it.
///
/// ```ignore
/// let mut progress = Progress::new(cfg.epochs, "tok", args.quiet);
/// trainer.run(&data, &mut progress)?;
/// ```
pub struct Progress {
    epochs: usize,
    unit: String,
    mode: Mode,
    bar: Option<ProgressBar>,
    /// When the current epoch began (the previous epoch's end, or construction).
    epoch_start: Instant,
    /// The chunk the current epoch's clock started at (not 0 when a run resumes mid-epoch).
    start_chunk: Option<usize>,
    /// Units (tokens or sequences) processed in this epoch since `epoch_start`.
    epoch_units: u64,
    ema: Option<f64>,
    last_plain: Instant,
}

impl Progress {
    /// Progress for a run of `epochs` epochs whose throughput is counted in `unit` (`"tok"` for
    /// language models, `"seq"` for sequence tasks). Draws bars when stderr is a terminal, plain
    /// lines otherwise, and nothing when `quiet`.
    pub fn new(epochs: usize, unit: &str, quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain(Box::new(std::io::stderr()))
        };
        Self::with_mode(epochs, unit, mode)
    }

    /// Plain lines written to `out` whatever the terminal.
    #[cfg(test)]
    pub fn plain_to(epochs: usize, unit: &str, out: Box<dyn Write + Send>) -> Self {
        Self::with_mode(epochs, unit, Mode::Plain(out))
    }

    fn with_mode(epochs: usize, unit: &str, mode: Mode) -> Self {
        let now = Instant::now();
        Progress {
            epochs,
            unit: unit.to_string(),
            mode,
            bar: None,
            epoch_start: now,
            start_chunk: None,
            epoch_units: 0,
            ema: None,
            // The first plain line comes one interval in, not at the first step.
            last_plain: now,
        }
    }

    fn stats(&self, r: &StepReport, elapsed: Duration) -> StepStats {
        let secs = elapsed.as_secs_f64();
        let done = r.chunk.saturating_sub(self.start_chunk.unwrap_or(0));
        let left = r.chunks.saturating_sub(r.chunk);
        StepStats {
            epoch: r.epoch + 1,
            epochs: self.epochs,
            chunk: r.chunk,
            chunks: r.chunks,
            step: r.step,
            loss: self.ema,
            rate: (secs > 0.0).then(|| self.epoch_units as f64 / secs),
            unit: self.unit.clone(),
            grad_norm: f64::from(r.grad_norm),
            lr: f64::from(r.lr),
            eta: (done > 0).then(|| elapsed.mul_f64(left as f64 / done as f64)),
        }
    }

    fn bar_for(&mut self, r: &StepReport) -> &ProgressBar {
        let (epoch, epochs) = (r.epoch + 1, self.epochs);
        self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(r.chunks as u64), ProgressDrawTarget::stderr());
            // The template is a constant, so it parses; fall back to the default style anyway
            // rather than fail a training run over a progress bar.
            if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar
        })
    }
}

impl Reporter for Progress {
    fn step(&mut self, r: &StepReport) {
        if matches!(self.mode, Mode::Quiet) {
            return;
        }
        if self.start_chunk.is_none() {
            // The clock of an epoch starts at its first step seen, less that step's chunk.
            self.start_chunk = Some(r.chunk.saturating_sub(1));
        }
        self.epoch_units += r.count as u64;
        let loss = f64::from(r.loss);
        if !r.skipped && loss.is_finite() {
            self.ema = Some(match self.ema {
                Some(m) => EMA_DECAY * m + (1.0 - EMA_DECAY) * loss,
                None => loss,
            });
        }
        let stats = self.stats(r, self.epoch_start.elapsed());
        match &mut self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                let msg = if r.chunk >= r.chunks {
                    format!("{} | evaluating", step_message(&stats))
                } else {
                    step_message(&stats)
                };
                let bar = self.bar_for(r);
                bar.set_position(r.chunk as u64);
                bar.set_message(msg);
            }
            Mode::Plain(out) => {
                if self.last_plain.elapsed() >= PLAIN_EVERY {
                    self.last_plain = Instant::now();
                    // A log line lost to a closed pipe is not worth stopping training for.
                    let _ = writeln!(out, "{}", plain_line(&stats));
                }
            }
        }
    }

    fn epoch(&mut self, r: &EpochReport) {
        let line = epoch_line(r, self.epochs);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match &mut self.mode {
            Mode::Quiet => {}
            Mode::Bar => eprintln!("{line}"),
            Mode::Plain(out) => {
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
        self.epoch_start = Instant::now();
        self.start_chunk = None;
        self.epoch_units = 0;
    }
}

impl Drop for Progress {
    /// A run that stops mid-epoch (`max_steps`, an error) leaves its bar on screen where it
    /// stopped instead of erasing it.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

/// The message of the progress bar: `step 1234 | loss 1.482 | 45.2k tok/s | ‖g‖ 0.842 |
/// lr 1e-3`. Position, length and ETA are drawn by the bar itself.
pub fn step_message(s: &StepStats) -> String {
    let loss = s.loss.map_or("-".to_string(), |l| format!("{l:.3}"));
    let rate = s.rate.map_or("-".to_string(), si);
    format!(
        "step {} | loss {loss} | {rate} {}/s | ‖g‖ {} | lr {}",
        s.step,
        s.unit,
        sig3(s.grad_norm),
        sig3(s.lr)
    )
}

/// A plain progress line for logs: `epoch 3/7 | 120/400 (30%) | step 1234 | loss 1.482 |
/// 45.2k tok/s | ‖g‖ 0.842 | lr 1e-3 | ETA 2m 10s`.
pub fn plain_line(s: &StepStats) -> String {
    let pct = (100 * s.chunk).checked_div(s.chunks).unwrap_or(0);
    let eta = s.eta.map_or("-".to_string(), fmt_duration);
    format!(
        "epoch {}/{} | {}/{} ({pct}%) | {} | ETA {eta}",
        s.epoch,
        s.epochs,
        s.chunk,
        s.chunks,
        step_message(s)
    )
}

/// The summary of a finished epoch: `epoch 3/7 | train loss 1.478 | val loss 1.569 (best) |
/// 152.3 s`.
pub fn epoch_line(r: &EpochReport, epochs: usize) -> String {
    let best = if r.best { " (best)" } else { "" };
    format!(
        "epoch {}/{epochs} | train loss {:.3} | val loss {:.3}{best} | {:.1} s",
        r.epoch + 1,
        r.train_loss,
        r.val_loss,
        r.seconds
    )
}

/// A duration as people read it: `42s`, `2m 10s`, `1h 05m`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A count per second with an SI suffix and 3 significant digits: `950`, `45.2k`, `1.23M`.
fn si(v: f64) -> String {
    let (v, suffix) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if v >= 100.0 || suffix.is_empty() {
        format!("{v:.0}{suffix}")
    } else if v >= 10.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.2}{suffix}")
    }
}

/// 3 significant digits, scientific notation outside `[1e-2, 1e4)` (learning rates, exploding
/// gradient norms): `0.842`, `12.5`, `1e-3`, `3.5e-4`.
fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-2..1e4).contains(&a) {
        let s = format!("{v:.2e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{m}e{e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn stats() -> StepStats {
        StepStats {
            epoch: 3,
            epochs: 7,
            chunk: 120,
            chunks: 400,
            step: 1234,
            loss: Some(1.48216),
            rate: Some(45_230.0),
            unit: "tok".into(),
            grad_norm: 0.84217,
            lr: 0.001,
            eta: Some(Duration::from_secs(130)),
        }
    }

    #[test]
    fn epoch_summary_has_the_documented_form() {
        let r = EpochReport {
            epoch: 2,
            train_loss: 1.47812,
            val_loss: 1.5691,
            lr: 1e-3,
            seconds: 152.34,
            best: true,
        };
        assert_eq!(
            epoch_line(&r, 7),
            "epoch 3/7 | train loss 1.478 | val loss 1.569 (best) | 152.3 s"
        );
        let r = EpochReport { best: false, ..r };
        assert!(!epoch_line(&r, 7).contains("best"));
    }

    #[test]
    fn step_and_plain_lines_show_every_quantity() {
        assert_eq!(
            step_message(&stats()),
            "step 1234 | loss 1.482 | 45.2k tok/s | ‖g‖ 0.842 | lr 1e-3"
        );
        assert_eq!(
            plain_line(&stats()),
            "epoch 3/7 | 120/400 (30%) | step 1234 | loss 1.482 | 45.2k tok/s | ‖g‖ 0.842 \
             | lr 1e-3 | ETA 2m 10s"
        );
        let empty = StepStats {
            loss: None,
            rate: None,
            eta: None,
            unit: "seq".into(),
            ..stats()
        };
        let line = plain_line(&empty);
        assert!(
            line.contains("loss - | - seq/s") && line.ends_with("ETA -"),
            "{line}"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(si(950.4), "950");
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(si(123_456.0), "123k");
        assert_eq!(sig3(3.5e-4), "3.5e-4");
        assert_eq!(sig3(12.53), "12.5");
        assert_eq!(sig3(2.0e5), "2e5");
        assert_eq!(sig3(f64::NAN), "NaN");
        assert_eq!(sig3(0.0), "0");
        assert_eq!(fmt_duration(Duration::from_secs(42)), "42s");
        assert_eq!(fmt_duration(Duration::from_secs(3725)), "1h 02m");
    }

    /// A writer the test can read back after handing it to `Progress`.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn step(epoch: usize, chunk: usize, loss: f32, skipped: bool) -> StepReport {
        StepReport {
            epoch,
            chunk,
            chunks: 4,
            step: (epoch * 4 + chunk) as u64,
            loss,
            grad_norm: 1.0,
            clipped: false,
            lr: 0.01,
            skipped,
            count: 100,
        }
    }

    #[test]
    fn plain_mode_prints_epoch_summaries_and_rate_limits_progress_lines() {
        let buf = Shared::default();
        let mut p = Progress::plain_to(2, "tok", Box::new(buf.clone()));
        for c in 1..=4 {
            p.step(&step(0, c, 2.0, false));
        }
        let epoch = EpochReport {
            epoch: 0,
            train_loss: 2.0,
            val_loss: 2.1,
            lr: 0.01,
            seconds: 0.5,
            best: true,
        };
        p.epoch(&epoch);
        // Steps within the first PLAIN_EVERY print nothing; only the summary appears.
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, format!("{}\n", epoch_line(&epoch, 2)));

        // Once the interval has passed, the next step prints one progress line.
        p.last_plain = Instant::now() - PLAIN_EVERY;
        p.step(&step(1, 1, 3.0, false));
        p.step(&step(1, 2, 3.0, false));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[1].starts_with("epoch 2/2 | 1/4 (25%) | step 5 |"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn smoothed_loss_ignores_skipped_and_non_finite_steps() {
        let mut p = Progress::plain_to(1, "tok", Box::new(Shared::default()));
        p.step(&step(0, 1, 2.0, false));
        p.step(&step(0, 2, f32::NAN, true));
        p.step(&step(0, 3, 100.0, true));
        assert_eq!(p.ema, Some(2.0));
        p.step(&step(0, 4, 4.0, false));
        assert!((p.ema.unwrap() - 2.2).abs() < 1e-9);
        assert_eq!(p.epoch_units, 400);
    }

    #[test]
    fn bar_mode_draws_one_bar_per_epoch() {
        assert!(ProgressStyle::with_template(BAR_TEMPLATE).is_ok());
        let mut p = Progress::with_mode(2, "tok", Mode::Bar);
        for c in 1..=4 {
            p.step(&step(0, c, 2.0, false));
        }
        let bar = p.bar.clone().unwrap();
        assert_eq!((bar.position(), bar.length()), (4, Some(4)));
        assert!(bar.message().ends_with("| evaluating"), "{}", bar.message());
        p.epoch(&EpochReport {
            epoch: 0,
            train_loss: 2.0,
            val_loss: 2.1,
            lr: 0.01,
            seconds: 0.5,
            best: true,
        });
        assert!(bar.is_finished() && p.bar.is_none());
    }

    #[test]
    fn quiet_prints_nothing_and_keeps_no_state() {
        let mut p = Progress::new(1, "tok", true);
        p.step(&step(0, 1, 2.0, false));
        assert!(p.bar.is_none() && p.ema.is_none());
    }
}
