//! Sliding windows over a series: `lookback` rows of inputs, then `horizon` rows of targets,
//! one window every `stride` rows; and batches of windows in the engine's layout.
//!
//! Window `w` starts at row `s = w · stride`: inputs are rows `s .. s + L` of the input
//! columns (`[L, F]`), targets rows `s + L .. s + L + H` of the target columns (`[H, K]`).
//! Over `n` rows there are `floor((n − L − H) / S) + 1` windows when `n ≥ L + H`, else none.
//!
//! Inputs may include the targets' own past values: that is the caller's choice of input
//! columns ([`crate::data::series::SeriesData`] puts the targets first among the inputs, the
//! usual autoregressive setup).
//!
//! A batch is time-major, `inputs` `[L, B, F]` as the recurrent layers take it, and `targets`
//! `[B, H·K]` with index `h·K + k` (step-major), which is what a linear head of `H·K` outputs
//! on the last hidden state produces: the loss compares the two directly.

use crate::error::{Error, Result};
use ndarray::{Array2, Array3, ArrayView2, Axis, s};
use std::ops::Range;

/// The number of windows over `n` rows: `floor((n − L − H) / S) + 1` when `n ≥ L + H`, else 0.
///
/// ```
/// use rnnkit::data::series::n_windows;
/// assert_eq!(n_windows(10, 3, 2, 1), 6);
/// assert_eq!(n_windows(10, 3, 2, 2), 3);
/// assert_eq!(n_windows(4, 3, 2, 1), 0);
/// ```
pub fn n_windows(n: usize, lookback: usize, horizon: usize, stride: usize) -> usize {
    let need = lookback + horizon;
    if n < need || stride == 0 {
        0
    } else {
        (n - need) / stride + 1
    }
}

/// One batch of windows: `inputs` `[L, B, F]` (time-major), `targets` `[B, H·K]` (index
/// `h·K + k`).
#[derive(Clone, Debug, PartialEq)]
pub struct WindowBatch {
    /// `[L, B, F]`.
    pub inputs: Array3<f32>,
    /// `[B, H·K]`, step-major.
    pub targets: Array2<f32>,
}

/// The windows of one split.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::data::series::Windows;
/// let x = Array2::from_shape_fn((10, 2), |(t, f)| (10 * t + f) as f64); // [N, F]
/// let y = x.column(0).insert_axis(ndarray::Axis(1)).to_owned(); // one target, [N, 1]
/// let w = Windows::new(x.view(), y.view(), 0, 3, 2, 1).unwrap();
/// assert_eq!(w.len(), 6);
/// assert_eq!(w.input(1)[[0, 1]], 11.0); // window 1 starts at row 1
/// assert_eq!(w.target(1)[[0, 0]], 40.0); // its first target is row 1 + 3
/// let b = w.batch(&[0, 5]).unwrap();
/// assert_eq!(b.inputs.shape(), &[3, 2, 2]); // [L, B, F]
/// assert_eq!(b.targets.shape(), &[2, 2]); // [B, H·K]
/// assert_eq!(b.targets[[1, 1]], 90.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    /// `[N, F]` input columns of the rows the windows draw from.
    inputs: Array2<f32>,
    /// `[N, K]` target columns of the same rows.
    targets: Array2<f32>,
    /// The row (of the whole series) that row 0 of `inputs` is.
    row_offset: usize,
    lookback: usize,
    horizon: usize,
    stride: usize,
    len: usize,
}

