//! Gradient clipping: by one global L2 norm over all parameters (PyTorch's
//! `torch.nn.utils.clip_grad_norm_`) and by value (`clip_grad_value_`), plus [`ClipStats`] for
//! diagnostics (how often clipping fired, the pre-clip norms).
//!
//! Global-norm clipping (Pascanu et al. 2013) rescales all gradients by one factor, keeping
//! their direction:
//! ```text
//! total = √(Σ over every parameter and element of g²)
//! coef  = max_norm / (total + 1e-6)
//! if coef < 1: g = g · coef            (for every gradient)
//! ```
//! Unlike PyTorch (which multiplies by `coef`, turning every gradient to 0 or NaN when the norm
//! is infinite), a non-finite norm leaves the gradients untouched and is reported, so the
//! training loop can skip the update and count it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// What [`clip_grad_norm`] found and did.
///
/// ```
/// use rnnkit::optim::clip_grad_norm;
/// let mut g = vec![3.0_f32, 4.0];
/// let report = clip_grad_norm(&mut [&mut g[..]], 1.0).unwrap();
/// assert_eq!(report.pre_clip_norm, 5.0);
/// assert!(report.clipped && report.is_finite());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipReport {
    /// The global L2 norm of all gradients before clipping (infinite or NaN if any gradient
    /// element is).
    pub pre_clip_norm: f32,
    /// Whether the gradients were rescaled.
    pub clipped: bool,
}

impl ClipReport {
    /// Whether the pre-clip norm is finite (else the gradients hold an inf or NaN and were left
    /// as they are).
    ///
    /// ```
    /// use rnnkit::optim::clip_grad_norm;
    /// let mut g = vec![f32::NAN, 1.0];
    /// assert!(!clip_grad_norm(&mut [&mut g[..]], 1.0).unwrap().is_finite());
    /// ```
    pub fn is_finite(&self) -> bool {
        self.pre_clip_norm.is_finite()
    }
}

/// The global L2 norm of all gradients (f32 partial sums over blocks of 4096 values, f64
/// across blocks; the same for any thread count).
///
/// ```
/// use rnnkit::optim::grad_norm;
/// assert_eq!(grad_norm(&[&[3.0], &[4.0]]), 5.0);
/// ```
pub fn grad_norm(grads: &[&[f32]]) -> f32 {
    crate::kernels::elementwise::sum_squares(grads).sqrt() as f32
}

/// Rescales all gradients jointly so that their global L2 norm is at most `max_norm`
/// (`torch.nn.utils.clip_grad_norm_` semantics, see the module docs), and reports the norm
/// before clipping. Errors if `max_norm` is negative or not finite.
///
/// ```
/// use rnnkit::optim::clip_grad_norm;
/// let (mut a, mut b) = (vec![3.0_f32], vec![0.0_f32, 4.0]);
/// let r = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 2.5).unwrap();
/// assert!(r.clipped);
/// assert!((a[0] - 1.5).abs() < 1e-6 && (b[1] - 2.0).abs() < 1e-6);
/// // Below the threshold nothing changes.
/// assert!(!clip_grad_norm(&mut [&mut a[..], &mut b[..]], 5.0).unwrap().clipped);
/// ```
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32) -> Result<ClipReport> {
    if !(max_norm.is_finite() && max_norm >= 0.0) {
        return Err(Error::Config(format!(
            "gradient clipping: max_norm = {max_norm} is invalid: it must be finite and >= 0"
        )));
    }
    let shared: Vec<&[f32]> = grads.iter().map(|g| &**g).collect();
    let total = grad_norm(&shared);
    let mut report = ClipReport {
        pre_clip_norm: total,
        clipped: false,
    };
    if !total.is_finite() {
        return Ok(report);
    }
    // As PyTorch: f32 arithmetic on the f32 norm.
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        crate::kernels::elementwise::scale(grads, coef);
        report.clipped = true;
    }
    Ok(report)
}

