//! Loading a time series from a CSV file with a header: named columns picked, numbers parsed,
//! timestamps checked, missing values handled, gaps reported.
//!
//! Line ends may be `\n`, `\r\n` or a lone `\r` (old Mac files such as the airline-passengers
//! example). The csv crate splits records on all three, but counts lines only at `\n` and, for
//! `\r\n`, reports each record one line early; so every line end is turned into `\n` before
//! parsing, and the line numbers in messages are the ones an editor shows.
//! A UTF-8 byte-order mark is skipped. Blank lines are skipped, except in a one-column file
//! without timestamps, where a blank line between rows is that column's empty (missing) cell.
//!
//! Row numbers in messages are file lines as an editor shows them (header = line 1).

use super::missing::{MissingPolicy, fill_column, is_missing};
use super::time::{Gap, TIMESTAMP_FORMATS, find_gaps, parse_timestamp, regular_step};
use crate::error::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// What to take from a CSV file (the loading part of
/// [`crate::data::series::SeriesConfig`]).
///
/// ```
/// use rnnkit::data::series::{LoadOptions, MissingPolicy};
/// let o = LoadOptions::new(&["co2"]).timestamp("date").missing(MissingPolicy::Interpolate);
/// assert_eq!(o.columns, vec!["co2".to_string()]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// Numeric columns to load, in this order.
    pub columns: Vec<String>,
    /// The timestamp column, if any: parsed, checked to increase, and used to find gaps.
    pub timestamp_column: Option<String>,
    /// What to do with missing cells.
    pub missing: MissingPolicy,
}

impl LoadOptions {
    /// Options loading `columns`, no timestamp, missing values an error.
    pub fn new(columns: &[&str]) -> Self {
        LoadOptions {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Sets the timestamp column.
    pub fn timestamp(mut self, column: &str) -> Self {
        self.timestamp_column = Some(column.to_string());
        self
    }

    /// Sets the missing-value policy.
    pub fn missing(mut self, policy: MissingPolicy) -> Self {
        self.missing = policy;
        self
    }
}

/// A cell that was missing in the file and has been filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilledCell {
    /// 0-based data row.
    pub row: usize,
    /// The line in the file (header = line 1).
    pub line: usize,
    /// The column's name.
    pub column: String,
}

/// A loaded series: numeric columns `[N, C]` in f64 (original units), row by row with the file
/// lines they came from, optional timestamps, and what was irregular about it.
///
/// ```
/// use rnnkit::data::series::{LoadOptions, MissingPolicy, SeriesTable};
/// let csv = "date,co2\n19580329,316.1\n19580405,\n19580412,317.6\n";
/// let opts = LoadOptions::new(&["co2"]).timestamp("date").missing(MissingPolicy::Interpolate);
/// let t = SeriesTable::from_reader("co2.csv", csv.as_bytes(), &opts).unwrap();
/// assert_eq!(t.values.column(0).to_vec(), vec![316.1, 316.85, 317.6]);
/// assert_eq!(t.step, Some(7 * 86_400));
/// assert_eq!(t.filled[0].line, 3);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesTable {
    /// The file (or source name) it came from, for messages.
    pub path: String,
    /// Column names, one per column of `values`.
    pub columns: Vec<String>,
    /// `[N, C]` values, missing ones filled per the policy.
    pub values: Array2<f64>,
    /// File line of each row (header = line 1).
    pub lines: Vec<usize>,
    /// Seconds since 1970-01-01 of each row, strictly increasing, when a timestamp column was
    /// named.
    pub timestamps: Option<Vec<i64>>,
    /// The regular step in seconds (median difference of timestamps).
    pub step: Option<i64>,
    /// Places where rows are absent (timestamps further apart than the step). Reported, not
    /// filled: inserting rows is a decision about the data the user should make.
    pub gaps: Vec<Gap>,
    /// Cells that were missing and have been filled.
    pub filled: Vec<FilledCell>,
}

