//! Charts of a run, drawn from its metrics files: loss, learning rate and gradient norm from
//! `metrics/{steps,epochs}.csv`, and the gradient's reach through time from
//! `metrics/diagnostics.jsonl`.

use crate::error::Result;
use std::path::{Path, PathBuf};
#[cfg(feature = "plot")]
use {
    crate::diagnostics::GradientProfile,
    crate::error::Error,
    crate::plot::LineChart,
    serde::{Deserialize, de::DeserializeOwned},
    std::collections::BTreeMap,
};

/// The charts [`write_plots`] draws, in the order the report shows them.
pub(super) const STANDARD_PLOTS: [&str; 3] = ["loss.png", "lr.png", "grad_norm.png"];

/// One line of `steps.csv`: the columns the charts need (the others are ignored).
#[cfg(feature = "plot")]
#[derive(Deserialize)]
struct StepRow {
    epoch: u64,
    step: u64,
    loss: f64,
    grad_norm: f64,
    clipped: bool,
    lr: f64,
    skipped: bool,
}

#[cfg(feature = "plot")]
const STEP_COLUMNS: &[&str] = &[
    "epoch",
    "step",
    "loss",
    "grad_norm",
    "clipped",
    "lr",
    "skipped",
];

/// One line of `epochs.csv`: the columns the charts need (the others are ignored).
#[cfg(feature = "plot")]
#[derive(Deserialize)]
struct EpochRow {
    epoch: u64,
    val_loss: f64,
}

#[cfg(feature = "plot")]
const EPOCH_COLUMNS: &[&str] = &["epoch", "val_loss"];