impl Windows {
    /// Windows over `inputs` `[N, F]` and `targets` `[N, K]` (same rows, converted to f32),
    /// whose row 0 is row `row_offset` of the whole series (used only to report rows).
    ///
    /// # Errors
    /// [`Error::Config`] for `lookback`, `horizon` or `stride` 0; [`Error::Shape`] when the row
    /// counts differ.
    pub fn new(
        inputs: ArrayView2<f64>,
        targets: ArrayView2<f64>,
        row_offset: usize,
        lookback: usize,
        horizon: usize,
        stride: usize,
    ) -> Result<Self> {
        for (name, v) in [
            ("lookback", lookback),
            ("horizon", horizon),
            ("stride", stride),
        ] {
            if v == 0 {
                return Err(Error::Config(format!("series: {name} must be at least 1")));
            }
        }
        if inputs.nrows() != targets.nrows() {
            return Err(Error::Shape(format!(
                "windows: inputs have {} rows, targets {}",
                inputs.nrows(),
                targets.nrows()
            )));
        }
        Ok(Windows {
            inputs: inputs.mapv(|v| v as f32),
            targets: targets.mapv(|v| v as f32),
            row_offset,
            lookback,
            horizon,
            stride,
            len: n_windows(inputs.nrows(), lookback, horizon, stride),
        })
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `L`.
    pub fn lookback(&self) -> usize {
        self.lookback
    }

    /// `H`.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// `F`, the number of input columns.
    pub fn n_features(&self) -> usize {
        self.inputs.ncols()
    }

    /// `K`, the number of target columns.
    pub fn n_targets(&self) -> usize {
        self.targets.ncols()
    }

    /// Rows of the whole series window `i` reads as inputs.
    pub fn input_rows(&self, i: usize) -> Range<usize> {
        let s = self.row_offset + i * self.stride;
        s..s + self.lookback
    }

    /// Rows of the whole series window `i` has as targets.
    pub fn target_rows(&self, i: usize) -> Range<usize> {
        let s = self.row_offset + i * self.stride + self.lookback;
        s..s + self.horizon
    }

    /// Inputs of window `i`, `[L, F]`. Panics when `i ≥ len()`, like indexing.
    pub fn input(&self, i: usize) -> ArrayView2<'_, f32> {
        assert!(
            i < self.len,
            "window {i} out of range ({} windows)",
            self.len
        );
        let s = i * self.stride;
        self.inputs.slice(s![s..s + self.lookback, ..])
    }

    /// Targets of window `i`, `[H, K]`. Panics when `i ≥ len()`, like indexing.
    pub fn target(&self, i: usize) -> ArrayView2<'_, f32> {
        assert!(
            i < self.len,
            "window {i} out of range ({} windows)",
            self.len
        );
        let s = i * self.stride + self.lookback;
        self.targets.slice(s![s..s + self.horizon, ..])
    }

    /// The windows `indices` (in that order, e.g. shuffled) as one batch.
    ///
    /// # Errors
    /// [`Error::Shape`] when an index is out of range.
    pub fn batch(&self, indices: &[usize]) -> Result<WindowBatch> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len) {
            return Err(Error::Shape(format!(
                "window {bad} out of range ({} windows)",
                self.len
            )));
        }
        let (l, f, h, k) = (
            self.lookback,
            self.n_features(),
            self.horizon,
            self.n_targets(),
        );
        let mut inputs = Array3::zeros((l, indices.len(), f)); // [L, B, F]
        let mut targets = Array2::zeros((indices.len(), h * k)); // [B, H·K]
        for (b, &i) in indices.iter().enumerate() {
            inputs.index_axis_mut(Axis(1), b).assign(&self.input(i));
            // [H, K] is contiguous in standard layout, so row-major flattening gives h·K + k.
            let t = self.target(i);
            for (dst, src) in targets.row_mut(b).iter_mut().zip(t.iter()) {
                *dst = *src;
            }
        }
        Ok(WindowBatch { inputs, targets })
    }

    /// All windows in order, in batches of `batch_size` (the last may be smaller).
    ///
    /// ```
    /// use ndarray::Array2;
    /// use rnnkit::data::series::Windows;
    /// let x = Array2::<f64>::zeros((12, 1));
    /// let w = Windows::new(x.view(), x.view(), 0, 4, 1, 1).unwrap(); // 8 windows
    /// let sizes: Vec<usize> = w.batches(3).map(|b| b.targets.nrows()).collect();
    /// assert_eq!(sizes, vec![3, 3, 2]);
    /// ```
    pub fn batches(&self, batch_size: usize) -> impl Iterator<Item = WindowBatch> + '_ {
        let bs = batch_size.max(1);
        (0..self.len).step_by(bs).map(move |start| {
            let idx: Vec<usize> = (start..(start + bs).min(self.len)).collect();
            self.batch(&idx).expect("indices are in range")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_zero_params() {
        let x = Array2::<f64>::zeros((7, 1));
        let w = Windows::new(x.view(), x.view(), 100, 2, 2, 3).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w.input_rows(1), 103..105);
        assert_eq!(w.target_rows(1), 105..107);
        assert!(Windows::new(x.view(), x.view(), 0, 0, 1, 1).is_err());
        assert!(w.batch(&[2]).is_err());
    }
}
