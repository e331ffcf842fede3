//! `rnnkit classify` and `rnnkit forecast`: a trained run applied to new data, prepared with
//! the run's saved tokenizer or scaler.

use crate::run_config::{RunConfig, load_run_config, usage};
use anyhow::{Context, Result};
use rnnkit::data::series::{format_timestamp, step_forward};
use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::TaskKind;
use rnnkit::tasks::classify::LoadedClassifier;
use rnnkit::tasks::forecast::LoadedForecaster;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// What `rnnkit classify` was given.
pub struct ClassifyArgs {
    /// The run directory.
    pub model: PathBuf,
    /// A file of texts, one per line (`-` for standard input).
    pub input: Option<PathBuf>,
    /// Texts given on the command line.
    pub texts: Vec<String>,
    /// Show the `top` most likely classes.
    pub top: usize,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
}

/// Prints `text<TAB>class<TAB>probability` per text (with `top` > 1, further class and
/// probability pairs follow).
pub fn classify(args: ClassifyArgs) -> Result<()> {
    let cfg = match load_run_config(&args.model)? {
        RunConfig::Classify(c) => c,
        other => return Err(wrong_task(&args.model, other.kind(), "classify")),
    };
    let mut texts = args.texts.clone();
    if let Some(path) = &args.input {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
                |e| usage(format!("reading {}: {e}", path.display())),
            )?))
        };
        for line in reader.lines() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if !line.trim().is_empty() {
                texts.push(line.trim().to_string());
            }
        }
    }
    if texts.is_empty() {
        return Err(usage(
            "nothing to classify: give texts as arguments or --input FILE (one per line, - for \
             standard input)"
                .into(),
        ));
    }
    let loaded = LoadedClassifier::load(
        &RunDir::open(&args.model)?,
        cfg,
        Weights::latest_if(args.latest),
    )?;
    let probs = loaded.probabilities(&texts)?;
    let top = args.top.clamp(1, loaded.classes.len());
    let mut out = String::new();
    for (text, row) in texts.iter().zip(probs.rows()) {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        out.push_str(text);
        for &c in &order[..top] {
            out.push_str(&format!("\t{}\t{:.4}", loaded.classes[c], row[c]));
        }
        out.push('\n');
    }
    crate::stdout::emit(&out)?; // a reader that has gone (`| head -1`) ends the command quietly
    Ok(())
}

/// What `rnnkit forecast` was given.
pub struct ForecastArgs {
    /// The run directory.
    pub model: PathBuf,
    /// The recent history, a CSV with the training columns.
    pub input: PathBuf,
    /// Where to write the forecast CSV (standard output when absent).
    pub out: Option<PathBuf>,
    /// Also draw the history and the forecast to this PNG.
    pub plot: Option<PathBuf>,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
}

/// Forecasts the `horizon` steps after the last row of the input, in original units, as CSV:
/// `step`, `timestamp` (when the series has timestamps), then one column per target.
pub fn forecast(args: ForecastArgs) -> Result<()> {
    let cfg = match load_run_config(&args.model)? {
        RunConfig::Forecast(c) => c,
        other => return Err(wrong_task(&args.model, other.kind(), "forecast")),
    };
    let loaded = LoadedForecaster::load(
        &RunDir::open(&args.model)?,
        &cfg,
        Weights::latest_if(args.latest),
    )?;
    let data = loaded.prepare(&args.input)?;
    let x = data.future_input()?;
    let pred = loaded.model.predict(x.view(), None)?; // [1, H, K]
    let flat = pred.iter().copied().collect::<ndarray::Array1<f32>>();
    let values = data.future_to_original(flat.view())?; // [H, K]
    let targets = &data.config.target_columns;
    let times: Option<Vec<i64>> = match (&data.table.timestamps, data.table.step) {
        (Some(ts), Some(step)) => {
            let last = *ts.last().expect("a loaded table has rows");
            Some(
                (1..=values.nrows() as i64)
                    .map(|k| step_forward(last, step, k))
                    .collect(),
            )
        }
        _ => None,
    };
    let mut csv = String::from("step");
    if times.is_some() {
        csv.push_str(",timestamp");
    }
    for t in targets {
        csv.push(',');
        csv.push_str(&csv_field(t));
    }
    csv.push('\n');
    for (h, row) in values.rows().into_iter().enumerate() {
        csv.push_str(&(h + 1).to_string());
        if let Some(ts) = &times {
            csv.push(',');
            csv.push_str(&format_timestamp(ts[h]));
        }
        for v in row {
            csv.push_str(&format!(",{v}"));
        }
        csv.push('\n');
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => {
            // A reader that quit early (`| head`) still gets the plot written.
            crate::stdout::emit(&csv)?;
        }
    }
    if let Some(png) = &args.plot {
        plot_future(&data, &values, times.as_deref(), png)?;
        eprintln!("wrote {}", png.display());
    }
    Ok(())
}

/// The input's last rows and the forecast after them, for the first target.
#[cfg(feature = "plot")]
fn plot_future(
    data: &rnnkit::data::series::SeriesData,
    values: &ndarray::Array2<f64>,
    times: Option<&[i64]>,
    png: &Path,
) -> Result<()> {
    let years = rnnkit::tasks::forecast::time_axis(data);
    let to_year = |s: i64| 1970.0 + s as f64 / (365.2425 * 86400.0);
    let n = data.table.len();
    let keep = (4 * data.config.lookback).max(4 * values.nrows()).min(n);
    let orig = data.targets_original();
    let history: Vec<(f64, f64)> = (n - keep..n).map(|r| (years[r], orig[[r, 0]])).collect();
    let future: Vec<(f64, f64)> = (0..values.nrows())
        .map(|h| {
            let x = times.map_or((n + h) as f64, |t| to_year(t[h]));
            (x, values[[h, 0]])
        })
        .collect();
    let target = &data.config.target_columns[0];
    rnnkit::plot::ForecastChart::new(format!(
        "{target}: the next {} steps after {}",
        values.nrows(),
        data.table.path
    ))
    .x_label(if times.is_some() { "year" } else { "row" })
    .y_label(target.clone())
    .truth("history", history)
    .forecast("forecast", future)
    .save_png(png)
    .with_context(|| format!("drawing {}", png.display()))?;
    Ok(())
}

/// Built without the `plot` feature, `--plot` is an error (after the forecast is written).
#[cfg(not(feature = "plot"))]
fn plot_future(
    _data: &rnnkit::data::series::SeriesData,
    _values: &ndarray::Array2<f64>,
    _times: Option<&[i64]>,
    png: &Path,
) -> Result<()> {
    Err(usage(format!(
        "--plot {}: this rnnkit was built without charts (the `plot` feature); rebuild it with \
         the default features, or leave out --plot",
        png.display()
    )))
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The error for a run of another task than the command serves.
pub fn wrong_task(dir: &Path, task: TaskKind, command: &str) -> anyhow::Error {
    let right = match task {
        TaskKind::Lm => "generate or evaluate",
        TaskKind::Classify => "classify or evaluate",
        TaskKind::Forecast => "forecast or evaluate",
        TaskKind::Synthetic => "train; its scores are in metrics.json",
    };
    usage(format!(
        "{}: a task = \"{task}\" run; `rnnkit {command}` needs a {command} model (use rnnkit \
         {right})",
        dir.display()
    ))
}
