//! Missing values: what to do with an empty cell (or `NA`, `NaN`, `nan`).
//!
//! A silent fill changes the data a model learns from, so the default is to stop with an
//! error naming the cell; the fills are opt-in.

use serde::{Deserialize, Serialize};

/// How [`crate::data::series::SeriesTable`] treats missing cells (config key `missing`).
///
/// Values before a column's first observed value cannot be filled from the past, under
/// either fill: they are an error (naming the row) rather than silently back-filled with a
/// value from the future; delete those leading rows instead.
///
/// ```
/// use rnnkit::data::series::MissingPolicy;
/// let p: MissingPolicy = serde_json::from_str("\"interpolate\"").unwrap();
/// assert_eq!(p, MissingPolicy::Interpolate);
/// assert_eq!(MissingPolicy::default(), MissingPolicy::Error);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// A missing cell is an error naming its row and column (the default: fill only on
    /// purpose).
    #[default]
    Error,
    /// Carry the last observed value forward (pandas `ffill`).
    Ffill,
    /// Linear interpolation between the neighbouring observed values, by row position
    /// (pandas `interpolate()`); values after the last observed one carry it forward.
    Interpolate,
}

/// The cell texts that mean "missing".
pub(crate) fn is_missing(cell: &str) -> bool {
    matches!(cell.trim(), "" | "NA" | "NaN" | "nan")
}

/// Fills the NaNs of one column in place with `policy` (not [`MissingPolicy::Error`]).
/// Returns `Err(i)` with the index of the first missing value that comes before any observed
/// one.
pub(crate) fn fill_column(col: &mut [f64], policy: MissingPolicy) -> Result<(), usize> {
    let Some(first) = col.iter().position(|v| !v.is_nan()) else {
        return if col.is_empty() { Ok(()) } else { Err(0) };
    };
    if first > 0 {
        return Err(0);
    }
    let mut last_obs = 0;
    let mut i = 1;
    while i < col.len() {
        if !col[i].is_nan() {
            last_obs = i;
            i += 1;
            continue;
        }
        let next = (i..col.len()).find(|&j| !col[j].is_nan());
        let end = next.unwrap_or(col.len());
        let a = col[last_obs];
        for j in i..end {
            col[j] = match (policy, next) {
                (MissingPolicy::Interpolate, Some(n)) => {
                    let t = (j - last_obs) as f64 / (n - last_obs) as f64;
                    a + t * (col[n] - a)
                }
                _ => a,
            };
        }
        i = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    const NAN: f64 = f64::NAN;

    #[test]
    fn ffill_and_interpolate() {
        let mut a = [1.0, NAN, NAN, 4.0, NAN];
        fill_column(&mut a, MissingPolicy::Ffill).unwrap();
        assert_eq!(a, [1.0, 1.0, 1.0, 4.0, 4.0]);
        let mut b = [1.0, NAN, NAN, 4.0, NAN];
        fill_column(&mut b, MissingPolicy::Interpolate).unwrap();
        assert_eq!(b, [1.0, 2.0, 3.0, 4.0, 4.0]);
    }

    #[test]
    fn leading_missing_is_an_error() {
        assert_eq!(fill_column(&mut [NAN, 1.0], MissingPolicy::Ffill), Err(0));
        assert_eq!(
            fill_column(&mut [NAN, NAN], MissingPolicy::Interpolate),
            Err(0)
        );
        assert!(is_missing(" NA ") && is_missing("") && !is_missing("0"));
    }
}
