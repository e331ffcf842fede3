//! Per-column normalization, as scikit-learn's `StandardScaler`, `MinMaxScaler` and
//! `RobustScaler`: `fit` on the training split only, then `transform` every split and
//! `inverse_transform` forecasts back to original units.
//!
//! Every kind is `y = (x − center) / scale` per column:
//!
//! | kind       | center        | scale                     |
//! |------------|---------------|---------------------------|
//! | `standard` | mean          | population std (ddof = 0) |
//! | `min_max`  | min           | max − min (→ [0, 1])      |
//! | `robust`   | median        | q75 − q25 (linear interp.)|
//! | `none`     | 0             | 1                         |
//!
//! A constant column (scale 0, or within rounding of 0) gets scale 1, as scikit-learn does: it
//! maps to 0 (min-max: to 0, not 0.5) and inverts exactly, rather than to NaN.
//!
//! A fitted [`Scaler`] is serde-serializable so it can be saved beside a model.

use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Which normalization (config key `scaler`: `"none"`, `"standard"`, `"min_max"`,
/// `"robust"`).
///
/// ```
/// use rnnkit::data::series::ScalerKind;
/// let k: ScalerKind = serde_json::from_str("\"min_max\"").unwrap();
/// assert_eq!(k, ScalerKind::MinMax);
/// assert_eq!(ScalerKind::default(), ScalerKind::Standard);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalerKind {
    /// No scaling.
    None,
    /// Zero mean, unit variance (the default: what recurrent nets train best on, and what
    /// most forecasting code uses).
    #[default]
    Standard,
    /// To `[0, 1]` over the training split.
    MinMax,
    /// Median 0, interquartile range 1: outliers do not set the scale.
    Robust,
}

/// A fitted per-column scaler: `y = (x − center) / scale`.
///
/// ```
/// use ndarray::array;
/// use rnnkit::data::series::{Scaler, ScalerKind};
/// let train = array![[1.0, 5.0], [3.0, 5.0]];
/// let s = Scaler::fit(ScalerKind::Standard, train.view()).unwrap();
/// let y = s.transform(array![[2.0, 5.0], [5.0, 6.0]].view()).unwrap();
/// assert_eq!(y, array![[0.0, 0.0], [3.0, 1.0]]); // column 2 is constant in train: scale 1
/// assert_eq!(s.inverse_transform(y.view()).unwrap(), array![[2.0, 5.0], [5.0, 6.0]]);
/// let saved = serde_json::to_string(&s).unwrap(); // to store beside the model
/// assert_eq!(serde_json::from_str::<Scaler>(&saved).unwrap(), s); // (exact here; in general
/// // serde_json without `float_roundtrip` reloads floats within one ulp)
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// The kind it was fitted as.
    pub kind: ScalerKind,
    /// Per-column center.
    pub center: Vec<f64>,
    /// Per-column scale, never 0.
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fits on `x` `[N, C]` (the training rows only).
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` has no rows; [`Error::Config`] when a value is not finite.
    pub fn fit(kind: ScalerKind, x: ArrayView2<f64>) -> Result<Self> {
        if x.nrows() == 0 {
            return Err(Error::Shape("scaler: cannot fit on zero rows".into()));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Config(
                "scaler: cannot fit on non-finite values".into(),
            ));
        }
        let mut center = Vec::with_capacity(x.ncols());
        let mut scale = Vec::with_capacity(x.ncols());
        for col in x.axis_iter(Axis(1)) {
            let (c, s) = match kind {
                ScalerKind::None => (0.0, 1.0),
                ScalerKind::Standard => {
                    let n = col.len() as f64;
                    let mean = col.sum() / n;
                    let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                    (mean, var.sqrt())
                }
                ScalerKind::MinMax => {
                    let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (lo, hi - lo)
                }
                ScalerKind::Robust => {
                    let mut v = col.to_vec();
                    v.sort_by(f64::total_cmp);
                    (quantile(&v, 0.5), quantile(&v, 0.75) - quantile(&v, 0.25))
                }
            };
            // Within rounding of zero counts as zero: such a column is constant in all but
            // noise, and dividing by the noise would blow it up.
            let tiny = 10.0 * f64::EPSILON * c.abs().max(1.0);
            scale.push(if s > tiny { s } else { 1.0 });
            center.push(c);
        }
        Ok(Scaler {
            kind,
            center,
            scale,
        })
    }

    /// Fits on `x` and transforms it.
    pub fn fit_transform(kind: ScalerKind, x: ArrayView2<f64>) -> Result<(Self, Array2<f64>)> {
        let s = Self::fit(kind, x)?;
        let y = s.transform(x)?;
        Ok((s, y))
    }

    /// Number of columns it was fitted on.
    pub fn n_features(&self) -> usize {
        self.center.len()
    }

    /// `(x − center) / scale` per column, `x` `[N, C]`.
    ///
    /// # Errors
    /// [`Error::Shape`] when `x` has another number of columns than the fit.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check(x.ncols())?;
        let mut y = x.to_owned();
        for (mut col, (c, s)) in y
            .axis_iter_mut(Axis(1))
            .zip(self.center.iter().zip(&self.scale))
        {
            col.mapv_inplace(|v| (v - c) / s);
        }
        Ok(y)
    }

    /// `y · scale + center` per column, `y` `[N, C]`: back to original units.
    ///
    /// # Errors
    /// [`Error::Shape`] when `y` has another number of columns than the fit.
    pub fn inverse_transform(&self, y: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check(y.ncols())?;
        let mut x = y.to_owned();
        for (mut col, (c, s)) in x
            .axis_iter_mut(Axis(1))
            .zip(self.center.iter().zip(&self.scale))
        {
            col.mapv_inplace(|v| v * s + c);
        }
        Ok(x)
    }

    /// The scaler of some columns only (e.g. the targets, to invert a forecast).
    ///
    /// # Errors
    /// [`Error::Shape`] when an index is out of range.
    ///
    /// ```
    /// use ndarray::array;
    /// use rnnkit::data::series::{Scaler, ScalerKind};
    /// let s = Scaler::fit(ScalerKind::MinMax, array![[0.0, 10.0], [2.0, 30.0]].view()).unwrap();
    /// let t = s.select(&[1]).unwrap();
    /// assert_eq!(t.inverse_transform(array![[0.5]].view()).unwrap(), array![[20.0]]);
    /// ```
    pub fn select(&self, columns: &[usize]) -> Result<Scaler> {
        self.check_consistent()?;
        let mut out = Scaler {
            kind: self.kind,
            center: Vec::new(),
            scale: Vec::new(),
        };
        for &c in columns {
            if c >= self.n_features() {
                return Err(Error::Shape(format!(
                    "scaler: column {c} out of range (fitted on {} columns)",
                    self.n_features()
                )));
            }
            out.center.push(self.center[c]);
            out.scale.push(self.scale[c]);
        }
        Ok(out)
    }

    /// A scaler read from a file (`series.json`) may have been edited: one center and one
    /// nonzero, finite scale per column; otherwise an [`Error::Config`] saying what is wrong.
    ///
    /// ```
    /// use rnnkit::data::series::{Scaler, ScalerKind};
    /// let edited = Scaler { kind: ScalerKind::Standard, center: vec![0.0, 1.0], scale: vec![2.0] };
    /// assert!(edited.check_consistent().is_err());
    /// ```
    pub fn check_consistent(&self) -> Result<()> {
        if self.center.len() != self.scale.len() {
            return Err(Error::Config(format!(
                "scaler: {} centers but {} scales (one of each per column)",
                self.center.len(),
                self.scale.len()
            )));
        }
        if let Some(s) = self.scale.iter().find(|s| !(s.is_finite() && **s != 0.0)) {
            return Err(Error::Config(format!(
                "scaler: scale {s} is not a finite nonzero number"
            )));
        }
        Ok(())
    }

    fn check(&self, ncols: usize) -> Result<()> {
        self.check_consistent()?;
        if ncols != self.n_features() {
            return Err(Error::Shape(format!(
                "scaler: fitted on {} columns, given {ncols}",
                self.n_features()
            )));
        }
        Ok(())
    }
}