impl SeriesTable {
    /// Loads a CSV file.
    ///
    /// # Errors
    /// [`Error::Read`] when the file cannot be read; [`Error::Data`] naming the file and the
    /// row/column for every problem with its content (see [`SeriesTable::from_reader`]).
    pub fn from_path(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| Error::Read {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(&name, file, opts)
    }

    /// Loads CSV text from any reader; `name` stands for the file in messages.
    ///
    /// # Errors
    /// [`Error::Data`] for: an empty file, a header without data rows, a missing column (the
    /// message lists the columns and suggests the closest), a row with the wrong number of
    /// fields, a cell that is not a number (its text is shown), a missing value under
    /// [`MissingPolicy::Error`] or before any observed value, a timestamp that does not parse
    /// or does not increase.
    pub fn from_reader(name: &str, mut reader: impl Read, opts: &LoadOptions) -> Result<Self> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Read {
                path: name.to_string(),
                source,
            })?;
        let bytes = normalize_line_ends(&bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::data(
                name,
                "",
                "the file is empty; expected a header line naming the columns, then one row per \
                 time step",
            ));
        }
        if opts.columns.is_empty() {
            return Err(Error::Config(
                "series: name at least one column to load".into(),
            ));
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes.as_slice());
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_error(name, &bytes, e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let find = |col: &str| -> Result<usize> {
            header
                .iter()
                .position(|h| h == col)
                .ok_or_else(|| Error::data(name, "", missing_column_message(col, &header)))
        };
        let col_idx: Vec<usize> = opts
            .columns
            .iter()
            .map(|c| find(c))
            .collect::<Result<_>>()?;
        let ts_idx = opts.timestamp_column.as_deref().map(find).transpose()?;

        let c = col_idx.len();
        let mut flat = Vec::new();
        let mut lines = Vec::new();
        let mut stamps = Vec::new();
        let mut missing_cells = Vec::new();
        let mut lines_at = LineCounter::default();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| csv_error(name, &bytes, e))?;
            let line = lines_at.line(&bytes, rec.position().map_or(0, |p| p.byte() as usize));
            // The csv crate skips blank lines; in a one-column file without timestamps a blank
            // line between rows is an empty cell, so it becomes a missing value, not nothing.
            if header.len() == 1 && ts_idx.is_none() {
                let prev = lines.last().copied().unwrap_or(1);
                for blank in prev + 1..line {
                    if opts.missing == MissingPolicy::Error {
                        return Err(Error::data(
                            name,
                            cell_at(blank, &header[0]),
                            "missing value (a blank line); set missing = \"ffill\" or missing \
                             = \"interpolate\" to fill it, or fix the file",
                        ));
                    }
                    missing_cells.push((lines.len(), 0));
                    lines.push(blank);
                    flat.extend(std::iter::repeat_n(f64::NAN, c));
                }
            }
            let row = lines.len();
            lines.push(line);
            if let Some(ti) = ts_idx {
                let text = rec.get(ti).unwrap_or("");
                let at = cell_at(line, &header[ti]);
                let t = parse_timestamp(text).ok_or_else(|| {
                    Error::data(
                        name,
                        &at,
                        format!("timestamp {text:?} does not parse; accepted: {TIMESTAMP_FORMATS}"),
                    )
                })?;
                if let Some(&prev) = stamps.last()
                    && t <= prev
                {
                    return Err(Error::data(
                        name,
                        &at,
                        format!(
                            "timestamp {text:?} is not after the previous row's (line {}); \
                                 timestamps must strictly increase: sort the file by time and \
                                 remove duplicate rows",
                            lines[row - 1]
                        ),
                    ));
                }
                stamps.push(t);
            }
            for (k, &ci) in col_idx.iter().enumerate() {
                let text = rec.get(ci).unwrap_or("");
                if is_missing(text) {
                    if opts.missing == MissingPolicy::Error {
                        return Err(Error::data(
                            name,
                            cell_at(line, &header[ci]),
                            format!(
                                "missing value ({text:?}); set missing = \"ffill\" or missing = \
                                 \"interpolate\" to fill it, or fix the file"
                            ),
                        ));
                    }
                    missing_cells.push((row, k));
                    flat.push(f64::NAN);
                    continue;
                }
                match text.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => flat.push(v),
                    _ => {
                        return Err(Error::data(
                            name,
                            cell_at(line, &header[ci]),
                            format!(
                                "not a finite number: {text:?}; fix the cell, or leave it empty \
                                 (or NA) and choose a missing-value policy"
                            ),
                        ));
                    }
                }
            }
        }
        if lines.is_empty() {
            return Err(Error::data(
                name,
                "",
                "the file has a header but no data rows; expected one row per time step",
            ));
        }
        let mut values = Array2::from_shape_vec((lines.len(), c), flat)
            .map_err(|e| Error::Shape(e.to_string()))?;
        for k in 0..c {
            let mut col = values.column(k).to_vec();
            fill_column(&mut col, opts.missing).map_err(|_| {
                let first = col.iter().position(|v| !v.is_nan());
                Error::data(
                    name,
                    cell_at(lines[0], &opts.columns[k]),
                    match first {
                        None => "the column has no values at all; load other columns".to_string(),
                        Some(f) => format!(
                            "missing values before the first observed one (line {}) cannot be \
                             filled from the past; delete the leading rows",
                            lines[f]
                        ),
                    },
                )
            })?;
            values.column_mut(k).assign(&ndarray::Array1::from(col));
        }
        let filled = missing_cells
            .into_iter()
            .map(|(row, k)| FilledCell {
                row,
                line: lines[row],
                column: opts.columns[k].clone(),
            })
            .collect();
        let (timestamps, step, gaps) = if ts_idx.is_some() {
            let step = regular_step(&stamps);
            let gaps = step.map_or_else(Vec::new, |s| find_gaps(&stamps, s, &lines));
            (Some(stamps), step, gaps)
        } else {
            (None, None, Vec::new())
        };
        Ok(SeriesTable {
            path: name.to_string(),
            columns: opts.columns.clone(),
            values,
            lines,
            timestamps,
            step,
            gaps,
            filled,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.nrows()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.nrows() == 0
    }

    /// Index of a column by name, or a [`Error::Data`] listing the columns and suggesting the
    /// closest one.
    ///
    /// ```
    /// use rnnkit::data::series::{LoadOptions, SeriesTable};
    /// let t = SeriesTable::from_reader("x.csv", "a,b\n1,2\n".as_bytes(), &LoadOptions::new(&["a", "b"])).unwrap();
    /// assert_eq!(t.column_index("b").unwrap(), 1);
    /// assert!(t.column_index("B").unwrap_err().to_string().contains("did you mean \"b\""));
    /// ```
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::data(&self.path, "", missing_column_message(name, &self.columns)))
    }
}

