//! The end of a training run: charts drawn from the metrics files and a `report.md` that puts
//! the final numbers and the charts on one page.
//!
//! [`write_plots`] reads `RUN_DIR/metrics/steps.csv` and `RUN_DIR/metrics/epochs.csv` (as the
//! trainer writes them) and draws `RUN_DIR/plots/{loss,lr,grad_norm}.png`. [`write_report_md`]
//! writes `RUN_DIR/report.md` from a [`ReportSummary`] and links every chart in `plots/`.
//! Reading the files, not the trainer's memory, means a resumed run's charts cover the whole run.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
#[cfg(feature = "plot")]
use {anyhow::bail, rnnkit::plot::LineChart, std::collections::BTreeMap};

/// The charts [`write_plots`] draws, in the order the report shows them.
const STANDARD_PLOTS: [&str; 3] = ["loss.png", "lr.png", "grad_norm.png"];

/// A metrics CSV file: its header and rows, read as text.
#[cfg(feature = "plot")]
struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[cfg(feature = "plot")]
impl Table {
    /// Reads a comma-separated file with a header line. The trainer's metrics hold numbers and
    /// booleans only, so no quoting is needed.
    fn read(path: &Path) -> Result<Table> {
        let shown = path.display();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{shown}: not found; the trainer writes it when given a run directory \
                 (check the run directory, or train first)"
            ),
            Err(e) => return Err(e).with_context(|| format!("{shown}: cannot read")),
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, head)) = lines.next() else {
            bail!("{shown}: the file is empty; the run stopped before writing metrics");
        };
        let header: Vec<String> = head.split(',').map(|h| h.trim().to_string()).collect();
        let mut rows = Vec::new();
        for (i, line) in lines {
            let row: Vec<String> = line.split(',').map(|v| v.trim().to_string()).collect();
            if row.len() != header.len() {
                bail!(
                    "{shown}: line {}: {} values for {} columns; the file is damaged \
                     (remove the line, or rerun)",
                    i + 1,
                    row.len(),
                    header.len()
                );
            }
            rows.push(row);
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// The column named `name`, each value parsed by `parse` (`None` for a bad value).
    fn column<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
        let shown = self.path.display();
        let Some(k) = self.header.iter().position(|h| h == name) else {
            bail!(
                "{shown}: no column \"{name}\" (the header is \"{}\"); was it written by \
                 another version of rnnkit?",
                self.header.join(",")
            );
        };
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                parse(&row[k]).with_context(|| {
                    // Row i is on line i + 2: the header is line 1 (blank lines are rare
                    // enough not to track here).
                    format!(
                        "{shown}: line {}, column \"{name}\": cannot read \"{}\"",
                        i + 2,
                        row[k]
                    )
                })
            })
            .collect()
    }

    fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        // Rust writes non-finite floats as `NaN`, `inf` and `-inf`, which `parse` reads back.
        self.column(name, |v| v.parse::<f64>().ok())
    }

    fn u64s(&self, name: &str) -> Result<Vec<u64>> {
        self.column(name, |v| v.parse::<u64>().ok())
    }

    fn bools(&self, name: &str) -> Result<Vec<bool>> {
        self.column(name, |v| v.parse::<bool>().ok())
    }
}

/// The per-step metrics the charts need.
#[cfg(feature = "plot")]
struct Steps {
    epoch: Vec<u64>,
    step: Vec<f64>,
    loss: Vec<f64>,
    grad_norm: Vec<f64>,
    clipped: Vec<bool>,
    lr: Vec<f64>,
    skipped: Vec<bool>,
}

#[cfg(feature = "plot")]
fn read_steps(path: &Path) -> Result<Steps> {
    let t = Table::read(path)?;
    if t.rows.is_empty() {
        bail!(
            "{}: no steps recorded; the run stopped before its first step",
            path.display()
        );
    }
    Ok(Steps {
        epoch: t.u64s("epoch")?,
        step: t.u64s("step")?.into_iter().map(|s| s as f64).collect(),
        loss: t.f64s("loss")?,
        grad_norm: t.f64s("grad_norm")?,
        clipped: t.bools("clipped")?,
        lr: t.f64s("lr")?,
        skipped: t.bools("skipped")?,
    })
}

