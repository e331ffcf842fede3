//! Splitting a token stream (or any sequence) into a leading training part and a trailing
//! validation part, in order: for language models and time-ordered data, where a shuffled split
//! would leak the future into training.

use crate::error::{Error, Result};

/// The first `round(len · train_fraction)` items, and the rest.
///
/// Errors: [`Error::Config`] when `train_fraction` is not strictly between 0 and 1, or when
/// either part would be empty.
///
/// ```
/// use rnnkit::data::text::split::split_by_fraction;
/// let ids: Vec<u32> = (0..10).collect();
/// let (train, valid) = split_by_fraction(&ids, 0.9).unwrap();
/// assert_eq!((train.len(), valid), (9, &[9][..]));
/// ```
pub fn split_by_fraction<T>(data: &[T], train_fraction: f64) -> Result<(&[T], &[T])> {
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(Error::Config(format!(
            "train_fraction must be strictly between 0 and 1, got {train_fraction}"
        )));
    }
    // Rounding (not truncating) keeps 0.7 · 10 = 7.000000000000001 and 0.29 · 100 =
    // 28.999999999999996 at the count a user expects.
    let n_train = (data.len() as f64 * train_fraction).round() as usize;
    if n_train == 0 || n_train == data.len() {
        return Err(Error::Config(format!(
            "a train_fraction of {train_fraction} leaves one part of {} items empty; use more \
             data or a fraction nearer 0.5",
            data.len()
        )));
    }
    Ok(data.split_at(n_train))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_the_expected_count() {
        let v: Vec<u32> = (0..100).collect();
        assert_eq!(split_by_fraction(&v, 0.29).unwrap().0.len(), 29);
        let (a, b) = split_by_fraction(&v, 0.9).unwrap();
        assert_eq!((a.len(), b[0]), (90, 90));
    }

    #[test]
    fn bad_fractions_and_empty_parts_are_errors() {
        let v = [1, 2, 3];
        for f in [0.0, 1.0, -0.5, f64::NAN, 0.01, 0.99] {
            assert!(
                matches!(split_by_fraction(&v, f), Err(Error::Config(_))),
                "{f}"
            );
        }
    }
}
