//! Invertible transforms applied before scaling: log, log1p, first differencing.
//!
//! A model trained on transformed targets forecasts transformed values; [`Transform::inverse`]
//! turns a forecast back into original units. Differencing needs the last value observed before
//! the forecast (`x_t`), since a forecast of differences `d_1 … d_H` means
//! `x_{t+h} = x_t + d_1 + … + d_h`.

use super::csv_table::{SeriesTable, cell_at};
use crate::error::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// A transform of the target columns (config key `transform`: `"none"`, `"log"`, `"log1p"`,
/// `"diff"`).
///
/// ```
/// use rnnkit::data::series::Transform;
/// let x = [10.0, 12.0, 11.0, 15.0];
/// let d = Transform::Diff.forward(&x).unwrap();
/// assert_eq!(d, vec![2.0, -1.0, 4.0]); // one value fewer: the first row has no predecessor
/// // A forecast of differences made after x[1] = 12, back in original units:
/// assert_eq!(Transform::Diff.inverse(&[-1.0, 4.0], 12.0), vec![11.0, 15.0]);
/// let l = Transform::Log.forward(&x).unwrap();
/// assert!((Transform::Log.inverse(&l, f64::NAN)[3] - 15.0).abs() < 1e-12);
/// assert!(Transform::Log.forward(&[1.0, 0.0]).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Values as they are (the default).
    #[default]
    None,
    /// Natural log: multiplicative growth and seasonality become additive. Values must be > 0.
    Log,
    /// `ln(1 + x)`: like log for counts that can be 0. Values must be > −1.
    Log1p,
    /// First difference `x_t − x_{t−1}`: removes a trend. Drops the first row.
    Diff,
}

impl Transform {
    /// Rows lost at the start (1 for [`Transform::Diff`], else 0).
    pub fn offset(&self) -> usize {
        usize::from(*self == Transform::Diff)
    }

    /// Transforms one series; the result has `x.len() − offset()` values.
    ///
    /// # Errors
    /// [`Error::Data`] naming the index of a value outside the transform's domain.
    pub fn forward(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.try_forward(x)
            .map_err(|i| Error::data("series", format!("index {i}"), self.domain_message(x[i])))
    }

    /// Back to original units. `y` is a run of transformed values following the original value
    /// `last_value` (used by [`Transform::Diff`] only; the others ignore it), e.g. a forecast
    /// made right after observing `last_value`.
    pub fn inverse(&self, y: &[f64], last_value: f64) -> Vec<f64> {
        match self {
            Transform::None => y.to_vec(),
            Transform::Log => y.iter().map(|v| v.exp()).collect(),
            Transform::Log1p => y.iter().map(|v| v.exp_m1()).collect(),
            Transform::Diff => {
                let mut acc = last_value;
                y.iter()
                    .map(|d| {
                        acc += d;
                        acc
                    })
                    .collect()
            }
        }
    }

    /// Applies the transform to `columns` of a table and returns all its values `[N −
    /// offset(), C]`; the other columns are kept as they are (differencing drops the first row
    /// of every column so rows stay aligned).
    ///
    /// # Errors
    /// [`Error::Data`] naming the file, row and column of a value outside the domain (log of a
    /// non-positive value).
    pub fn apply_table(&self, table: &SeriesTable, columns: &[usize]) -> Result<Array2<f64>> {
        let off = self.offset().min(table.len());
        let mut out = table.values.slice(ndarray::s![off.., ..]).to_owned();
        for &c in columns {
            let x = table.values.column(c).to_vec();
            let y = self.try_forward(&x).map_err(|i| {
                Error::data(
                    &table.path,
                    cell_at(table.lines[i], &table.columns[c]),
                    self.domain_message(x[i]),
                )
            })?;
            out.column_mut(c).assign(&ndarray::Array1::from(y));
        }
        Ok(out)
    }

    fn try_forward(&self, x: &[f64]) -> Result<Vec<f64>, usize> {
        match self {
            Transform::None => Ok(x.to_vec()),
            Transform::Log => x
                .iter()
                .enumerate()
                .map(|(i, &v)| if v > 0.0 { Ok(v.ln()) } else { Err(i) })
                .collect(),
            Transform::Log1p => x
                .iter()
                .enumerate()
                .map(|(i, &v)| if v > -1.0 { Ok(v.ln_1p()) } else { Err(i) })
                .collect(),
            Transform::Diff => Ok(x.windows(2).map(|w| w[1] - w[0]).collect()),
        }
    }

    fn domain_message(&self, v: f64) -> String {
        match self {
            Transform::Log => format!(
                "transform \"log\" needs values > 0, found {v}; use \"log1p\" for counts with \
                 zeros, or transform = \"none\""
            ),
            _ => format!(
                "transform \"log1p\" needs values > -1, found {v}; use transform = \"none\" or \
                 \"diff\""
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::series::LoadOptions;

    #[test]
    fn log_error_names_the_row() {
        let t = SeriesTable::from_reader(
            "p.csv",
            "y,z\n3,1\n0,2\n".as_bytes(),
            &LoadOptions::new(&["y", "z"]),
        )
        .unwrap();
        let e = Transform::Log
            .apply_table(&t, &[0])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.csv: row 3, column \"y\": transform \"log\" needs"),
            "{e}"
        );
        let d = Transform::Diff.apply_table(&t, &[0]).unwrap();
        assert_eq!(d, ndarray::array![[-3.0, 2.0]]);
        assert_eq!(Transform::Log1p.inverse(&[0.0], 0.0), vec![0.0]);
    }
}