/// An [`Error::Format`] about `path`.
#[cfg(feature = "plot")]
fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Format {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// An [`Error::Io`] on `path`.
#[cfg(feature = "plot")]
fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a metrics CSV file (header on line 1) into records of `T`, whose fields are the
/// `columns`; other columns are ignored. Values are trimmed; Rust's `NaN`, `inf` and `-inf`
/// read back as floats.
///
/// Errors ([`Error::Format`]): a missing or empty file, a missing column, a line with the wrong
/// number of values, a value that cannot be read (named with its line and column).
#[cfg(feature = "plot")]
fn read_csv<T: DeserializeOwned>(path: &Path, columns: &[&str]) -> Result<Vec<T>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(bad(
                path,
                "not found; the trainer writes it when given a run directory \
                 (check the run directory, or train first)",
            ));
        }
        Err(e) => return Err(io(path)(e)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(std::io::BufReader::new(file));
    let header = reader.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.is_empty() {
        return Err(bad(
            path,
            "the file is empty; the run stopped before writing metrics",
        ));
    }
    if let Some(name) = columns.iter().find(|c| !header.iter().any(|h| h == **c)) {
        return Err(bad(
            path,
            format!(
                "no column \"{name}\" (the header is \"{}\"); was it written by another \
                 version of rnnkit?",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let row = record.deserialize(Some(&header)).map_err(|e| {
            let line = line_of(path, record.position());
            let field = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.field(),
                _ => None,
            };
            match field.map(|k| k as usize) {
                Some(k) if k < record.len() => bad(
                    path,
                    format!(
                        "line {line}, column \"{}\": cannot read \"{}\"",
                        &header[k], &record[k]
                    ),
                ),
                _ => bad(path, format!("line {line}: {e}")),
            }
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// The line (1-based) of the record that starts at `pos` in `path`. The reader places a
/// record where the previous one ended, before any blank lines it skips; they are counted here.
#[cfg(feature = "plot")]
fn line_of(path: &Path, pos: Option<&csv::Position>) -> u64 {
    let Some(pos) = pos else { return 0 };
    let blank = std::fs::read(path).map_or(0, |bytes| {
        let rest = bytes.get(pos.byte() as usize..).unwrap_or_default();
        let skipped = rest
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        // Only whole lines are skipped: stop at the start of the record's own line.
        let skipped = rest[..skipped]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        rest[..skipped].iter().filter(|&&b| b == b'\n').count() as u64
    });
    pos.line() + blank
}

/// A [`csv::Error`] met while reading `path`, as the library's error.
#[cfg(feature = "plot")]
fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = line_of(path, e.position());
    let shown = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(source) => io(path)(source),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => bad(
            path,
            format!(
                "line {line}: {len} values for {expected_len} columns; the file is damaged \
                 (remove the line, or rerun)"
            ),
        ),
        csv::ErrorKind::Utf8 { err, .. } => bad(
            path,
            format!("line {line}: not UTF-8 text (column {})", err.field() + 1),
        ),
        _ => bad(path, shown),
    }
}

/// Where a chart's error goes: an [`Error::Io`] keeps its path; anything else (a chart with
/// nothing to draw) becomes an [`Error::Format`] naming the image.
#[cfg(feature = "plot")]
fn save(chart: &LineChart, path: &Path) -> Result<()> {
    chart.save_png(path).map_err(|e| match e {
        Error::Io { .. } => e,
        Error::Config(msg) => bad(path, format!("cannot draw: {msg}")),
        other => bad(path, format!("cannot draw: {other}")),
    })
}

/// Draws `RUN_DIR/plots/loss.png`, `lr.png` and `grad_norm.png` from the run's metrics files
/// `RUN_DIR/metrics/steps.csv` and `epochs.csv` (as the trainer writes them), and returns the
/// paths written.
///
/// - `loss.png`: training loss per step (smoothed) and validation loss per epoch, placed at the
///   step where the epoch ended; the y axis is labelled `loss_name` (e.g.
///   `cross-entropy (nats/token)`), with `baseline` (label, loss) as a reference line when
///   given (e.g. the loss of a memoryless guess on a synthetic task). Skipped steps and
///   non-finite losses are left out.
/// - `lr.png`: the learning rate used at each step.
/// - `grad_norm.png`: the global gradient norm before clipping, log scale, with the clip
///   threshold `clip_norm` as a reference line and the share of clipped steps in the title.
///
/// Built without the `plot` feature it draws nothing and returns no paths.
///
/// ```
/// use rnnkit::run::write_plots;
///
/// let run_dir = std::env::temp_dir().join(format!("rnnkit-doc-plots-{}", std::process::id()));
/// std::fs::create_dir_all(run_dir.join("metrics")).unwrap();
/// std::fs::write(
///     run_dir.join("metrics/steps.csv"),
///     "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,count\n\
///      0,1,1,2.5,1.5,true,0.001,false,64\n\
///      0,2,2,2.1,0.8,false,0.001,false,64\n\
///      1,1,3,NaN,inf,false,0.0005,true,64\n\
///      1,2,3,1.9,0.7,false,0.0005,false,64\n",
/// )
/// .unwrap();
/// std::fs::write(
///     run_dir.join("metrics/epochs.csv"),
///     "epoch,train_loss,val_loss,lr,seconds,best\n0,2.3,2.2,0.0005,1.5,true\n",
/// )
/// .unwrap();
/// let written = write_plots(&run_dir, Some(1.0), "cross-entropy (nats/token)", None).unwrap();
/// let names: Vec<_> = written.iter().map(|p| p.strip_prefix(&run_dir).unwrap()).collect();
/// if cfg!(feature = "plot") {
///     assert_eq!(names, ["plots/loss.png", "plots/lr.png", "plots/grad_norm.png"]);
/// } else {
///     assert!(names.is_empty());
/// }
/// # std::fs::remove_dir_all(&run_dir).unwrap();
/// ```
///
/// Errors ([`Error::Format`](crate::Error::Format) naming the file): a metrics file that is
/// missing or empty, a `steps.csv` in which every step was skipped (one with no steps draws
/// nothing: the run stopped before its first step), a missing
/// column, an unreadable value (named with its line and column), a chart with nothing to draw;
/// [`Error::Io`](crate::Error::Io): a file that cannot be read or written.
pub fn write_plots(
    run_dir: &Path,
    clip_norm: Option<f64>,
    loss_name: &str,
    baseline: Option<(&str, f64)>,
) -> Result<Vec<PathBuf>> {
    #[cfg(feature = "plot")]
    {
        draw_plots(run_dir, clip_norm, loss_name, baseline)
    }
    #[cfg(not(feature = "plot"))]
    {
        let _ = (run_dir, clip_norm, loss_name, baseline);
        Ok(Vec::new())
    }
}

#[cfg(feature = "plot")]
fn draw_plots(
    run_dir: &Path,
    clip_norm: Option<f64>,
    loss_name: &str,
    baseline: Option<(&str, f64)>,
) -> Result<Vec<PathBuf>> {
    let metrics = run_dir.join("metrics");
    let steps_path = metrics.join("steps.csv");
    let steps: Vec<StepRow> = read_csv(&steps_path, STEP_COLUMNS)?;
    if steps.is_empty() {
        // The run stopped before its first step (a stop request, or train.max_steps reached
        // already): there is nothing to chart, and that is not a failure.
        return Ok(Vec::new());
    }
    let epochs: Vec<EpochRow> = read_csv(&metrics.join("epochs.csv"), EPOCH_COLUMNS)?;

    // Loss: skipped updates carry no information about the model (their loss may be NaN).
    let train: Vec<(f64, f64)> = steps
        .iter()
        .filter(|s| !s.skipped && s.loss.is_finite())
        .map(|s| (s.step as f64, s.loss))
        .collect();
    if train.is_empty() && epochs.is_empty() {
        return Err(bad(
            &steps_path,
            "every recorded step was skipped or had a non-finite loss; there is no loss to \
             plot (the run diverged: lower the learning rate or enable clipping)",
        ));
    }
    let window = smoothing_window(train.len());
    let smoothed = ema(&train, window);
    let train_name = if window > 1 {
        format!("train (moving average of ~{window} steps)")
    } else {
        "train".to_string()
    };
    // The step at which each epoch ended: the last step logged in it.
    let mut epoch_end: BTreeMap<u64, f64> = BTreeMap::new();
    for s in &steps {
        let end = epoch_end.entry(s.epoch).or_insert(s.step as f64);
        *end = end.max(s.step as f64);
    }
    let val: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| epoch_end.get(&e.epoch).map(|&st| (st, e.val_loss)))
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

    let lr = LineChart::new("Learning rate")
        .x_label("step")
        .y_label("learning rate")
        .series("learning rate", steps.iter().map(|s| (s.step as f64, s.lr)));

    let clipped: Vec<bool> = steps.iter().map(|s| s.clipped).collect();
    let title = match clip_norm {
        Some(c) => format!(
            "Gradient norm before clipping (clipped at {c}: {:.1}% of steps)",
            100.0 * clip_rate(&clipped)
        ),
        None => "Gradient norm (no clipping)".to_string(),
    };
    let mut grad_norm = LineChart::new(title)
        .x_label("step")
        .y_label("global gradient norm ‖g‖₂")
        .log_y(true)
        .series(
            "gradient norm",
            steps.iter().map(|s| (s.step as f64, s.grad_norm)),
        );
    if let Some(c) = clip_norm {
        grad_norm = grad_norm.reference_line("clip threshold", c);
    }

    let plots = run_dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(io(&plots))?;
    let mut written = Vec::new();
    for (chart, name) in [loss, lr, grad_norm].iter().zip(STANDARD_PLOTS) {
        let path = plots.join(name);
        save(chart, &path)?;
        written.push(path);
    }
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

/// One line of `diagnostics.jsonl`: the parts the chart needs (the others are ignored).
#[cfg(feature = "plot")]
#[derive(Deserialize)]
struct DiagnosisLine {
    #[serde(default)]
    step: u64,
    profile: GradientProfile,
}

/// Draws `RUN_DIR/plots/grad_vs_distance.png` from `RUN_DIR/metrics/diagnostics.jsonl`
/// (written when `train.diagnostics_every` is set): ‖∂L/∂h_(T−1−d)‖ against d on a log scale,
/// one curve per diagnosis for up to five of them (the first, the last and evenly spaced ones
/// between), so the chart shows how the gradient's reach changes as the model trains.
///
/// Returns `None` when the run has no diagnoses (no file, or an empty one), and always when
/// built without the `plot` feature.
///
/// ```
/// use rnnkit::run::write_diagnostics_plot;
///
/// let run_dir = std::env::temp_dir().join(format!("rnnkit-doc-diag-{}", std::process::id()));
/// std::fs::create_dir_all(run_dir.join("metrics")).unwrap();
/// assert_eq!(write_diagnostics_plot(&run_dir).unwrap(), None); // no diagnoses yet
/// std::fs::write(
///     run_dir.join("metrics/diagnostics.jsonl"),
///     r#"{"step":10,"profile":{"distances":[0,1,2],"norm":[1.0,0.5,0.25],"per_layer":[],"cell_norm":null}}"#,
/// )
/// .unwrap();
/// let written = write_diagnostics_plot(&run_dir).unwrap();
/// if cfg!(feature = "plot") {
///     assert_eq!(written, Some(run_dir.join("plots/grad_vs_distance.png")));
/// } else {
///     assert_eq!(written, None);
/// }
/// # std::fs::remove_dir_all(&run_dir).unwrap();
/// ```
///
/// Errors: [`Error::Format`](crate::Error::Format) for a line that cannot be read (named with
/// its number) or a chart with nothing to draw; [`Error::Io`](crate::Error::Io) for a file that
/// cannot be read or written.
pub fn write_diagnostics_plot(run_dir: &Path) -> Result<Option<PathBuf>> {
    #[cfg(feature = "plot")]
    {
        draw_diagnostics(run_dir)
    }
    #[cfg(not(feature = "plot"))]
    {
        let _ = run_dir;
        Ok(None)
    }
}

#[cfg(feature = "plot")]
fn draw_diagnostics(run_dir: &Path) -> Result<Option<PathBuf>> {
    let path = run_dir.join("metrics/diagnostics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: DiagnosisLine = serde_json::from_str(line).map_err(|e| {
            // serde_json places the error within the one line it was given: keep the column.
            let msg = e.to_string();
            let place = format!(" at line {} column {}", e.line(), e.column());
            let msg = msg.strip_suffix(&place).unwrap_or(&msg);
            bad(
                &path,
                format!("line {}, column {}: {msg}", i + 1, e.column()),
            )
        })?;
        rows.push((row.step, row.profile));
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
    let plots = run_dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(io(&plots))?;
    let out = plots.join("grad_vs_distance.png");
    save(&chart, &out)?;
    Ok(Some(out))
}

// These tests draw charts: built without the `plot` feature, none of them run.
#[cfg(all(test, feature = "plot"))]
mod tests {
    use super::*;
    use crate::run::{ReportSummary, write_report_md};
    use std::fmt::Write as _;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// A fresh, empty folder for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rnnkit-run-{name}-{}", std::process::id()));
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
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps.csv: not found"), "{e}");

        std::fs::write(dir.join("metrics/steps.csv"), "").unwrap();
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps.csv: the file is empty"), "{e}");

        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens\n",
        )
        .unwrap();
        // A run stopped before its first step has nothing to chart, and is not an error.
        assert_eq!(
            write_plots(&dir, None, "loss", None).unwrap(),
            Vec::<PathBuf>::new()
        );

        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens\n\
             0,1,1,2.5,1.0,false,0.001,false,10\n\
             0,2,2,oops,1.0,false,0.001,false,10\n",
        )
        .unwrap();
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3, column \"loss\": cannot read \"oops\""),
            "{e}"
        );

        std::fs::write(dir.join("metrics/steps.csv"), "epoch,step,loss\n0,1,2.5\n").unwrap();
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
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
    fn a_header_only_epochs_file_and_unknown_columns_are_fine() {
        let dir = temp_dir("extra-columns");
        // A newer run's `count` where older ones had `tokens`, and a column nobody knows.
        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,future,grad_norm,clipped,lr,skipped,count\n\
             0,1,1,2.5,x,1.0,false,0.001,false,10\n\
             0,2,2,2.4,y,0.9,true,0.001,false,10\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics/epochs.csv"),
            "epoch,train_loss,val_loss,lr,seconds,best\n",
        )
        .unwrap();
        let rows: Vec<StepRow> = read_csv(&dir.join("metrics/steps.csv"), STEP_COLUMNS).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[1].step, rows[1].loss, rows[1].grad_norm),
            (2, 2.4, 0.9)
        );
        assert!(rows[1].clipped && !rows[1].skipped);
        let epochs: Vec<EpochRow> =
            read_csv(&dir.join("metrics/epochs.csv"), EPOCH_COLUMNS).unwrap();
        assert!(epochs.is_empty());
        assert_eq!(write_plots(&dir, Some(1.0), "loss", None).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_finite_values_read_back_as_written() {
        let dir = temp_dir("nan");
        // What the trainer writes for a step the divergence guard skipped.
        let steps = format!(
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,count\n\
             0,1,1,2.5,1.0,false,0.001,false,10\n\
             0,2,1,{},{},false,0.001,true,10\n\
             0,3,2,{},{},false,0.001,false,10\n",
            f32::NAN,
            f32::INFINITY,
            2.25f32,
            -f64::INFINITY,
        );
        assert!(
            steps.contains(",NaN,inf,") && steps.contains(",-inf,"),
            "{steps}"
        );
        std::fs::write(dir.join("metrics/steps.csv"), steps).unwrap();
        std::fs::write(
            dir.join("metrics/epochs.csv"),
            "epoch,train_loss,val_loss,lr,seconds,best\n0,2.4,NaN,0.001,1.0,false\n",
        )
        .unwrap();
        let rows: Vec<StepRow> = read_csv(&dir.join("metrics/steps.csv"), STEP_COLUMNS).unwrap();
        assert!(rows[1].loss.is_nan() && rows[1].skipped);
        assert_eq!(rows[1].grad_norm, f64::INFINITY);
        assert_eq!(rows[2].grad_norm, f64::NEG_INFINITY);
        let epochs: Vec<EpochRow> =
            read_csv(&dir.join("metrics/epochs.csv"), EPOCH_COLUMNS).unwrap();
        assert!(epochs[0].val_loss.is_nan());
        assert_eq!(write_plots(&dir, None, "loss", None).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_line_and_a_diverged_run_are_clear_errors() {
        let dir = temp_dir("damaged");
        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,count\n\
             0,1,1,2.5,1.0,false,0.001,false,10\n\
             \n\
             0,2,2,2.4,0.9\n",
        )
        .unwrap();
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("steps.csv: line 4: 5 values for 9 columns; the file is damaged"),
            "{e}"
        );

        std::fs::write(
            dir.join("metrics/steps.csv"),
            "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,count\n\
             0,1,0,NaN,inf,false,0.001,true,10\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("metrics/epochs.csv"),
            "epoch,train_loss,val_loss,lr,seconds,best\n",
        )
        .unwrap();
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("steps.csv: every recorded step was skipped"),
            "{e}"
        );

        std::fs::remove_file(dir.join("metrics/epochs.csv")).unwrap();
        let e = write_plots(&dir, None, "loss", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("epochs.csv: not found"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn diagnoses_are_drawn_and_a_bad_line_is_named() {
        let dir = temp_dir("diagnostics");
        assert_eq!(write_diagnostics_plot(&dir).unwrap(), None);
        let line = |step: u64, r: f64| {
            format!(
                r#"{{"step":{step},"epoch":0,"decay_rate":{r},"profile":{{"distances":[0,1,2,4],"norm":[1.0,{},{},{}],"per_layer":[[1.0,0.5,0.25,0.0625]],"cell_norm":null}},"gates":[]}}"#,
                r,
                r * r,
                r.powi(4)
            )
        };
        let text: String = (1..=7)
            .map(|k| line(10 * k, 0.9 - 0.1 * k as f64) + "\n")
            .collect();
        std::fs::write(dir.join("metrics/diagnostics.jsonl"), &text).unwrap();
        let out = write_diagnostics_plot(&dir).unwrap().unwrap();
        assert_eq!(out, dir.join("plots/grad_vs_distance.png"));
        assert!(std::fs::read(&out).unwrap().starts_with(&PNG_SIGNATURE));

        std::fs::write(
            dir.join("metrics/diagnostics.jsonl"),
            text + "\n{\"step\":80,\"profile\":{\"distances\":[0]}}\n",
        )
        .unwrap();
        let e = write_diagnostics_plot(&dir).unwrap_err().to_string();
        assert!(
            e.contains("diagnostics.jsonl: line 9, column ") && e.contains("missing field `norm`"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