/// Draws `RUN_DIR/plots/loss.png`, `lr.png` and `grad_norm.png` from the run's metrics files,
/// and returns the paths written.
///
/// - `loss.png`: training loss per step (smoothed) and validation loss per epoch, placed at the
///   step where the epoch ended; the y axis is labelled `loss_name` (e.g.
///   `cross-entropy (nats/token)`), with `baseline` (label, loss) as a reference line when
///   given (e.g. the loss of a memoryless guess on a synthetic task).
/// - `lr.png`: the learning rate used at each step.
/// - `grad_norm.png`: the global gradient norm before clipping, log scale, with the clip
///   threshold `clip_norm` as a reference line and the share of clipped steps in the title.
///
/// Errors: a metrics file that is missing, empty, lacks a column or holds an unreadable value
/// (named with its line), or a chart that cannot be written.
#[cfg(feature = "plot")]
pub fn write_plots(
    run_dir: &Path,
    clip_norm: Option<f64>,
    loss_name: &str,
    baseline: Option<(&str, f64)>,
) -> Result<Vec<PathBuf>> {
    let metrics = run_dir.join("metrics");
    let s = read_steps(&metrics.join("steps.csv"))?;
    let epochs = Table::read(&metrics.join("epochs.csv"))?;
    let (val_epoch, val_loss) = (epochs.u64s("epoch")?, epochs.f64s("val_loss")?);

    let plots = run_dir.join("plots");
    std::fs::create_dir_all(&plots)
        .with_context(|| format!("{}: cannot create the folder", plots.display()))?;
    let mut written = Vec::new();
    let mut save = |chart: LineChart, name: &str| -> Result<()> {
        let path = plots.join(name);
        chart
            .save_png(&path)
            .with_context(|| format!("drawing {}", path.display()))?;
        written.push(path);
        Ok(())
    };

    // Loss: skipped updates carry no information about the model (their loss may be NaN).
    let train: Vec<(f64, f64)> = (0..s.step.len())
        .filter(|&i| !s.skipped[i] && s.loss[i].is_finite())
        .map(|i| (s.step[i], s.loss[i]))
        .collect();
    let window = smoothing_window(train.len());
    let smoothed = ema(&train, window);
    let train_name = if window > 1 {
        format!("train (moving average of ~{window} steps)")
    } else {
        "train".to_string()
    };
    // The step at which each epoch ended: the last step logged in it.
    let mut epoch_end: BTreeMap<u64, f64> = BTreeMap::new();
    for (e, st) in s.epoch.iter().zip(&s.step) {
        let end = epoch_end.entry(*e).or_insert(*st);
        *end = end.max(*st);
    }
    let val: Vec<(f64, f64)> = val_epoch
        .iter()
        .zip(&val_loss)
        .filter_map(|(e, l)| epoch_end.get(e).map(|&st| (st, *l)))
        .collect();
    let mut loss = LineChart::new("Loss").x_label("step").y_label(loss_name);
    if !smoothed.is_empty() {
        loss = loss.series(train_name, smoothed);
    }
    if !val.is_empty() {
        loss = loss.series("validation (end of epoch)", val);
    }
    if let Some((label, y)) = baseline {
        loss = loss.reference_line(label, y);
    }
    if train.is_empty() && val_loss.is_empty() {
        bail!(
            "{}: every recorded step was skipped or had a non-finite loss; there is no loss to \
             plot (the run diverged: lower the learning rate or enable clipping)",
            metrics.join("steps.csv").display()
        );
    }
    save(loss, "loss.png")?;

    let lr: Vec<(f64, f64)> = s.step.iter().copied().zip(s.lr.iter().copied()).collect();
    save(
        LineChart::new("Learning rate")
            .x_label("step")
            .y_label("learning rate")
            .series("learning rate", lr),
        "lr.png",
    )?;

    let norms: Vec<(f64, f64)> = s
        .step
        .iter()
        .copied()
        .zip(s.grad_norm.iter().copied())
        .collect();
    let title = match clip_norm {
        Some(c) => format!(
            "Gradient norm before clipping (clipped at {c}: {:.1}% of steps)",
            100.0 * clip_rate(&s.clipped)
        ),
        None => "Gradient norm (no clipping)".to_string(),
    };
    let mut chart = LineChart::new(title)
        .x_label("step")
        .y_label("global gradient norm ‖g‖₂")
        .log_y(true)
        .series("gradient norm", norms);
    if let Some(c) = clip_norm {
        chart = chart.reference_line("clip threshold", c);
    }
    save(chart, "grad_norm.png")?;
    Ok(written)
}