/// Clamps every gradient element to `[-clip, clip]` (`torch.nn.utils.clip_grad_value_`;
/// NaN stays NaN) and returns how many elements changed. Errors if `clip` is negative or NaN.
///
/// ```
/// use rnnkit::optim::clip_grad_value;
/// let mut g = vec![-3.0_f32, 0.5, 2.0];
/// assert_eq!(clip_grad_value(&mut [&mut g[..]], 1.0).unwrap(), 2);
/// assert_eq!(g, [-1.0, 0.5, 1.0]);
/// ```
pub fn clip_grad_value(grads: &mut [&mut [f32]], clip: f32) -> Result<usize> {
    if clip.is_nan() || clip < 0.0 {
        return Err(Error::Config(format!(
            "gradient clipping: clip value {clip} is invalid: it must be >= 0"
        )));
    }
    let mut changed = 0;
    for x in grads.iter_mut().flat_map(|g| g.iter_mut()) {
        if x.abs() > clip {
            *x = x.clamp(-clip, clip);
            changed += 1;
        }
    }
    Ok(changed)
}

/// Running statistics of [`clip_grad_norm`] for diagnostics: how many calls, how many clipped,
/// how many had a non-finite norm, and the mean and largest finite pre-clip norm.
///
/// Serializable, so a checkpoint can carry it across a resume.
///
/// ```
/// use rnnkit::optim::{ClipReport, ClipStats};
/// let mut stats = ClipStats::default();
/// stats.record(&ClipReport { pre_clip_norm: 7.0, clipped: true });
/// stats.record(&ClipReport { pre_clip_norm: 3.0, clipped: false });
/// stats.record(&ClipReport { pre_clip_norm: f32::INFINITY, clipped: false });
/// assert_eq!((stats.calls, stats.clipped, stats.non_finite), (3, 1, 1));
/// assert_eq!(stats.clip_rate(), 1.0 / 3.0);
/// assert_eq!(stats.mean_norm(), Some(5.0));
/// assert_eq!(stats.max_norm, 7.0);
/// assert_eq!(stats.last_norm, f32::INFINITY);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipStats {
    /// Reports recorded.
    pub calls: u64,
    /// How many of them clipped.
    pub clipped: u64,
    /// How many had a non-finite pre-clip norm.
    pub non_finite: u64,
    /// Sum of the finite pre-clip norms (for the mean).
    pub sum_norm: f64,
    /// Largest finite pre-clip norm (0 before any).
    pub max_norm: f32,
    /// The most recent pre-clip norm, finite or not (0 before any; JSON writes a non-finite
    /// value as `null`, so serialize it only for display).
    #[serde(skip)]
    pub last_norm: f32,
}

impl ClipStats {
    /// Adds one report.
    ///
    /// ```
    /// use rnnkit::optim::{ClipReport, ClipStats};
    /// let mut s = ClipStats::default();
    /// s.record(&ClipReport { pre_clip_norm: 2.0, clipped: false });
    /// assert_eq!(s.calls, 1);
    /// ```
    pub fn record(&mut self, report: &ClipReport) {
        self.calls += 1;
        self.clipped += report.clipped as u64;
        self.last_norm = report.pre_clip_norm;
        if report.is_finite() {
            self.sum_norm += report.pre_clip_norm as f64;
            self.max_norm = self.max_norm.max(report.pre_clip_norm);
        } else {
            self.non_finite += 1;
        }
    }

