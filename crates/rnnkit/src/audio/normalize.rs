//! Mean and variance normalization of feature frames: global (fitted on the training split
//! only and saved with the run, so evaluation and prediction see inputs scaled as training
//! did) or per utterance (each clip by its own statistics, nothing to fit).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// How feature frames are normalized before the model sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Each dimension by the mean and standard deviation over all training frames.
    #[default]
    Global,
    /// Each clip by its own per-dimension mean and standard deviation.
    Utterance,
    /// Features as computed.
    None,
}

/// Per-dimension mean and standard deviation, fitted on training frames.
///
/// ```
/// use ndarray::array;
/// use rnnkit::audio::Cmvn;
/// let cmvn = Cmvn::fit([array![[1.0f32, 10.0], [3.0, 10.0]]].iter());
/// assert_eq!(cmvn.mean, vec![2.0, 10.0]);
/// let mut x = array![[3.0f32, 10.0]];
/// cmvn.apply(&mut x);
/// assert_eq!(x, array![[1.0, 0.0]]); // a constant dimension is centred, not blown up
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cmvn {
    /// Mean of each dimension.
    pub mean: Vec<f32>,
    /// Standard deviation of each dimension (at least [`Cmvn::MIN_STD`]).
    pub std: Vec<f32>,
}

impl Cmvn {
    /// The floor of a standard deviation: a dimension that never varies is divided by this.
    pub const MIN_STD: f32 = 1e-3;

    /// Statistics over every frame of `clips` (`[frames, dims]` each), summed in f64.
    pub fn fit<'a>(clips: impl Iterator<Item = &'a Array2<f32>>) -> Self {
        let (mut sum, mut sq, mut n) = (Vec::<f64>::new(), Vec::<f64>::new(), 0usize);
        for x in clips {
            if sum.is_empty() {
                sum = vec![0.0; x.ncols()];
                sq = vec![0.0; x.ncols()];
            }
            for row in x.rows() {
                for ((s, q), &v) in sum.iter_mut().zip(&mut sq).zip(row) {
                    *s += v as f64;
                    *q += v as f64 * v as f64;
                }
            }
            n += x.nrows();
        }
        let n = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| ((q / n - m * m).max(0.0).sqrt() as f32).max(Self::MIN_STD))
            .collect();
        Cmvn {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// `(x − mean) / std`, row by row.
    pub fn apply(&self, x: &mut Array2<f32>) {
        for mut row in x.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

/// Normalizes one clip by its own statistics (per-utterance CMVN).
///
/// ```
/// use ndarray::array;
/// let mut x = array![[1.0f32], [3.0]];
/// rnnkit::audio::normalize_utterance(&mut x);
/// assert_eq!(x, array![[-1.0], [1.0]]);
/// ```
pub fn normalize_utterance(x: &mut Array2<f32>) {
    let cmvn = Cmvn::fit(std::iter::once(&*x));
    cmvn.apply(x);
}

/// Applies `how` to every clip, `cmvn` being the fitted statistics for [`Normalize::Global`].
pub fn normalize_all(clips: &mut [Array2<f32>], how: Normalize, cmvn: Option<&Cmvn>) {
    for x in clips {
        match (how, cmvn) {
            (Normalize::Global, Some(c)) => c.apply(x),
            (Normalize::Utterance, _) => normalize_utterance(x),
            _ => {}
        }
    }
}
