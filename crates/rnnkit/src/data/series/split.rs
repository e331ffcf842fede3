//! Chronological train / validation / test splits, and their windows.
//!
//! The rows are cut in time order (never shuffled: a model must not see the future), by
//! fractions or by timestamp cutoffs. Each split is then windowed on its own, so no window's
//! targets cross a split boundary.
//!
//! With `context` on, a validation or test window's lookback may reach back into the previous
//! split's rows, while its targets stay inside its own split. This is what forecasters do: at
//! forecast time the recent past is known, whichever split it fell in, so using it as input
//! leaks nothing (the scaler is still fitted on training rows only). Without it, the first
//! `lookback` rows of every split are never forecast, and a short test split may yield no
//! window at all. With `context` off, no window of one split touches another split's rows.

use super::time::parse_timestamp;
use super::window::Windows;
use crate::error::{Error, Result};
use ndarray::{ArrayView2, s};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// How to cut the rows (config table `split`, with key `by = "fractions"` or `"cutoffs"`).
///
/// ```
/// use rnnkit::data::series::SplitSpec;
/// let s: SplitSpec = serde_json::from_str(r#"{"by": "fractions", "train": 0.8, "val": 0.1}"#).unwrap();
/// let rows = s.split_rows(100, None).unwrap();
/// assert_eq!((rows.train, rows.val, rows.test), (0..80, 80..90, 90..100));
/// let c: SplitSpec = serde_json::from_str(r#"{"by": "cutoffs", "val_start": "2001", "test_start": "2003"}"#).unwrap();
/// let years: Vec<i64> = (2000..2005).map(|y| rnnkit::data::series::parse_timestamp(&y.to_string()).unwrap()).collect();
/// assert_eq!(c.split_rows(5, Some(&years)).unwrap().val, 1..3);
/// assert!(serde_json::from_str::<SplitSpec>(r#"{"by": "fractions", "train": 0.8, "vall": 0.1}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitSpec {
    /// The first `train` fraction of rows, then `val`, then the rest is test.
    Fractions {
        /// Fraction of rows for training, in (0, 1].
        train: f64,
        /// Fraction of rows for validation, ≥ 0, with `train + val ≤ 1`.
        val: f64,
    },
    /// By timestamp (needs a timestamp column): train before `val_start`, validation from
    /// `val_start` to before `test_start`, test from `test_start` on.
    Cutoffs {
        /// First validation timestamp, in any form the timestamp column accepts.
        val_start: String,
        /// First test timestamp.
        test_start: String,
    },
}

impl Default for SplitSpec {
    /// 70 % train, 15 % validation, 15 % test: the common choice for series of a few thousand
    /// rows (and ETTh1's benchmark protocol is close to it).
    fn default() -> Self {
        SplitSpec::Fractions {
            train: 0.7,
            val: 0.15,
        }
    }
}

/// Row ranges of the three splits, consecutive and covering all rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRows {
    /// Training rows.
    pub train: Range<usize>,
    /// Validation rows.
    pub val: Range<usize>,
    /// Test rows.
    pub test: Range<usize>,
}

/// The windows of each split.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitWindows {
    /// Training windows.
    pub train: Windows,
    /// Validation windows.
    pub val: Windows,
    /// Test windows.
    pub test: Windows,
}

impl SplitSpec {
    /// Checks the fractions' ranges, or that the cutoffs parse and are in order.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field and the allowed range.
    pub fn validate(&self) -> Result<()> {
        match self {
            SplitSpec::Fractions { train, val } => {
                if !(*train > 0.0 && *train <= 1.0) {
                    return Err(Error::Config(format!(
                        "split.train = {train}: must be in (0, 1]"
                    )));
                }
                if !(*val >= 0.0 && train + val <= 1.0 + 1e-9) {
                    return Err(Error::Config(format!(
                        "split.val = {val}: must be ≥ 0 with train + val ≤ 1 (train = {train})"
                    )));
                }
            }
            SplitSpec::Cutoffs { .. } => {
                self.cutoffs()?;
            }
        }
        Ok(())
    }

