//! `report.md`: a run's command, final numbers, samples, notes and charts on one Markdown page.

use super::plots::STANDARD_PLOTS;
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What `report.md` shows about a finished run, filled by the caller (the `train` command)
/// from the run's summary and evaluation. Every field may be left at its default: empty text
/// and `None` are left out of the report.
///
/// ```
/// use rnnkit::run::ReportSummary;
///
/// let summary = ReportSummary {
///     task: "char-lm".into(),
///     status: "finished".into(),
///     best_val: Some((1.58, 1)),
///     epochs: 3,
///     steps: 120,
///     ..ReportSummary::default()
/// };
/// assert_eq!(summary.clip_rate, None); // shown as "clipping off"
/// ```
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
/// ```
/// use rnnkit::run::{ReportSummary, write_report_md};
///
/// let run_dir = std::env::temp_dir().join(format!("rnnkit-doc-report-{}", std::process::id()));
/// std::fs::create_dir_all(&run_dir).unwrap();
/// let summary = ReportSummary {
///     task: "char-lm".into(),
///     steps: 120,
///     wall_seconds: 152.3,
///     ..ReportSummary::default()
/// };
/// let path = write_report_md(&run_dir, &summary).unwrap();
/// let md = std::fs::read_to_string(&path).unwrap();
/// assert!(md.starts_with("# rnnkit training report: char-lm"));
/// assert!(md.contains("| wall time | 2 min 32 s (152 s) |"));
/// # std::fs::remove_dir_all(&run_dir).unwrap();
/// ```
///
/// Errors ([`Error::Io`], naming the path): the file cannot be written, or `plots/` cannot be
/// listed.
pub fn write_report_md(run_dir: &Path, summary: &ReportSummary) -> Result<PathBuf> {
    let md = render_report(&list_plots(&run_dir.join("plots"))?, summary);
    let path = run_dir.join("report.md");
    std::fs::write(&path, md).map_err(io(&path))?;
    Ok(path)
}

/// An [`Error::Io`] on `path`.
fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The PNG files in `plots` (their names), standard charts first, then the others by name.
fn list_plots(plots: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if plots.is_dir() {
        for entry in std::fs::read_dir(plots).map_err(io(plots))? {
            let entry = entry.map_err(io(plots))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_durations_are_readable() {
        assert_eq!(fmt_seconds(152.34), "2 min 32 s (152 s)");
        assert_eq!(fmt_seconds(12_300.0), "3 h 25 min (12300 s)");
    }
}
