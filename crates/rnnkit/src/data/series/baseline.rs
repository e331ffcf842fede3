//! Baseline forecasts for the same windows a model sees, and RMSE / MAE in original units: a
//! recurrent model is worth its cost only if it beats these.
//!
//! For a window whose targets start at row `T` (so its last input row is `T − 1`), step
//! `h = 0 … H−1`, target column `k`:
//!
//! ```text
//! naive:           ŷ[h, k] = x[T − 1, k]                    (last observed value, repeated)
//! seasonal naive:  ŷ[h, k] = x[T − m + (h mod m), k]        (same phase one season back)
//! ```
//!
//! The seasonal form is Hyndman's `y_{T+h−m(⌊(h−1)/m⌋+1)}` with 0-based `h`; it reads only
//! rows inside the lookback, so it needs `m ≤ L`.

use super::window::Windows;
use crate::error::{Error, Result};
use ndarray::{Array3, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

/// Root mean squared error and mean absolute error over all windows, steps and targets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// √(mean (ŷ − y)²).
    pub rmse: f64,
    /// mean |ŷ − y|.
    pub mae: f64,
}

/// RMSE and MAE of `pred` against `truth` (same shape, e.g. `[W, H, K]`).
///
/// # Errors
/// [`Error::Shape`] when the shapes differ or are empty.
///
/// ```
/// use ndarray::Array3;
/// use rnnkit::data::series::score;
/// let y = Array3::from_shape_vec((1, 2, 1), vec![1.0, 2.0]).unwrap();
/// let p = Array3::from_shape_vec((1, 2, 1), vec![1.0, 4.0]).unwrap();
/// let s = score(p.view(), y.view()).unwrap();
/// assert_eq!((s.mae, s.rmse), (1.0, 2f64.sqrt()));
/// ```
pub fn score(pred: ArrayView3<f64>, truth: ArrayView3<f64>) -> Result<Scores> {
    if pred.shape() != truth.shape() || pred.is_empty() {
        return Err(Error::Shape(format!(
            "score: prediction {:?} and truth {:?} must have the same, non-empty shape",
            pred.shape(),
            truth.shape()
        )));
    }
    let n = pred.len() as f64;
    let (mut se, mut ae) = (0.0, 0.0);
    for (p, y) in pred.iter().zip(truth.iter()) {
        se += (p - y) * (p - y);
        ae += (p - y).abs();
    }
    Ok(Scores {
        rmse: (se / n).sqrt(),
        mae: ae / n,
    })
}

/// The true targets of each window from `series` `[N, K]` (original units, rows of the whole
/// series): `[W, H, K]`.
///
/// # Errors
/// [`Error::Shape`] when a window's rows are outside `series`, or the column counts differ.
pub fn truth(series: ArrayView2<f64>, windows: &Windows) -> Result<Array3<f64>> {
    gather(series, windows, |_, t, h| t + h)
}

/// Naive forecast: the last observed value, over the whole horizon. `[W, H, K]`.
///
/// # Errors
/// As [`truth`].
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::data::series::{naive, seasonal_naive, truth, Windows};
/// let x = Array2::from_shape_fn((8, 1), |(t, _)| t as f64);
/// let w = Windows::new(x.view(), x.view(), 0, 4, 2, 1).unwrap();
/// assert_eq!(naive(x.view(), &w).unwrap()[[0, 1, 0]], 3.0);
/// assert_eq!(seasonal_naive(x.view(), &w, 2).unwrap()[[0, 1, 0]], 3.0); // rows 4, 5 ← 2, 3
/// assert_eq!(truth(x.view(), &w).unwrap()[[2, 1, 0]], 7.0);
/// ```
pub fn naive(series: ArrayView2<f64>, windows: &Windows) -> Result<Array3<f64>> {
    gather(series, windows, |_, t, _| t - 1)
}

/// Seasonal naive forecast with season length `season` (e.g. 52 for weekly data with a yearly
/// cycle, 24 for hourly with a daily one): the value one season before each target. `[W, H,
/// K]`.
///
/// # Errors
/// [`Error::Config`] when `season` is 0 or longer than the lookback; else as [`truth`].
pub fn seasonal_naive(
    series: ArrayView2<f64>,
    windows: &Windows,
    season: usize,
) -> Result<Array3<f64>> {
    if season == 0 || season > windows.lookback() {
        return Err(Error::Config(format!(
            "seasonal naive: season = {season} must be in 1..={} (the lookback)",
            windows.lookback()
        )));
    }
    gather(series, windows, |_, t, h| t - season + h % season)
}

/// `[W, H, K]` with entry `[w, h, k] = series[row(w, T, h), k]`, `T` the window's first target
/// row.
fn gather(
    series: ArrayView2<f64>,
    windows: &Windows,
    row: impl Fn(usize, usize, usize) -> usize,
) -> Result<Array3<f64>> {
    let (h_len, k_len) = (windows.horizon(), windows.n_targets());
    if series.ncols() != k_len {
        return Err(Error::Shape(format!(
            "baseline: series has {} columns, windows {k_len} targets",
            series.ncols()
        )));
    }
    if let Some(last) = windows.len().checked_sub(1)
        && windows.target_rows(last).end > series.nrows()
    {
        return Err(Error::Shape(format!(
            "baseline: windows reach row {}, the series has {}",
            windows.target_rows(last).end,
            series.nrows()
        )));
    }
    let mut out = Array3::zeros((windows.len(), h_len, k_len));
    for w in 0..windows.len() {
        let t = windows.target_rows(w).start;
        for h in 0..h_len {
            out.slice_mut(ndarray::s![w, h, ..])
                .assign(&series.row(row(w, t, h)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn seasonal_wraps_past_one_season() {
        // Period-3 series: seasonal naive with m = 3 is exact for every h, even h ≥ m.
        let x = Array2::from_shape_fn((20, 1), |(t, _)| (t % 3) as f64);
        let w = Windows::new(x.view(), x.view(), 0, 3, 7, 2).unwrap();
        let p = seasonal_naive(x.view(), &w, 3).unwrap();
        let y = truth(x.view(), &w).unwrap();
        assert_eq!(score(p.view(), y.view()).unwrap().rmse, 0.0);
        assert!(
            score(naive(x.view(), &w).unwrap().view(), y.view())
                .unwrap()
                .mae
                > 0.5
        );
        assert!(seasonal_naive(x.view(), &w, 4).is_err());
    }
}