    fn cutoffs(&self) -> Result<(i64, i64)> {
        let SplitSpec::Cutoffs {
            val_start,
            test_start,
        } = self
        else {
            unreachable!("called on cutoffs only")
        };
        let parse = |field: &str, text: &str| {
            parse_timestamp(text).ok_or_else(|| {
                Error::Config(format!(
                    "split.{field} = {text:?}: not a timestamp; accepted: {}",
                    super::time::TIMESTAMP_FORMATS
                ))
            })
        };
        let (v, t) = (
            parse("val_start", val_start)?,
            parse("test_start", test_start)?,
        );
        if v > t {
            return Err(Error::Config(format!(
                "split: val_start {val_start:?} is after test_start {test_start:?}"
            )));
        }
        Ok((v, t))
    }

    /// The row ranges for `n` rows; cutoffs need the rows' `timestamps`.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings, or cutoffs without timestamps.
    pub fn split_rows(&self, n: usize, timestamps: Option<&[i64]>) -> Result<SplitRows> {
        self.validate()?;
        let (a, b) = match self {
            SplitSpec::Fractions { train, val } => {
                let a = ((n as f64 * train).round() as usize).min(n);
                let b = ((n as f64 * (train + val)).round() as usize).clamp(a, n);
                (a, b)
            }
            SplitSpec::Cutoffs { .. } => {
                let (v, t) = self.cutoffs()?;
                let ts = timestamps.ok_or_else(|| {
                    Error::Config(
                        "split by cutoffs needs a timestamp column: set timestamp_column".into(),
                    )
                })?;
                let n = ts.len().min(n);
                let a = ts[..n].partition_point(|&x| x < v);
                let b = ts[..n].partition_point(|&x| x < t);
                (a, b)
            }
        };
        Ok(SplitRows {
            train: 0..a,
            val: a..b,
            test: b..n,
        })
    }
}

/// Windows each split of `inputs` `[N, F]` / `targets` `[N, K]` (rows of the series, which is
/// row `row_offset` onward of the file's data). With `context`, validation and test windows may
/// take their lookback from earlier rows (see the module docs).
///
/// # Errors
/// As [`Windows::new`]; [`Error::Shape`] when the ranges do not fit the rows.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::data::series::{SplitRows, window_splits};
/// let x = Array2::<f64>::zeros((20, 1));
/// let rows = SplitRows { train: 0..10, val: 10..15, test: 15..20 };
/// let w = window_splits(x.view(), x.view(), &rows, 0, 4, 1, 1, true).unwrap();
/// assert_eq!(w.val.len(), 5); // every validation row is a target once
/// assert_eq!(w.val.input_rows(0), 6..10); // lookback from the training rows
/// let w = window_splits(x.view(), x.view(), &rows, 0, 4, 1, 1, false).unwrap();
/// assert_eq!(w.val.len(), 1);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn window_splits(
    inputs: ArrayView2<f64>,
    targets: ArrayView2<f64>,
    rows: &SplitRows,
    row_offset: usize,
    lookback: usize,
    horizon: usize,
    stride: usize,
    context: bool,
) -> Result<SplitWindows> {
    let n = inputs.nrows();
    if rows.test.end > n || rows.train.start != 0 {
        return Err(Error::Shape(format!(
            "split rows {rows:?} do not fit a series of {n} rows"
        )));
    }
    let one = |r: &Range<usize>| {
        let start = if context {
            r.start.saturating_sub(lookback)
        } else {
            r.start
        };
        Windows::new(
            inputs.slice(s![start..r.end, ..]),
            targets.slice(s![start..r.end, ..]),
            row_offset + start,
            lookback,
            horizon,
            stride,
        )
    };
    Ok(SplitWindows {
        train: one(&rows.train)?,
        val: one(&rows.val)?,
        test: one(&rows.test)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings() {
        assert!(
            SplitSpec::Fractions {
                train: 0.0,
                val: 0.1
            }
            .validate()
            .is_err()
        );
        assert!(
            SplitSpec::Fractions {
                train: 0.8,
                val: 0.3
            }
            .validate()
            .is_err()
        );
        let c = SplitSpec::Cutoffs {
            val_start: "2001".into(),
            test_start: "2000".into(),
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("after test_start")
        );
        let c = SplitSpec::Cutoffs {
            val_start: "2000".into(),
            test_start: "2001".into(),
        };
        assert!(
            c.split_rows(3, None)
                .unwrap_err()
                .to_string()
                .contains("timestamp_column")
        );
    }
}