    /// Fraction of calls that clipped (0 before any call).
    ///
    /// ```
    /// use rnnkit::optim::ClipStats;
    /// assert_eq!(ClipStats::default().clip_rate(), 0.0);
    /// ```
    pub fn clip_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.clipped as f64 / self.calls as f64
        }
    }

    /// Mean of the finite pre-clip norms; `None` before any.
    ///
    /// ```
    /// use rnnkit::optim::ClipStats;
    /// assert_eq!(ClipStats::default().mean_norm(), None);
    /// ```
    pub fn mean_norm(&self) -> Option<f64> {
        let finite = self.calls - self.non_finite;
        (finite > 0).then(|| self.sum_norm / finite as f64)
    }

    /// Starts over (e.g. at each epoch, for per-epoch statistics).
    ///
    /// ```
    /// use rnnkit::optim::{ClipReport, ClipStats};
    /// let mut s = ClipStats::default();
    /// s.record(&ClipReport { pre_clip_norm: 2.0, clipped: false });
    /// s.reset();
    /// assert_eq!(s, ClipStats::default());
    /// ```
    pub fn reset(&mut self) {
        *self = ClipStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::assert_close;

    // PyTorch golden values:
    // ```python
    // def params(*vals):
    //     ps = [torch.nn.Parameter(torch.zeros(len(v))) for v in vals]
    //     for p, v in zip(ps, vals): p.grad = torch.tensor(v)
    //     return ps
    // ps = params([3.0, -4.0, 0.5], [1.0, 2.0, -2.0, 0.25])
    // n = torch.nn.utils.clip_grad_norm_(ps, max_norm=2.0)      # 5.857686996459961
    // ps = params([0.3, -0.4], [0.1])
    // n = torch.nn.utils.clip_grad_norm_(ps, max_norm=5.0)      # 0.5099019408226013, unchanged
    // ps = params([float('inf'), 1.0], [0.1])
    // n = torch.nn.utils.clip_grad_norm_(ps, max_norm=5.0)      # inf; grads [[nan, 0], [0]]
    // ```
    #[test]
    fn matches_pytorch_clip_grad_norm() {
        let (mut a, mut b) = (vec![3.0_f32, -4.0, 0.5], vec![1.0_f32, 2.0, -2.0, 0.25]);
        let r = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 2.0).unwrap();
        assert_close(&[r.pre_clip_norm], &[5.857686996459961], 1e-7);
        assert!(r.clipped);
        assert_close(
            &a,
            &[1.0242949724197388, -1.3657265901565552, 0.1707158237695694],
            1e-6,
        );
        assert_close(
            &b,
            &[
                0.3414316475391388,
                0.6828632950782776,
                -0.6828632950782776,
                0.0853579118847847,
            ],
            1e-6,
        );
        // Clipped norm is max_norm (up to the 1e-6 guard).
        assert!((grad_norm(&[&a, &b]) - 2.0).abs() < 1e-5);

        let (mut a, mut b) = (vec![0.3_f32, -0.4], vec![0.1_f32]);
        let r = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 5.0).unwrap();
        assert_close(&[r.pre_clip_norm], &[0.5099019408226013], 1e-7);
        assert!(!r.clipped);
        assert_eq!((a, b), (vec![0.3, -0.4], vec![0.1]));
    }

    #[test]
    fn non_finite_norm_is_reported_and_gradients_kept() {
        // PyTorch turns these into [[nan, 0], [0]]; we keep them and report inf.
        let (mut a, mut b) = (vec![f32::INFINITY, 1.0], vec![0.1_f32]);
        let r = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 5.0).unwrap();
        assert_eq!(r.pre_clip_norm, f32::INFINITY);
        assert!(!r.clipped && !r.is_finite());
        assert_eq!((a[1], b[0]), (1.0, 0.1));
        let mut c = [f32::NAN];
        assert!(
            clip_grad_norm(&mut [&mut c[..]], 5.0)
                .unwrap()
                .pre_clip_norm
                .is_nan()
        );
    }

    #[test]
    fn norm_is_global_not_per_tensor() {
        // Each tensor has norm 3 < 4, but the global norm is √18 > 4: both are scaled.
        let (mut a, mut b) = (vec![3.0_f32], vec![-3.0_f32]);
        let r = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 4.0).unwrap();
        assert!(r.clipped);
        let coef = 4.0 / (18.0_f64.sqrt() + 1e-6);
        assert_close(&a, &[3.0 * coef], 1e-6);
        assert_close(&b, &[-3.0 * coef], 1e-6);
    }

    #[test]
    fn bad_thresholds_are_errors() {
        let mut g = [1.0_f32];
        for bad in [-1.0, f32::NAN, f32::INFINITY] {
            assert!(clip_grad_norm(&mut [&mut g[..]], bad).is_err());
        }
        assert!(clip_grad_value(&mut [&mut g[..]], -0.5).is_err());
        assert!(clip_grad_value(&mut [&mut g[..]], f32::NAN).is_err());
        // Empty gradient lists are fine.
        assert!(!clip_grad_norm(&mut [], 1.0).unwrap().clipped);
    }

    #[test]
    fn clip_value_keeps_nan() {
        let mut g = [f32::NAN, -5.0, f32::INFINITY];
        assert_eq!(clip_grad_value(&mut [&mut g[..]], 2.0).unwrap(), 2);
        assert!(g[0].is_nan());
        assert_eq!(&g[1..], &[-2.0, 2.0]);
    }
}
