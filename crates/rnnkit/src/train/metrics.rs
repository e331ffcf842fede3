//! Per-step and per-epoch metrics of a run, as CSV (for spreadsheets and plots) and JSON lines
//! (for tools), written from the same serde records: `metrics/steps.{csv,jsonl}` and
//! `metrics/epochs.{csv,jsonl}`, appended, so a resumed run continues the same files.

use super::checkpoint::Progress;
use super::report::{EpochReport, StepReport};
use crate::error::{Error, Result};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The four metrics files of a run directory.
///
/// Opening trims lines written after the position the run restarts from (`at`): a run killed
/// after its last checkpoint wrote lines for steps it will redo, and without trimming those
/// steps would appear twice. A fresh run (`at` at the start) starts the files over.
pub(crate) struct Metrics {
    files: Option<Files>,
}

struct Files {
    steps: Table,
    epochs: Table,
}

/// One record type in a CSV file and a JSON-lines file.
struct Table {
    csv: csv::Writer<File>,
    csv_path: PathBuf,
    json: File,
    json_path: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Table {
    /// Opens `dir/{name}.csv` and `dir/{name}.jsonl` for appending, keeping only the lines
    /// `keep` accepts (the CSV header always).
    fn open(
        dir: &Path,
        name: &str,
        header: &[&str],
        keep: impl Fn(&str, bool) -> bool,
    ) -> Result<Table> {
        let csv_path = dir.join(format!("{name}.csv"));
        let json_path = dir.join(format!("{name}.jsonl"));
        for (path, csv) in [(&csv_path, true), (&json_path, false)] {
            if !path.exists() {
                continue;
            }
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            let mut kept = String::new();
            for (i, line) in text.lines().enumerate() {
                if (csv && i == 0) || keep(line, csv) {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            if kept.len() != text.len() {
                crate::io::write_atomic(path, kept.as_bytes())?;
            }
        }
        let append = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io(path))
        };
        // A file that exists already has its header (or is empty: then it gets one). The
        // header is written now, not with the first record, so that a run stopped before its
        // first epoch still leaves a readable `epochs.csv`.
        let fresh = std::fs::metadata(&csv_path).map_or(true, |m| m.len() == 0);
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(append(&csv_path)?);
        if fresh {
            let csv_err = |e: csv::Error| Error::Io {
                path: csv_path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            };
            csv.write_record(header).map_err(csv_err)?;
            csv.flush().map_err(io(&csv_path))?;
        }
        Ok(Table {
            csv,
            json: append(&json_path)?,
            csv_path,
            json_path,
        })
    }

    /// Appends one record to both files, flushed: a killed run leaves whole lines.
    fn write(&mut self, record: &impl Serialize) -> Result<()> {
        let csv_err = |e: csv::Error| Error::Io {
            path: self.csv_path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        };
        self.csv.serialize(record).map_err(csv_err)?;
        self.csv.flush().map_err(io(&self.csv_path))?;
        let line = serde_json::to_string(record)
            .map_err(|e| Error::Config(format!("cannot encode a metrics record: {e}")))?;
        writeln!(self.json, "{line}").map_err(io(&self.json_path))
    }
}

/// The columns of `steps.csv`: [`StepReport`]'s serialized fields, in order.
const STEP_COLUMNS: &[&str] = &[
    "epoch",
    "chunk",
    "step",
    "loss",
    "grad_norm",
    "clipped",
    "lr",
    "skipped",
    "count",
];

/// The columns of `epochs.csv`: [`EpochReport`]'s fields, in order.
const EPOCH_COLUMNS: &[&str] = &["epoch", "train_loss", "val_loss", "lr", "seconds", "best"];

/// The `(epoch, chunk)` a metrics line records (CSV: its first two columns).
fn position(line: &str, csv: bool) -> (Option<usize>, Option<usize>) {
    if csv {
        let mut f = line.split(',');
        let e = f.next().and_then(|v| v.parse::<usize>().ok());
        let c = f.next().and_then(|v| v.parse::<usize>().ok());
        (e, c)
    } else {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            return (None, None);
        };
        let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
        (get("epoch"), get("chunk"))
    }
}

impl Metrics {
    /// The metrics files of `run_dir` (none without one), trimmed to position `at`.
    pub(crate) fn open(run_dir: Option<&Path>, at: &Progress) -> Result<Self> {
        let Some(dir) = run_dir else {
            return Ok(Metrics { files: None });
        };
        let dir = dir.join("metrics");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let steps = Table::open(&dir, "steps", STEP_COLUMNS, |line, csv| {
            match position(line, csv) {
                (Some(e), c) => e < at.epoch || (e == at.epoch && c.is_some_and(|c| c <= at.chunk)),
                (None, _) => false,
            }
        })?;
        let epochs = Table::open(&dir, "epochs", EPOCH_COLUMNS, |line, csv| {
            position(line, csv).0.is_some_and(|e| e < at.epoch)
        })?;
        Ok(Metrics {
            files: Some(Files { steps, epochs }),
        })
    }

    pub(crate) fn step(&mut self, r: &StepReport) -> Result<()> {
        match &mut self.files {
            Some(f) => f.steps.write(r),
            None => Ok(()),
        }
    }

    pub(crate) fn epoch(&mut self, r: &EpochReport) -> Result<()> {
        match &mut self.files {
            Some(f) => f.epochs.write(r),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header serde would write for `record`.
    fn serde_header(record: &impl Serialize) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(record).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_string()
    }

    #[test]
    fn written_headers_are_the_records_fields() {
        let step = StepReport {
            epoch: 0,
            chunk: 1,
            chunks: 2,
            step: 1,
            loss: 1.0,
            grad_norm: 1.0,
            clipped: false,
            lr: 0.1,
            skipped: false,
            count: 3,
        };
        assert_eq!(serde_header(&step), STEP_COLUMNS.join(","));
        let epoch = EpochReport {
            epoch: 0,
            train_loss: 1.0,
            val_loss: 1.0,
            lr: 0.1,
            seconds: 1.0,
            best: true,
        };
        assert_eq!(serde_header(&epoch), EPOCH_COLUMNS.join(","));
    }
}