/// `row 12, column "co2"`, with the row as a file line.
pub(crate) fn cell_at(line: usize, column: &str) -> String {
    format!("row {line}, column {column:?}")
}

/// Turns `\r\n` and lone `\r` into `\n`, and drops a UTF-8 byte-order mark.
fn normalize_line_ends(bytes: &[u8]) -> Vec<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
            b'\r' => out.push(b'\n'),
            _ => out.push(b),
        }
    }
    out
}

/// File lines of record starts, counted here: after blank lines (which it skips) and `\r\n`,
/// the csv crate's own line numbers are one short, and its byte offsets point at the skipped
/// blank lines rather than at the record.
#[derive(Default)]
struct LineCounter {
    /// Bytes counted so far.
    byte: usize,
    /// Newlines in `bytes[..byte]`.
    newlines: usize,
}

impl LineCounter {
    /// The 1-based line of the record that csv places at `start` (offsets must not decrease).
    fn line(&mut self, bytes: &[u8], start: usize) -> usize {
        let mut b = start.max(self.byte);
        while bytes.get(b) == Some(&b'\n') {
            b += 1;
        }
        self.newlines += bytes[self.byte..b].iter().filter(|&&c| c == b'\n').count();
        self.byte = b;
        self.newlines + 1
    }
}