/// Quantile `q` of sorted values with linear interpolation (numpy's default, which
/// scikit-learn's `RobustScaler` uses).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn an_edited_scaler_is_an_error_not_a_panic() {
        let short = Scaler {
            kind: ScalerKind::Standard,
            center: vec![0.0, 1.0],
            scale: vec![2.0],
        };
        assert!(short.select(&[1]).is_err());
        assert!(short.transform(array![[1.0, 2.0]].view()).is_err());
        let zero = Scaler {
            scale: vec![2.0, 0.0],
            ..short.clone()
        };
        assert!(zero.inverse_transform(array![[1.0, 2.0]].view()).is_err());
    }

    #[test]
    fn kinds_match_sklearn() {
        let x = array![[1.0], [2.0], [3.0], [4.0], [100.0]];
        // numpy: mean 22, std √1522 (ddof 0); percentiles 25/50/75 = 2, 3, 4.
        let s = Scaler::fit(ScalerKind::Standard, x.view()).unwrap();
        assert_eq!(s.center, vec![22.0]);
        assert!((s.scale[0] - 1522f64.sqrt()).abs() < 1e-12);
        let r = Scaler::fit(ScalerKind::Robust, x.view()).unwrap();
        assert_eq!((r.center[0], r.scale[0]), (3.0, 2.0));
        let m = Scaler::fit(ScalerKind::MinMax, x.view()).unwrap();
        assert_eq!(m.transform(x.view()).unwrap()[[4, 0]], 1.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
    }

    #[test]
    fn errors() {
        let s = Scaler::fit(ScalerKind::Standard, array![[1.0, 2.0]].view()).unwrap();
        assert_eq!(s.scale, vec![1.0, 1.0]); // one row: constant
        assert!(s.transform(array![[1.0]].view()).is_err());
        assert!(Scaler::fit(ScalerKind::Standard, Array2::zeros((0, 2)).view()).is_err());
    }
}