/// The fraction of steps whose gradients were clipped.
#[cfg(feature = "plot")]
fn clip_rate(clipped: &[bool]) -> f64 {
    clipped.iter().filter(|&&c| c).count() as f64 / clipped.len().max(1) as f64
}

/// How many steps the training-loss curve averages over: about 1/50 of the run, so a short run
/// keeps its detail and a long one shows its trend; never more than 200 steps.
#[cfg(feature = "plot")]
fn smoothing_window(n: usize) -> usize {
    (n / 50).clamp(1, 200)
}

/// An exponential moving average with a span of `window` points, bias-corrected so the curve
/// starts at the first value instead of rising from zero (as TensorBoard's smoothing does).
#[cfg(feature = "plot")]
fn ema(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let beta = 1.0 - 2.0 / (window as f64 + 1.0);
    let (mut m, mut weight) = (0.0, 0.0);
    points
        .iter()
        .map(|&(x, y)| {
            m = beta * m + (1.0 - beta) * y;
            weight = beta * weight + (1.0 - beta);
            (x, m / weight)
        })
        .collect()
}

/// Draws `plots/grad_vs_distance.png` from `metrics/diagnostics.jsonl` (written when
/// `train.diagnostics_every` is set): ‖∂L/∂h_(T−1−d)‖ against d on a log scale, one curve per
/// diagnosis for up to five of them (the first, the last and evenly spaced ones between), so
/// the chart shows how the gradient's reach changes as the model trains. `None` when the run
/// has no diagnoses.
///
/// Errors: an unreadable diagnostics file (named with its line) or a chart that cannot be
/// written.
#[cfg(feature = "plot")]
pub fn write_diagnostics_plot(run_dir: &Path) -> Result<Option<PathBuf>> {
    let path = run_dir.join("metrics/diagnostics.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        let profile: rnnkit::diagnostics::GradientProfile =
            serde_json::from_value(v["profile"].clone())
                .with_context(|| format!("{}: line {}: profile", path.display(), i + 1))?;
        rows.push((v["step"].as_u64().unwrap_or(0), profile));
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let n = rows.len();
    let mut pick: Vec<usize> = (0..5).map(|k| k * (n - 1) / 4).collect();
    pick.dedup();
    let mut chart = LineChart::new("Gradient of the last step's loss through time")
        .x_label("distance back in time d (steps)")
        .y_label("‖∂L/∂h_(T−1−d)‖ (mean over the probe batch)")
        .log_y(true);
    for i in pick {
        let (step, p) = &rows[i];
        let rate = p
            .decay_rate()
            .map_or(String::new(), |r| format!(", ×{r:.3} per step"));
        let pts: Vec<(f64, f64)> = p
            .distances
            .iter()
            .zip(&p.norm)
            .map(|(&d, &g)| (d as f64, g))
            .collect();
        chart = chart.series(format!("step {step}{rate}"), pts);
    }
    let out = run_dir.join("plots/grad_vs_distance.png");
    chart
        .save_png(&out)
        .with_context(|| format!("drawing {}", out.display()))?;
    Ok(Some(out))
}

/// Built without the `plot` feature, a run gets no charts: no paths, and the report links none.
#[cfg(not(feature = "plot"))]
pub fn write_plots(
    _run_dir: &Path,
    _clip_norm: Option<f64>,
    _loss_name: &str,
    _baseline: Option<(&str, f64)>,
) -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// Built without the `plot` feature, a run gets no gradient chart.
#[cfg(not(feature = "plot"))]
pub fn write_diagnostics_plot(_run_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(None)
}

/// What `report.md` shows about a finished run. Filled by the `train` command from the run's
/// summary and evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReportSummary {
    /// The task, e.g. `char-lm`, `sentiment`, `forecast`.
    pub task: String,
    /// The command line that started the run, as typed.
    pub command: String,
    /// The config file the run used, if any.
    pub config_path: Option<PathBuf>,
    /// How the run ended, e.g. `finished`, `stopped early (patience 3)`,
    /// `interrupted at max_steps`.
    pub status: String,
    /// What the loss measures, e.g. `cross-entropy (nats/token)`.
    pub loss_name: String,
    /// Best validation loss and its epoch (0-based, as the trainer reports it).
    pub best_val: Option<(f64, usize)>,
    /// Final metrics as `(name, value)`, named and formatted by the caller
    /// (`test perplexity`, `12.31`).
    pub test_metrics: Vec<(String, String)>,
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Wall-clock seconds of the run (this sitting, for a resumed run).
    pub wall_seconds: f64,
    /// Seconds of training in all sittings, from the checkpoint's clock (shown when a resumed
    /// run makes it differ from `wall_seconds`).
    pub training_seconds: Option<f64>,
    /// Throughput in `throughput_unit`s per second.
    pub throughput: Option<f64>,
    /// The throughput unit, per second (`tok/s`, `examples/s`).
    pub throughput_unit: String,
    /// Fraction of steps whose gradients were clipped; `None` when clipping was off.
    pub clip_rate: Option<f64>,
    /// Updates skipped by the divergence guard.
    pub skipped: u64,
    /// Generated samples as `(heading, text)`, shown verbatim in code blocks.
    pub samples: Vec<(String, String)>,
    /// Further Markdown lines, appended as they are.
    pub notes: Vec<String>,
}