fn csv_error(name: &str, bytes: &[u8], e: csv::Error) -> Error {
    let line = e
        .position()
        .map(|p| {
            format!(
                "line {}",
                LineCounter::default().line(bytes, p.byte() as usize)
            )
        })
        .unwrap_or_default();
    let msg = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} fields where the header has {expected_len}; every row needs one cell per \
             column (leave a cell empty for a missing value)"
        ),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8; save the file as UTF-8".to_string(),
        _ => format!("cannot parse CSV: {e}"),
    };
    Error::data(name, line, msg)
}

fn missing_column_message(col: &str, available: &[String]) -> String {
    let list = available
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut msg = format!("no column {col:?}; the columns are {list}");
    if let Some(best) = closest(col, available) {
        msg.push_str(&format!("; did you mean {best:?}?"));
    }
    msg
}

/// The name closest to `word` by edit distance (case-insensitive), if it is close enough to be
/// a plausible typo: at most a third of the longer name's length, and at least one edit
/// allowed.
fn closest<'a>(word: &str, names: &'a [String]) -> Option<&'a str> {
    let w = word.to_lowercase();
    names
        .iter()
        .map(|n| (levenshtein(&w, &n.to_lowercase()), n))
        .filter(|(d, n)| *d <= (w.chars().count().max(n.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + (ca != cb) as usize)
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(csv: &str, opts: &LoadOptions) -> Result<SeriesTable> {
        SeriesTable::from_reader("t.csv", csv.as_bytes(), opts)
    }

    #[test]
    fn line_ends_and_lines() {
        let o = LoadOptions::new(&["y"]).timestamp("ds");
        for csv in [
            "ds,y\r1949-01-01,112\r1949-02-01,118\r",
            "ds,y\r\n1949-01-01,112\r\n1949-02-01,118",
        ] {
            let t = load(csv, &o).unwrap();
            assert_eq!(t.values.column(0).to_vec(), vec![112.0, 118.0]);
            assert_eq!(t.lines, vec![2, 3]);
        }
        let e = load("ds,y\r1949-01-01,112\r1949-02-01,x\r", &o).unwrap_err();
        assert!(e.to_string().contains("row 3, column \"y\""), "{e}");
    }

    #[test]
    fn ragged_row_names_line() {
        let e = load("a,b\n1,2\n3\n", &LoadOptions::new(&["a"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.csv: line 3: 1 fields where the header has 2"),
            "{e}"
        );
    }

    #[test]
    fn suggestions() {
        let names: Vec<String> = ["date", "co2", "HUFL"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("c02", &names), Some("co2"));
        assert_eq!(closest("hufl", &names), Some("HUFL"));
        assert_eq!(closest("temperature", &names), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn blank_line_in_one_column_file_is_missing() {
        let e = load("y\n1\n\n3\n\n", &LoadOptions::new(&["y"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.csv: row 3, column \"y\": missing value"),
            "{e}"
        );
        let o = LoadOptions::new(&["y"]).missing(MissingPolicy::Interpolate);
        let t = load("y\n1\n\n3\n\n", &o).unwrap();
        assert_eq!(t.values.column(0).to_vec(), vec![1.0, 2.0, 3.0]); // trailing blank ignored
        assert_eq!(t.lines, vec![2, 3, 4]);
        // Blank lines in a wider file are skipped, and the lines after them still count.
        let e = load("a,b\n\n1,2\n\n3,x\n", &LoadOptions::new(&["b"]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.csv: row 5, column \"b\""), "{e}");
        let e = load("a,b\n\n1,2\n\n3\n", &LoadOptions::new(&["b"]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.csv: line 5: 1 fields"), "{e}");
    }

    #[test]
    fn leading_missing_with_ffill_names_the_row() {
        let o = LoadOptions::new(&["y"]).missing(MissingPolicy::Ffill);
        let e = load("y\nNA\n2\n", &o).unwrap_err().to_string();
        assert!(
            e.contains("row 2, column \"y\"") && e.contains("line 3"),
            "{e}"
        );
    }
}