/// Writes `RUN_DIR/report.md`: the command, the config, a table of final metrics, any samples
/// and notes, and every chart in `RUN_DIR/plots/` (the standard ones first) linked relatively,
/// so the folder can be moved or published as it is. Returns the path written.
///
/// Errors: the file cannot be written, or `plots/` cannot be listed.
pub fn write_report_md(run_dir: &Path, summary: &ReportSummary) -> Result<PathBuf> {
    let md = render_report(&list_plots(&run_dir.join("plots"))?, summary);
    let path = run_dir.join("report.md");
    std::fs::write(&path, md).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(path)
}

/// The PNG files in `plots` (their names), standard charts first, then the others by name.
fn list_plots(plots: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if plots.is_dir() {
        let entries = std::fs::read_dir(plots)
            .with_context(|| format!("{}: cannot list", plots.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("{}: cannot list", plots.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.to_ascii_lowercase().ends_with(".png") {
                names.push(name);
            }
        }
    }
    let rank = |n: &String| STANDARD_PLOTS.iter().position(|s| s == n).unwrap_or(3);
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    Ok(names)
}

/// The Markdown of the report.
fn render_report(plots: &[String], s: &ReportSummary) -> String {
    let mut md = String::new();
    let task = if s.task.is_empty() { "run" } else { &s.task };
    // Writing to a String cannot fail.
    let _ = writeln!(md, "# rnnkit training report: {task}\n");
    if !s.command.is_empty() {
        let _ = writeln!(md, "```sh\n{}\n```\n", s.command);
    }
    if let Some(c) = &s.config_path {
        let _ = writeln!(md, "Config: `{}`\n", c.display());
    }

    let mut rows: Vec<(String, String)> = Vec::new();
    if !s.status.is_empty() {
        rows.push(("status".into(), s.status.clone()));
    }
    if let Some((loss, epoch)) = s.best_val {
        let what = if s.loss_name.is_empty() {
            "best validation loss".to_string()
        } else {
            format!("best validation loss, {}", s.loss_name)
        };
        rows.push((what, format!("{loss:.4} (epoch {})", epoch + 1)));
    }
    for (name, value) in &s.test_metrics {
        rows.push((name.clone(), value.clone()));
    }
    rows.push(("epochs".into(), s.epochs.to_string()));
    rows.push(("steps".into(), s.steps.to_string()));
    rows.push(("wall time".into(), fmt_seconds(s.wall_seconds)));
    if let Some(t) = s.training_seconds.filter(|t| *t > s.wall_seconds + 1.0) {
        rows.push(("training time, all sittings".into(), fmt_seconds(t)));
    }
    if let Some(t) = s.throughput {
        let unit = if s.throughput_unit.is_empty() {
            "tok/s"
        } else {
            &s.throughput_unit
        };
        rows.push(("throughput".into(), format!("{t:.0} {unit}")));
    }
    rows.push((
        "clipped steps".into(),
        s.clip_rate
            .map_or("clipping off".into(), |r| format!("{:.1}%", 100.0 * r)),
    ));
    rows.push(("skipped updates".into(), s.skipped.to_string()));

    let _ = writeln!(md, "## Results\n\n| metric | value |\n|---|---|");
    for (k, v) in rows {
        let _ = writeln!(md, "| {} | {} |", cell(&k), cell(&v));
    }
    md.push('\n');

    for (heading, text) in &s.samples {
        // A fence longer than any backtick run in the text keeps the sample verbatim.
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let _ = writeln!(md, "## {heading}\n\n{fence}text\n{text}\n{fence}\n");
    }
    for line in &s.notes {
        let _ = writeln!(md, "{line}");
    }
    if !s.notes.is_empty() {
        md.push('\n');
    }

    if !plots.is_empty() {
        let _ = writeln!(md, "## Charts\n");
        for name in plots {
            let alt = name.trim_end_matches(".png").replace('_', " ");
            let _ = writeln!(md, "![{alt}](plots/{name})\n");
        }
    }
    md
}

/// A table cell: `|` would end the cell and a newline the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `152.3 s`, or `3 h 25 min (12300 s)` for long runs.
fn fmt_seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!(
            "{} min {:02} s ({s:.0} s)",
            (s / 60.0) as u64,
            (s % 60.0) as u64
        )
    } else {
        format!(
            "{} h {:02} min ({s:.0} s)",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

// All but one of these tests draw charts: built without the `plot` feature, none of them run.
#[cfg(all(test, feature = "plot"))]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// A fresh, empty folder for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rnnkit-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("metrics")).unwrap();
        dir
    }

    /// Synthetic metrics shaped like a real run: 3 epochs of 40 steps, a decaying noisy loss, a
    /// step schedule, a NaN step skipped by the guard, and early gradient spikes above the clip
    /// threshold.
    fn write_metrics(dir: &Path) {
        let mut steps = String::from("epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens\n");
        let mut step = 0u64;
        for epoch in 0..3 {
            for chunk in 1..=40 {
                let skipped = epoch == 1 && chunk == 7;
                if !skipped {
                    step += 1;
                }
                let t = step as f64;
                let noise = 0.15 * ((t * 1.7).sin() + (t * 0.37).cos());
                let loss = if skipped {
                    f64::NAN
                } else {
                    1.3 + 2.9 * (-t / 25.0).exp() + noise
                };
                let norm = if skipped {
                    f64::INFINITY
                } else {
                    0.6 + 8.0 * (-t / 15.0).exp() * (1.0 + (t * 2.3).sin().abs())
                };
                let lr = 1e-3 * 0.5f64.powi(epoch);
                let clipped = norm.is_finite() && norm > 5.0;
                let _ = writeln!(
                    steps,
                    "{epoch},{chunk},{step},{},{},{clipped},{lr},{skipped},700",
                    loss as f32, norm as f32
                );
            }
        }
        std::fs::write(dir.join("metrics/steps.csv"), steps).unwrap();
        std::fs::write(
            dir.join("metrics/epochs.csv"),
            "epoch,train_loss,val_loss,lr,seconds,best\n\
             0,2.61,1.95,0.0005,10.2,true\n\
             1,1.52,1.58,0.00025,10.1,true\n\
             2,1.38,1.61,0.000125,10.3,false\n",
        )
        .unwrap();
    }

    fn summary() -> ReportSummary {
        ReportSummary {
            task: "char-lm".into(),
            command: "rnnkit train --config examples/tiny.toml".into(),
            config_path: Some("examples/tiny.toml".into()),
            status: "finished".into(),
            loss_name: "cross-entropy (nats/token)".into(),
            best_val: Some((1.5812, 1)),
            test_metrics: vec![("test perplexity".into(), "4.93".into())],
            epochs: 3,
            steps: 119,
            wall_seconds: 30.6,
            training_seconds: Some(30.6),
            throughput: Some(45_210.4),
            throughput_unit: "tok/s".into(),
            clip_rate: Some(0.084),
            skipped: 1,
            samples: vec![("Sample".into(), "ROMEO: a | b ``` c".into())],
            notes: vec!["Trained on 1 thread.".into()],
        }
    }

    #[test]
    fn plots_and_report_are_written() {
        let dir = temp_dir("report");
        write_metrics(&dir);
        let written = write_plots(
            &dir,
            Some(5.0),
            "cross-entropy (nats/token)",
            Some(("baseline", 4.0)),
        )
        .unwrap();
        assert_eq!(written.len(), 3);
        for (path, name) in written.iter().zip(STANDARD_PLOTS) {
            assert_eq!(path, &dir.join("plots").join(name));
            let bytes = std::fs::read(path).unwrap();
            assert!(
                bytes.len() > 1000 && bytes.starts_with(&PNG_SIGNATURE),
                "{name}"
            );
        }
        // Another chart in plots/ (a forecast, a confusion matrix) is linked after them.
        std::fs::copy(&written[0], dir.join("plots/confusion.png")).unwrap();

        let md_path = write_report_md(&dir, &summary()).unwrap();
        let md = std::fs::read_to_string(&md_path).unwrap();
        for want in [
            "# rnnkit training report: char-lm",
            "rnnkit train --config examples/tiny.toml",
            "Config: `examples/tiny.toml`",
            "| best validation loss, cross-entropy (nats/token) | 1.5812 (epoch 2) |",
            "| test perplexity | 4.93 |",
            "| steps | 119 |",
            "| wall time | 30.6 s |",
            "| throughput | 45210 tok/s |",
            "| clipped steps | 8.4% |",
            "| skipped updates | 1 |",
            "````text\nROMEO: a | b ``` c\n````",
            "Trained on 1 thread.",
        ] {
            assert!(md.contains(want), "missing {want:?} in\n{md}");
        }
        assert!(
            !md.contains("all sittings"),
            "one sitting needs no second time row"
        );
        let resumed = ReportSummary {
            training_seconds: Some(95.0),
            ..summary()
        };
        let md_resumed = std::fs::read_to_string(write_report_md(&dir, &resumed).unwrap()).unwrap();
        assert!(
            md_resumed.contains("| training time, all sittings | 1 min 35 s (95 s) |"),
            "{md_resumed}"
        );
        let links: Vec<&str> = md.lines().filter(|l| l.starts_with("![")).collect();
        assert_eq!(
            links,
            [
                "![loss](plots/loss.png)",
                "![lr](plots/lr.png)",
                "![grad norm](plots/grad_norm.png)",
                "![confusion](plots/confusion.png)"
            ]
        );
        if std::env::var_os("RNNKIT_KEEP_PLOTS").is_none() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn missing_empty_and_damaged_metrics_are_clear_errors() {
        let dir = temp_dir("bad-metrics");
        let e = format!("{:#}", write_plots(&dir, None, "loss", None).unwrap_err());
        assert!(e.contains("steps.csv: not found"), "{e}");

        std::fs::write(dir.join("metrics/steps.csv"), "").unwrap();
        let e = format!("{:#}", write_plots(&dir, None, "loss", None).unwrap_err());
        assert!(e.contains("steps.csv: the file is empty"), "{e}");

        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens\n",
        )
        .unwrap();
        let e = format!("{:#}", write_plots(&dir, None, "loss", None).unwrap_err());
        assert!(e.contains("no steps recorded"), "{e}");

        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens\n\
             0,1,1,2.5,1.0,false,0.001,false,10\n\
             0,2,2,oops,1.0,false,0.001,false,10\n",
        )
        .unwrap();
        let e = format!("{:#}", write_plots(&dir, None, "loss", None).unwrap_err());
        assert!(
            e.contains("line 3, column \"loss\": cannot read \"oops\""),
            "{e}"
        );

        std::fs::write(dir.join("metrics/steps.csv"), "epoch,step,loss\n0,1,2.5\n").unwrap();
        let e = format!("{:#}", write_plots(&dir, None, "loss", None).unwrap_err());
        assert!(e.contains("no column \"grad_norm\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_without_finished_epochs_still_gets_charts() {
        let dir = temp_dir("no-epochs");
        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens\n\
             0,1,1,2.5,1.0,false,0.001,false,10\n\
             0,2,2,2.4,0.9,false,0.001,false,10\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics/epochs.csv"),
            "epoch,train_loss,val_loss,lr,seconds,best\n",
        )
        .unwrap();
        assert_eq!(write_plots(&dir, None, "loss", None).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn smoothing_starts_at_the_first_value_and_follows_the_trend() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 1.0)).collect();
        assert!(ema(&pts, 5).iter().all(|p| (p.1 - 1.0).abs() < 1e-12));
        let pts = [(0.0, 2.0), (1.0, 0.0)];
        let s = ema(&pts, 3);
        assert_eq!(s[0].1, 2.0);
        assert!(s[1].1 > 0.0 && s[1].1 < 2.0);
        assert_eq!(smoothing_window(10), 1);
        assert_eq!(smoothing_window(100_000), 200);
        assert_eq!(clip_rate(&[true, false, false, false]), 0.25);
    }

    #[test]
    fn long_durations_are_readable() {
        assert_eq!(fmt_seconds(152.34), "2 min 32 s (152 s)");
        assert_eq!(fmt_seconds(12_300.0), "3 h 25 min (12300 s)");
    }
}
