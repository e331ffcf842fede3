//! Losses with their gradients, and the metrics reported beside them.
//!
//! **Cross-entropy** (PyTorch `F.cross_entropy` over logits `z` `[N, V]` with class targets),
//! fused with log-softmax. For a counted row with target `t`, label smoothing `ε`:
//!
//! ```text
//! m      = max_j z_j                               (numerical stability)
//! lse    = m + ln Σ_j exp(z_j − m)                 log-sum-exp
//! −log p_j = lse − z_j
//! nll    = lse − z_t
//! smooth = (1/V) Σ_j (−log p_j) = lse − mean_j z_j
//! ℓ      = (1 − ε)·nll + ε·smooth                  PyTorch's formula
//! L      = Σ_counted ℓ / count   (reduction = mean; count = rows not ignored)
//! dL/dz_j = (p_j − (1 − ε)·[j = t] − ε/V) / count   counted rows; 0 for ignored rows
//! ```
//!
//! A row is ignored (contributes nothing, and is not counted) when its target is `None` or
//! equals `ignore_index`. Gradients are written in the same pass that computes the loss; the
//! only `[N, V]` buffer is the gradient itself (it first holds `exp(z − m)`).
//!
//! **Regression** over predictions `y` and targets `ŷ` of any shape, optionally masked, mean
//! over the counted elements (`d = y − ŷ`):
//!
//! ```text
//! MSE:    ℓ = d²                                     dℓ/dy = 2d
//! L1:     ℓ = |d|                                    dℓ/dy = sign(d)   (0 at d = 0)
//! Huber:  ℓ = d²/2 if |d| < δ, else δ(|d| − δ/2)     dℓ/dy = clamp(d, −δ, δ)
//! ```
//!
//! **Metrics**: [`perplexity`] and [`bits_per_char`] from mean nats, [`accuracy`] (argmax),
//! [`rmse`] and [`mae`].

use crate::error::{Error, Result};
use crate::kernels::activation::exp;
use ndarray::{Array, Array2, ArrayView, ArrayView2, Dimension, Zip};
use rayon::prelude::*;

/// A class target: a plain id (always counted, unless it equals `ignore_index`) or an optional
/// one (`None` is ignored). Lets the losses take `&[usize]` and `&[Option<usize>]` alike.
///
/// ```
/// use rnnkit::nn::loss::TargetId;
/// assert_eq!(3usize.id(), Some(3));
/// assert_eq!(None::<usize>.id(), None);
/// ```
pub trait TargetId: Copy + Sync {
    /// The class, or `None` for a position that does not count.
    fn id(self) -> Option<usize>;
}

impl TargetId for usize {
    fn id(self) -> Option<usize> {
        Some(self)
    }
}

impl TargetId for Option<usize> {
    fn id(self) -> Option<usize> {
        self
    }
}

/// How per-element losses are combined (PyTorch `reduction`).
///
/// ```
/// assert_eq!(rnnkit::nn::loss::Reduction::default(), rnnkit::nn::loss::Reduction::Mean);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Mean over the counted elements (default, as PyTorch).
    #[default]
    Mean,
    /// Sum over the counted elements.
    Sum,
}

/// Softmax cross-entropy over logits `[N, V]` with integer targets.
///
/// Defaults (as PyTorch's `F.cross_entropy`): no `ignore_index`, no label smoothing, mean
/// reduction.
///
/// ```
/// use ndarray::{array, Array2};
/// use rnnkit::nn::CrossEntropy;
///
/// let logits = array![[0.0f32, 0.0], [2.0, 0.0]]; // [N = 2, V = 2]
/// let ce = CrossEntropy::default().ignore_index(1);
/// let mut dlogits = Array2::zeros((2, 2));
/// let out = ce.forward_backward(logits.view(), &[1, 0], &mut dlogits).unwrap();
/// assert_eq!(out.count, 1); // the first row's target is the ignored id
/// assert!((out.loss - (1.0 + (-2.0f32).exp()).ln()).abs() < 1e-6);
/// assert_eq!(dlogits.row(0).to_vec(), vec![0.0, 0.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropy {
    /// A target id that does not count (PyTorch `ignore_index`, e.g. the padding id).
    pub ignore_index: Option<usize>,
    /// `ε` in `[0, 1]`: the target distribution is `(1 − ε)·onehot + ε/V`.
    pub label_smoothing: f32,
    /// Mean (default) or sum over counted rows.
    pub reduction: Reduction,
}

impl Default for CrossEntropy {
    /// No ignored id, no smoothing, mean reduction (PyTorch's defaults).
    fn default() -> Self {
        CrossEntropy {
            ignore_index: None,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }
}

/// What a cross-entropy pass measured.
///
/// ```
/// use ndarray::array;
/// let out = rnnkit::nn::CrossEntropy::default()
///     .forward(array![[0.0f32, 0.0]].view(), &[0])
///     .unwrap();
/// assert!((out.mean_nll() - 2f64.ln()).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrossEntropyOutput {
    /// The reduced loss (label smoothing included): what the gradient is of.
    pub loss: f32,
    /// `Σ −log p(target)` over counted rows, without smoothing (for perplexity: sum over
    /// batches, divide by the summed `count`).
    pub nll_sum: f64,
    /// Rows counted (not ignored).
    pub count: usize,
    /// Counted rows whose argmax is the target (ties go to the lowest index).
    pub correct: usize,
}

impl CrossEntropyOutput {
    /// Mean negative log-likelihood in nats (0 when nothing was counted).
    ///
    /// ```
    /// use rnnkit::nn::loss::CrossEntropyOutput;
    /// let o = CrossEntropyOutput { loss: 0.0, nll_sum: 3.0, count: 2, correct: 0 };
    /// assert_eq!(o.mean_nll(), 1.5);
    /// ```
    pub fn mean_nll(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.nll_sum / self.count as f64
        }
    }
}

/// Per-row results, summed serially afterwards so the total does not depend on threading.
#[derive(Clone, Copy, Default)]
struct RowOut {
    loss: f64,
    nll: f64,
    correct: bool,
}

impl CrossEntropy {
    /// Sets `ignore_index`.
    ///
    /// ```
    /// let ce = rnnkit::nn::CrossEntropy::default().ignore_index(0);
    /// assert_eq!(ce.ignore_index, Some(0));
    /// ```
    pub fn ignore_index(mut self, id: usize) -> Self {
        self.ignore_index = Some(id);
        self
    }

    /// Sets the label smoothing `ε` (checked when the loss runs: it must be in `[0, 1]`).
    ///
    /// ```
    /// let ce = rnnkit::nn::CrossEntropy::default().label_smoothing(0.1);
    /// assert_eq!(ce.label_smoothing, 0.1);
    /// ```
    pub fn label_smoothing(mut self, eps: f32) -> Self {
        self.label_smoothing = eps;
        self
    }

    /// Sets the reduction.
    ///
    /// ```
    /// use rnnkit::nn::{loss::Reduction, CrossEntropy};
    /// assert_eq!(CrossEntropy::default().reduction(Reduction::Sum).reduction, Reduction::Sum);
    /// ```
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The loss only (evaluation): logits `[N, V]`, `targets` `[N]`.
    ///
    /// ```
    /// use ndarray::array;
    /// let ce = rnnkit::nn::CrossEntropy::default();
    /// let out = ce.forward(array![[1.0f32, 3.0], [0.0, 0.0]].view(), &[Some(1), None]).unwrap();
    /// assert_eq!((out.count, out.correct), (1, 1));
    /// ```
    pub fn forward<T: TargetId>(
        &self,
        logits: ArrayView2<'_, f32>,
        targets: &[T],
    ) -> Result<CrossEntropyOutput> {
        self.run(Rows::LossOnly(logits), targets)
    }

    /// The loss and its gradient: writes (overwrites) `dlogits` `[N, V]` with `dL/dlogits`,
    /// zero on ignored rows. This is where backward starts.
    ///
    /// When no row counts, the mean loss is reported as 0 with a zero gradient (PyTorch returns
    /// NaN there; a fully padded batch is not a divergence). When the logits are not needed
    /// afterwards, [`CrossEntropy::forward_backward_in_place`] saves the second `[N, V]` buffer.
    ///
    /// ```
    /// use ndarray::{array, Array2};
    /// let ce = rnnkit::nn::CrossEntropy::default();
    /// let mut d = Array2::zeros((1, 2));
    /// let out = ce.forward_backward(array![[0.0f32, 0.0]].view(), &[0], &mut d).unwrap();
    /// assert_eq!(d, array![[-0.5, 0.5]]);
    /// ```
    pub fn forward_backward<T: TargetId>(
        &self,
        logits: ArrayView2<'_, f32>,
        targets: &[T],
        dlogits: &mut Array2<f32>,
    ) -> Result<CrossEntropyOutput> {
        if dlogits.dim() != logits.dim() {
            return Err(Error::Shape(format!(
                "cross-entropy gradient buffer is {:?}, the logits are {:?}",
                dlogits.shape(),
                logits.shape()
            )));
        }
        if !dlogits.is_standard_layout() {
            *dlogits = Array2::zeros(logits.dim());
        }
        self.run(Rows::Copy(logits, dlogits), targets)
    }

    /// The loss and its gradient in one pass over the logits, written over them: on return
    /// `logits` `[N, V]` holds `dL/dlogits` (zero on ignored rows). A language model's decoder
    /// output is `[T·B, V]` (PTB: 400 × 10,000 floats per step); this keeps it the only buffer
    /// of that size. Same loss and gradient as [`CrossEntropy::forward_backward`].
    ///
    /// ```
    /// use ndarray::array;
    /// let ce = rnnkit::nn::CrossEntropy::default();
    /// let mut z = array![[0.0f32, 0.0], [1.0, 3.0]];
    /// let out = ce.forward_backward_in_place(&mut z, &[1, 1]).unwrap();
    /// assert_eq!((out.count, out.correct), (2, 1)); // row 0's tie goes to class 0
    /// assert_eq!(z.row(0).to_vec(), vec![0.25, -0.25]); // (softmax − onehot) / 2 rows
    /// ```
    pub fn forward_backward_in_place<T: TargetId>(
        &self,
        logits: &mut Array2<f32>,
        targets: &[T],
    ) -> Result<CrossEntropyOutput> {
        if !logits.is_standard_layout() {
            *logits = logits.as_standard_layout().into_owned();
        }
        self.run(Rows::InPlace(logits), targets)
    }

    fn run<T: TargetId>(&self, rows_in: Rows<'_, '_>, targets: &[T]) -> Result<CrossEntropyOutput> {
        let (n, v) = rows_in.dim();
        let eps = self.label_smoothing;
        if !(0.0..=1.0).contains(&eps) {
            return Err(Error::Config(format!(
                "label_smoothing must be in [0, 1], got {eps}"
            )));
        }
        if targets.len() != n {
            return Err(Error::Shape(format!(
                "cross-entropy has {n} rows of logits but {} targets",
                targets.len()
            )));
        }
        // Resolve and check targets once: `None` = not counted.
        let mut count = 0usize;
        let mut resolved = Vec::with_capacity(n); // [N]
        for (row, t) in targets.iter().enumerate() {
            let t = t.id().filter(|&t| Some(t) != self.ignore_index);
            if let Some(id) = t {
                if id >= v {
                    return Err(Error::Shape(format!(
                        "target {id} at row {row} is outside the {v} classes of the logits"
                    )));
                }
                count += 1;
            }
            resolved.push(t);
        }
        let scale = match self.reduction {
            Reduction::Mean if count > 0 => 1.0 / count as f32,
            Reduction::Mean => 0.0,
            Reduction::Sum => 1.0,
        };
        let mut rows = vec![RowOut::default(); n]; // [N]
        let threads = rayon::current_num_threads();
        let blocks = if n * v >= 1 << 15 { threads.min(n) } else { 1 };
        let block = n.div_ceil(blocks.max(1)).max(1);
        let params = RowParams { v, eps, scale };
        // Every mode runs the same in-place row pass, on the gradient row itself or on a copy
        // of the logits row (into the gradient buffer, or into a scratch row when only the
        // loss is wanted).
        let in_place = |z: &mut [f32], outs: &mut [RowOut], first: usize, grad: bool| {
            for (r, (out, row)) in outs.iter_mut().zip(z.chunks_exact_mut(v)).enumerate() {
                *out = params.row(row, resolved[first + r], grad);
            }
        };
        match rows_in {
            Rows::InPlace(z) => {
                let z = z.as_slice_mut().expect("standard layout"); // [N, V]
                if blocks > 1 {
                    rows.par_chunks_mut(block)
                        .zip(z.par_chunks_mut(block * v))
                        .enumerate()
                        .for_each(|(b, (outs, zb))| in_place(zb, outs, b * block, true));
                } else if n > 0 && v > 0 {
                    in_place(z, &mut rows, 0, true);
                }
            }
            Rows::Copy(logits, d) => {
                let logits = logits.as_standard_layout();
                let z = logits.as_slice().expect("standard layout"); // [N, V]
                let d = d.as_slice_mut().expect("standard layout"); // [N, V]
                let job = |(b, (outs, db)): (usize, (&mut [RowOut], &mut [f32]))| {
                    db.copy_from_slice(&z[b * block * v..b * block * v + db.len()]);
                    in_place(db, outs, b * block, true);
                };
                if blocks > 1 {
                    rows.par_chunks_mut(block)
                        .zip(d.par_chunks_mut(block * v))
                        .enumerate()
                        .for_each(job);
                } else if n > 0 && v > 0 {
                    job((0, (&mut rows[..], d)));
                }
            }
            Rows::LossOnly(logits) => {
                let logits = logits.as_standard_layout();
                let z = logits.as_slice().expect("standard layout"); // [N, V]
                let job = |(b, outs): (usize, &mut [RowOut])| {
                    let mut scratch = vec![0.0f32; v]; // [V] one row at a time
                    for (r, out) in outs.iter_mut().enumerate() {
                        let row = b * block + r;
                        scratch.copy_from_slice(&z[row * v..(row + 1) * v]);
                        *out = params.row(&mut scratch, resolved[row], false);
                    }
                };
                if blocks > 1 {
                    rows.par_chunks_mut(block).enumerate().for_each(job);
                } else {
                    job((0, &mut rows[..]));
                }
            }
        }
        let mut out = CrossEntropyOutput {
            loss: 0.0,
            nll_sum: 0.0,
            count,
            correct: 0,
        };
        let mut loss_sum = 0.0f64;
        for (r, t) in rows.iter().zip(&resolved) {
            if t.is_some() {
                loss_sum += r.loss;
                out.nll_sum += r.nll;
                out.correct += r.correct as usize;
            }
        }
        out.loss = match self.reduction {
            Reduction::Mean if count > 0 => (loss_sum / count as f64) as f32,
            Reduction::Mean => 0.0,
            Reduction::Sum => loss_sum as f32,
        };
        Ok(out)
    }
}

/// Where a cross-entropy pass reads its logits and writes its gradient.
enum Rows<'a, 'b> {
    /// Loss only: the logits are read, nothing is written.
    LossOnly(ArrayView2<'a, f32>),
    /// The logits are read and the gradient written to the second buffer.
    Copy(ArrayView2<'a, f32>, &'b mut Array2<f32>),
    /// The logits are replaced by the gradient.
    InPlace(&'b mut Array2<f32>),
}

impl Rows<'_, '_> {
    fn dim(&self) -> (usize, usize) {
        match self {
            Rows::LossOnly(z) | Rows::Copy(z, _) => z.dim(),
            Rows::InPlace(z) => z.dim(),
        }
    }
}

/// Per-row constants of a cross-entropy pass.
struct RowParams {
    v: usize,
    eps: f32,
    /// `1/count` (mean) or 1 (sum): the gradient scale.
    scale: f32,
}

impl RowParams {
    /// One row, in place: `e` `[V]` holds the logits on entry and, when `grad`, the gradient
    /// row on return (otherwise scratch). `target` None = ignored.
    fn row(&self, e: &mut [f32], target: Option<usize>, grad: bool) -> RowOut {
        let Some(t) = target else {
            if grad {
                e.fill(0.0);
            }
            return RowOut::default();
        };
        let v = self.v;
        let mut m = f32::NEG_INFINITY;
        row_max(e, &mut m);
        let zt = e[t];
        // argmax == t with ties going to the lowest index, as PyTorch's argmax.
        let correct = zt == m && !e[..t].contains(&m);
        let mut s = 0.0f32;
        let mut sum_z = 0.0f32;
        exp_shift_sum(e, m, &mut s, &mut sum_z);
        let lse = m as f64 + (s as f64).ln();
        let nll = lse - zt as f64;
        let smooth = lse - sum_z as f64 / v as f64;
        let eps = self.eps as f64;
        let loss = (1.0 - eps) * nll + eps * smooth;
        if grad {
            let k = self.scale / s;
            let off = self.scale * self.eps / v as f32;
            scale_shift(e, k, off);
            e[t] -= self.scale * (1.0 - self.eps);
        }
        RowOut { loss, nll, correct }
    }
}

simd_fn! {
    /// `m = max(m, max z)` with eight partial maxima so the loop vectorizes (NaN is skipped).
    fn row_max(z: &[f32], m: &mut f32) {
        let mut acc = [f32::NEG_INFINITY; 8];
        let n8 = z.len() - z.len() % 8;
        for c in z[..n8].chunks_exact(8) {
            for k in 0..8 {
                acc[k] = if c[k] > acc[k] { c[k] } else { acc[k] };
            }
        }
        for &x in &z[n8..] {
            acc[0] = if x > acc[0] { x } else { acc[0] };
        }
        for a in acc {
            if a > *m {
                *m = a;
            }
        }
    }
}

simd_fn! {
    /// `e[j] = exp(e[j] − m)`, in place; adds `Σ exp` into `s` and `Σ e[j]` (before) into
    /// `sum_z`, with eight partial sums so the loops vectorize.
    fn exp_shift_sum(e: &mut [f32], m: f32, s: &mut f32, sum_z: &mut f32) {
        let mut acc = [0.0f32; 8];
        let mut acc_z = [0.0f32; 8];
        let n8 = e.len() - e.len() % 8;
        for ec in e[..n8].chunks_exact_mut(8) {
            for k in 0..8 {
                let z = ec[k];
                let x = exp(z - m);
                ec[k] = x;
                acc[k] += x;
                acc_z[k] += z;
            }
        }
        for x in &mut e[n8..] {
            let z = *x;
            *x = exp(z - m);
            acc[0] += *x;
            acc_z[0] += z;
        }
        *s += acc.iter().sum::<f32>();
        *sum_z += acc_z.iter().sum::<f32>();
    }
}

simd_fn! {
    /// `e[j] = e[j] · k − off`.
    fn scale_shift(e: &mut [f32], k: f32, off: f32) {
        for x in e.iter_mut() {
            *x = *x * k - off;
        }
    }
}

/// A regression loss (PyTorch `mse_loss`, `l1_loss`, `huber_loss`), mean over counted elements.
///
/// ```
/// use ndarray::{array, Array1};
/// use rnnkit::nn::Regression;
///
/// let (y, t) = (array![1.0f32, 4.0], array![0.0f32, 0.0]);
/// let mut dy = Array1::zeros(2);
/// let out = Regression::Huber { delta: 1.0 }
///     .forward_backward(y.view(), t.view(), None, &mut dy)
///     .unwrap();
/// assert_eq!(out.loss, (0.5 + 3.5) / 2.0);
/// assert_eq!(dy, array![0.5, 0.5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regression {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    L1,
    /// Huber loss with threshold `delta > 0` (PyTorch `huber_loss`; `delta = 1` is
    /// `smooth_l1_loss` with `beta = 1`).
    Huber {
        /// Where the quadratic part turns linear.
        delta: f32,
    },
}

/// What a regression loss measured.
///
/// ```
/// use ndarray::array;
/// let out = rnnkit::nn::Regression::L1
///     .forward(array![1.0f32, 3.0].view(), array![0.0f32, 0.0].view(), None)
///     .unwrap();
/// assert_eq!((out.loss, out.sum, out.count), (2.0, 4.0, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossOutput {
    /// The mean over counted elements (0 when none).
    pub loss: f32,
    /// The sum over counted elements.
    pub sum: f64,
    /// Elements counted.
    pub count: usize,
}

impl Regression {
    /// The loss only, over `pred` and `target` of one shape; `mask` (same shape) keeps the
    /// elements that are `true` (e.g. valid steps of a padded batch).
    ///
    /// ```
    /// use ndarray::array;
    /// let mask = array![true, false];
    /// let out = rnnkit::nn::Regression::Mse
    ///     .forward(array![1.0f32, 9.0].view(), array![0.0f32, 0.0].view(), Some(mask.view()))
    ///     .unwrap();
    /// assert_eq!((out.loss, out.count), (1.0, 1));
    /// ```
    pub fn forward<D: Dimension>(
        &self,
        pred: ArrayView<'_, f32, D>,
        target: ArrayView<'_, f32, D>,
        mask: Option<ArrayView<'_, bool, D>>,
    ) -> Result<LossOutput> {
        self.run(pred, target, mask, None)
    }

    /// The loss and its gradient: writes (overwrites) `dpred` (shape of `pred`) with
    /// `dL/dpred`, zero at masked-out elements.
    ///
    /// ```
    /// use ndarray::{array, Array1};
    /// let mut d = Array1::zeros(2);
    /// rnnkit::nn::Regression::Mse
    ///     .forward_backward(array![1.0f32, 2.0].view(), array![0.0f32, 0.0].view(), None, &mut d)
    ///     .unwrap();
    /// assert_eq!(d, array![1.0, 2.0]); // 2d / 2
    /// ```
    pub fn forward_backward<D: Dimension>(
        &self,
        pred: ArrayView<'_, f32, D>,
        target: ArrayView<'_, f32, D>,
        mask: Option<ArrayView<'_, bool, D>>,
        dpred: &mut Array<f32, D>,
    ) -> Result<LossOutput> {
        if dpred.shape() != pred.shape() {
            return Err(Error::Shape(format!(
                "regression gradient buffer is {:?}, the predictions are {:?}",
                dpred.shape(),
                pred.shape()
            )));
        }
        self.run(pred, target, mask, Some(dpred))
    }

    fn run<D: Dimension>(
        &self,
        pred: ArrayView<'_, f32, D>,
        target: ArrayView<'_, f32, D>,
        mask: Option<ArrayView<'_, bool, D>>,
        dpred: Option<&mut Array<f32, D>>,
    ) -> Result<LossOutput> {
        if let Regression::Huber { delta } = *self
            && (delta.is_nan() || delta <= 0.0)
        {
            return Err(Error::Config(format!(
                "huber delta must be positive, got {delta}"
            )));
        }
        check_same(&pred, &target, mask.as_ref())?;
        let count = match &mask {
            Some(m) => m.iter().filter(|&&k| k).count(),
            None => pred.len(),
        };
        let scale = if count > 0 { 1.0 / count as f32 } else { 0.0 };
        let kind = *self;
        let value = move |d: f32| -> f64 {
            let d = d as f64;
            match kind {
                Regression::Mse => d * d,
                Regression::L1 => d.abs(),
                Regression::Huber { delta } => {
                    let (a, delta) = (d.abs(), delta as f64);
                    if a < delta {
                        0.5 * d * d
                    } else {
                        delta * (a - 0.5 * delta)
                    }
                }
            }
        };
        let grad = move |d: f32| -> f32 {
            match kind {
                Regression::Mse => 2.0 * d,
                Regression::L1 => {
                    if d > 0.0 {
                        1.0
                    } else if d < 0.0 {
                        -1.0
                    } else {
                        d // 0 (or NaN, which then shows)
                    }
                }
                Regression::Huber { delta } => d.clamp(-delta, delta),
            }
        };
        let mut sum = 0.0f64;
        let all = ndarray::Array::from_elem(pred.raw_dim(), true);
        let mask = mask.unwrap_or_else(|| all.view());
        match dpred {
            Some(dp) => {
                Zip::from(dp)
                    .and(&pred)
                    .and(&target)
                    .and(&mask)
                    .for_each(|g, &y, &t, &k| {
                        if k {
                            let d = y - t;
                            sum += value(d);
                            *g = grad(d) * scale;
                        } else {
                            *g = 0.0;
                        }
                    })
            }
            None => Zip::from(&pred)
                .and(&target)
                .and(&mask)
                .for_each(|&y, &t, &k| {
                    if k {
                        sum += value(y - t);
                    }
                }),
        }
        let loss = if count > 0 { sum / count as f64 } else { 0.0 };
        Ok(LossOutput {
            loss: loss as f32,
            sum,
            count,
        })
    }
}

fn check_same<D: Dimension>(
    pred: &ArrayView<'_, f32, D>,
    target: &ArrayView<'_, f32, D>,
    mask: Option<&ArrayView<'_, bool, D>>,
) -> Result<()> {
    if pred.shape() != target.shape() {
        return Err(Error::Shape(format!(
            "predictions are {:?} but targets are {:?}",
            pred.shape(),
            target.shape()
        )));
    }
    if let Some(m) = mask
        && m.shape() != pred.shape()
    {
        return Err(Error::Shape(format!(
            "mask is {:?} but predictions are {:?}",
            m.shape(),
            pred.shape()
        )));
    }
    Ok(())
}

/// Perplexity `exp(mean nats)` (language models; e.g. from [`CrossEntropyOutput::mean_nll`]).
///
/// ```
/// assert!((rnnkit::nn::loss::perplexity(100f64.ln()) - 100.0).abs() < 1e-9);
/// ```
pub fn perplexity(mean_nats: f64) -> f64 {
    mean_nats.exp()
}

/// Bits per character `mean nats / ln 2` (character-level models).
///
/// ```
/// assert!((rnnkit::nn::loss::bits_per_char(2f64.ln()) - 1.0).abs() < 1e-12);
/// ```
pub fn bits_per_char(mean_nats: f64) -> f64 {
    mean_nats / std::f64::consts::LN_2
}

/// Argmax accuracy: how many counted rows of `logits` `[N, V]` have their largest value (the
/// first, on ties) at the target.
///
/// ```
/// use ndarray::array;
/// let a = rnnkit::nn::loss::accuracy(array![[0.0f32, 1.0], [2.0, 1.0], [0.0, 0.0]].view(), &[Some(1), Some(1), None], None).unwrap();
/// assert_eq!((a.correct, a.count, a.fraction()), (1, 2, 0.5));
/// ```
pub fn accuracy<T: TargetId>(
    logits: ArrayView2<'_, f32>,
    targets: &[T],
    ignore_index: Option<usize>,
) -> Result<Accuracy> {
    let (n, v) = logits.dim();
    if targets.len() != n {
        return Err(Error::Shape(format!(
            "accuracy over {n} rows of logits but {} targets",
            targets.len()
        )));
    }
    let mut acc = Accuracy {
        correct: 0,
        count: 0,
    };
    for (row, (z, t)) in logits.rows().into_iter().zip(targets).enumerate() {
        let Some(t) = t.id().filter(|&t| Some(t) != ignore_index) else {
            continue;
        };
        if t >= v {
            return Err(Error::Shape(format!(
                "target {t} at row {row} is outside the {v} classes of the logits"
            )));
        }
        let (mut m, mut arg) = (f32::NEG_INFINITY, 0usize);
        for (j, &x) in z.iter().enumerate() {
            if x > m {
                m = x;
                arg = j;
            }
        }
        acc.count += 1;
        acc.correct += (arg == t) as usize;
    }
    Ok(acc)
}

/// Correct and counted predictions; add them up over batches, then take [`Accuracy::fraction`].
///
/// ```
/// let a = rnnkit::nn::loss::Accuracy { correct: 3, count: 4 };
/// assert_eq!(a.fraction(), 0.75);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accuracy {
    /// Rows whose argmax is the target.
    pub correct: usize,
    /// Rows counted.
    pub count: usize,
}

impl Accuracy {
    /// `correct / count` (0 when nothing was counted).
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::loss::Accuracy { correct: 0, count: 0 }.fraction(), 0.0);
    /// ```
    pub fn fraction(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.correct as f64 / self.count as f64
        }
    }
}

/// Root mean squared error over the counted (`mask`) elements. Pass values in original units
/// (undo the normalization first) to report the error in those units.
///
/// ```
/// use ndarray::array;
/// let e = rnnkit::nn::loss::rmse(array![3.0f32, 0.0].view(), array![0.0f32, 4.0].view(), None).unwrap();
/// assert!((e - 12.5f64.sqrt()).abs() < 1e-12);
/// ```
pub fn rmse<D: Dimension>(
    pred: ArrayView<'_, f32, D>,
    target: ArrayView<'_, f32, D>,
    mask: Option<ArrayView<'_, bool, D>>,
) -> Result<f64> {
    let out = Regression::Mse.forward(pred, target, mask)?;
    Ok(mean(out).sqrt())
}

/// Mean absolute error over the counted (`mask`) elements, in the units of the values given.
///
/// ```
/// use ndarray::array;
/// let e = rnnkit::nn::loss::mae(array![3.0f32, 0.0].view(), array![0.0f32, 4.0].view(), None).unwrap();
/// assert_eq!(e, 3.5);
/// ```
pub fn mae<D: Dimension>(
    pred: ArrayView<'_, f32, D>,
    target: ArrayView<'_, f32, D>,
    mask: Option<ArrayView<'_, bool, D>>,
) -> Result<f64> {
    Ok(mean(Regression::L1.forward(pred, target, mask)?))
}

fn mean(out: LossOutput) -> f64 {
    if out.count == 0 {
        0.0
    } else {
        out.sum / out.count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::worse;
    use ndarray::{Array1, array};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The PyTorch example (see `pytorch_values`).
    fn example() -> (Array2<f32>, [usize; 4]) {
        let logits = array![
            [1.0f32, 2.0, 0.5, -1.0],
            [0.0, 0.0, 0.0, 0.0],
            [3.0, -2.0, 1.0, 0.25],
            [-0.5, 4.0, 2.5, 1.5]
        ];
        (logits, [1, 3, 0, 2])
    }

    /// Golden values from PyTorch 2.x (`/work/venv`), made by:
    ///
    /// ```python
    /// import torch, torch.nn.functional as F
    /// logits = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 0.0, 0.0],
    ///                        [3.0, -2.0, 1.0, 0.25], [-0.5, 4.0, 2.5, 1.5]], requires_grad=True)
    /// targets = torch.tensor([1, 3, 0, 2])
    /// for kw in [{}, dict(ignore_index=2), dict(label_smoothing=0.1),
    ///            dict(ignore_index=2, label_smoothing=0.1)]:
    ///     logits.grad = None
    ///     loss = F.cross_entropy(logits, targets, **kw); loss.backward()
    ///     print(repr(loss.item()), logits.grad.flatten().tolist())
    /// ```
    #[test]
    #[allow(clippy::excessive_precision)] // golden values pasted as Python printed them
    fn cross_entropy_matches_pytorch() {
        #[rustfmt::skip]
        let cases: [(Option<usize>, f32, f32, [f32; 16]); 4] = [
            (None, 0.0, 0.9609073400497437, [
                0.05605195462703705, -0.09763498604297638, 0.033997226506471634, 0.007585807703435421,
                0.0625, 0.0625, 0.0625, -0.1875,
                -0.04270336031913757, 0.001396753592416644, 0.028054554015398026, 0.013252032920718193,
                0.002109851688146591, 0.18992282450199127, -0.2076224982738495, 0.015589812770485878]),
            (Some(2), 0.0, 0.6895954608917236, [
                0.07473593950271606, -0.1301799863576889, 0.045329637825489044, 0.010114410892128944,
                0.0833333358168602, 0.0833333358168602, 0.0833333358168602, -0.25,
                -0.0569378137588501, 0.0018623381620272994, 0.0374060720205307, 0.017669377848505974,
                0.0, 0.0, 0.0, 0.0]),
            (None, 0.1, 1.0718448162078857, [
                0.04980194941163063, -0.07888498902320862, 0.027747223153710365, 0.001335806678980589,
                0.05624999478459358, 0.05624999478459358, 0.05624999478459358, -0.16874998807907104,
                -0.023953372612595558, -0.004853246733546257, 0.021804550662636757, 0.007002031430602074,
                -0.004140148404985666, 0.18367281556129456, -0.18887248635292053, 0.009339812211692333]),
            (Some(2), 0.1, 0.8166788220405579, [
                0.06640259176492691, -0.10517998784780502, 0.03699629381299019, 0.0017810750287026167,
                0.07499999552965164, 0.07499999552965164, 0.07499999552965164, -0.22499997913837433,
                -0.03193783015012741, -0.006470995955169201, 0.029072733595967293, 0.009336041286587715,
                0.0, 0.0, 0.0, 0.0]),
        ];
        let (logits, targets) = example();
        for (ignore, eps, want_loss, want_grad) in cases {
            let mut ce = CrossEntropy::default().label_smoothing(eps);
            ce.ignore_index = ignore;
            let mut d = Array2::from_elem((4, 4), 9.0f32); // overwritten
            let out = ce
                .forward_backward(logits.view(), &targets, &mut d)
                .unwrap();
            assert!(
                (out.loss - want_loss).abs() < 1e-6,
                "ignore {ignore:?} eps {eps}: loss {} vs {want_loss}",
                out.loss
            );
            let worst = d
                .iter()
                .zip(want_grad)
                .map(|(a, b)| f64::from((a - b).abs()))
                .fold(0.0, worse);
            assert!(
                worst < 1e-6,
                "ignore {ignore:?} eps {eps}: worst gradient diff {worst}"
            );
            assert_eq!(ce.forward(logits.view(), &targets).unwrap(), out);
        }
    }

    /// Label smoothing by hand: logits [0, ln 3] (p = [1/4, 3/4]), target 0, ε = 0.2:
    /// nll = ln 4; smooth = ((ln 4) + (ln 4 − ln 3)) / 2; loss = 0.8·nll + 0.2·smooth.
    #[test]
    fn label_smoothing_matches_hand_computation() {
        let logits = array![[0.0f32, 3f32.ln()]];
        let ce = CrossEntropy::default().label_smoothing(0.2);
        let out = ce.forward(logits.view(), &[0]).unwrap();
        let (l4, l3) = (4f64.ln(), 3f64.ln());
        let want = 0.8 * l4 + 0.2 * (l4 + (l4 - l3)) / 2.0;
        assert!(
            (out.loss as f64 - want).abs() < 1e-6,
            "{} vs {want}",
            out.loss
        );
        assert!((out.nll_sum - l4).abs() < 1e-6); // nll_sum carries no smoothing
        assert_eq!(out.correct, 0);
    }

    /// f64 reference of the loss, for finite differences.
    fn ce_ref(z: &Array2<f64>, targets: &[Option<usize>], eps: f64) -> f64 {
        let v = z.ncols() as f64;
        let (mut total, mut count) = (0.0, 0);
        for (row, t) in z.rows().into_iter().zip(targets) {
            let Some(t) = *t else { continue };
            let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
            let smooth = row.iter().map(|x| lse - x).sum::<f64>() / v;
            total += (1.0 - eps) * (lse - row[t]) + eps * smooth;
            count += 1;
        }
        total / count as f64
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (n, v) = (6, 37); // V not a multiple of 8: the tail loop runs
        let z = Array2::from_shape_fn((n, v), |_| rng.random_range(-3.0f32..3.0));
        let targets = [Some(3), None, Some(36), Some(0), Some(7), Some(7)];
        for eps in [0.0f32, 0.3] {
            let ce = CrossEntropy::default().label_smoothing(eps).ignore_index(0);
            let mut d = Array2::zeros((n, v));
            let out = ce.forward_backward(z.view(), &targets, &mut d).unwrap();
            assert_eq!(out.count, 4); // None and the ignored id 0 drop out
            let counted: Vec<Option<usize>> =
                targets.iter().map(|t| t.filter(|&t| t != 0)).collect();
            let mut z64 = z.mapv(|x| x as f64);
            let want = ce_ref(&z64, &counted, eps as f64);
            assert!(
                (out.loss as f64 - want).abs() < 1e-5,
                "{} vs {want}",
                out.loss
            );
            let h = 1e-6;
            let mut worst = 0.0f64;
            for i in 0..n {
                for j in 0..v {
                    let orig = z64[[i, j]];
                    z64[[i, j]] = orig + h;
                    let up = ce_ref(&z64, &counted, eps as f64);
                    z64[[i, j]] = orig - h;
                    let down = ce_ref(&z64, &counted, eps as f64);
                    z64[[i, j]] = orig;
                    worst = worse(worst, ((up - down) / (2.0 * h) - d[[i, j]] as f64).abs());
                }
            }
            assert!(worst < 1e-6, "eps {eps}: worst gradient difference {worst}");
            // Ignored rows: exactly zero gradient.
            assert!(d.row(1).iter().chain(d.row(3).iter()).all(|&g| g == 0.0));
        }
    }

    #[test]
    fn ignored_targets_change_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let z = Array2::from_shape_fn((5, 9), |_| rng.random_range(-2.0f32..2.0));
        let ce = CrossEntropy::default().ignore_index(8).label_smoothing(0.1);
        let base = ce.forward(z.view(), &[1, 8, 2, 8, 3]).unwrap();
        // The same counted rows alone give the same loss; ignored rows' logits do not matter.
        let only = z.select(ndarray::Axis(0), &[0, 2, 4]);
        let alone = ce.forward(only.view(), &[1, 2, 3]).unwrap();
        assert!((base.loss - alone.loss).abs() < 1e-7);
        let mut z2 = z.clone();
        z2.row_mut(1).fill(1e4);
        z2.row_mut(3).fill(f32::NAN);
        let masked = [Some(1), None, Some(2), Some(8), Some(3)];
        let other = ce.forward(z2.view(), &masked).unwrap();
        assert_eq!(other.loss, base.loss);
        assert_eq!(other.count, 3);
    }

    #[test]
    fn cross_entropy_is_stable_and_thread_independent() {
        // Huge logits: no overflow.
        let z = array![[1000.0f32, 0.0], [-1000.0, 1000.0]];
        let out = CrossEntropy::default().forward(z.view(), &[0, 0]).unwrap();
        assert!((out.loss - 1000.0).abs() < 1e-3, "{}", out.loss);
        // A large batch takes the parallel path; sum reduction; results equal the serial ones.
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let (n, v) = (64, 1000);
        let z = Array2::from_shape_fn((n, v), |_| rng.random_range(-5.0f32..5.0));
        let t: Vec<usize> = (0..n).map(|i| (i * 37) % v).collect();
        let ce = CrossEntropy::default().reduction(Reduction::Sum);
        let mut d = Array2::zeros((n, v));
        let par = ce.forward_backward(z.view(), &t, &mut d).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut d1 = Array2::zeros((n, v));
        let ser = pool.install(|| ce.forward_backward(z.view(), &t, &mut d1).unwrap());
        assert_eq!(par, ser);
        assert_eq!(d, d1);
        let mean = CrossEntropy::default().forward(z.view(), &t).unwrap();
        assert!((mean.loss * n as f32 - par.loss).abs() < 1e-3);
        // Sum reduction gradient rows sum to zero (softmax minus one-hot).
        assert!(d.row(5).sum().abs() < 1e-5);
    }

    #[test]
    fn in_place_equals_separate_buffers_and_loss_only() {
        // Large enough to take the threaded path; ignored rows and smoothing included.
        let (n, v) = (37, 1500);
        let z = Array2::from_shape_fn((n, v), |(i, j)| {
            ((i * 31 + j * 17) % 101) as f32 * 0.07 - 3.0
        });
        let targets: Vec<Option<usize>> = (0..n)
            .map(|i| (i % 5 != 2).then_some((i * 389) % v))
            .collect();
        let ce = CrossEntropy::default().label_smoothing(0.1);
        let mut d = Array2::zeros((n, v));
        let a = ce.forward_backward(z.view(), &targets, &mut d).unwrap();
        let mut zz = z.clone();
        let b = ce.forward_backward_in_place(&mut zz, &targets).unwrap();
        let c = ce.forward(z.view(), &targets).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(d, zz);
        assert!(zz.row(2).iter().all(|&g| g == 0.0));
    }

    #[test]
    fn cross_entropy_errors_and_empty() {
        let z = Array2::<f32>::zeros((2, 3));
        let e = CrossEntropy::default()
            .forward(z.view(), &[0, 3])
            .unwrap_err();
        assert!(e.to_string().contains("target 3"), "{e}");
        assert!(CrossEntropy::default().forward(z.view(), &[0]).is_err());
        assert!(
            CrossEntropy::default()
                .label_smoothing(1.5)
                .forward(z.view(), &[0, 0])
                .is_err()
        );
        let mut d = Array2::from_elem((2, 3), 1.0f32);
        let out = CrossEntropy::default()
            .forward_backward(z.view(), &[None, None], &mut d)
            .unwrap();
        assert_eq!((out.loss, out.count), (0.0, 0));
        assert!(d.iter().all(|&g| g == 0.0));
        let mut bad = Array2::zeros((3, 3));
        assert!(
            CrossEntropy::default()
                .forward_backward(z.view(), &[0, 0], &mut bad)
                .is_err()
        );
    }

    /// ```python
    /// p = torch.tensor([0.5, -1.0, 2.0, 3.0, 0.0], requires_grad=True)
    /// t = torch.tensor([0.0, 1.0, 2.0, 0.5, 0.3])
    /// F.mse_loss(p, t); F.l1_loss(p, t); F.huber_loss(p, t, delta=1.0); F.huber_loss(p, t, delta=0.5)
    /// ```
    #[test]
    #[allow(clippy::excessive_precision)] // golden values pasted as Python printed them
    fn regression_losses_match_pytorch() {
        let p = array![0.5f32, -1.0, 2.0, 3.0, 0.0];
        let t = array![0.0f32, 1.0, 2.0, 0.5, 0.3];
        let cases = [
            (
                Regression::Mse,
                2.118000030517578f32,
                [0.2f32, -0.8, 0.0, 1.0, -0.12],
            ),
            (
                Regression::L1,
                1.0600000619888306,
                [0.2, -0.2, 0.0, 0.2, -0.2],
            ),
            (
                Regression::Huber { delta: 1.0 },
                0.734000027179718,
                [0.1, -0.2, 0.0, 0.2, -0.06],
            ),
            (
                Regression::Huber { delta: 0.5 },
                0.43400001525878906,
                [0.1, -0.1, 0.0, 0.1, -0.06],
            ),
        ];
        for (kind, want, want_grad) in cases {
            let mut d = Array1::zeros(5);
            let out = kind
                .forward_backward(p.view(), t.view(), None, &mut d)
                .unwrap();
            assert!(
                (out.loss - want).abs() < 1e-6,
                "{kind:?}: {} vs {want}",
                out.loss
            );
            for (g, w) in d.iter().zip(want_grad) {
                assert!((g - w).abs() < 1e-6, "{kind:?}: {d} vs {want_grad:?}");
            }
        }
    }

    #[test]
    fn regression_gradients_match_finite_differences_with_mask() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let p = Array2::from_shape_fn((3, 4), |_| rng.random_range(-2.0f32..2.0));
        let t = Array2::from_shape_fn((3, 4), |_| rng.random_range(-2.0f32..2.0));
        let mask = Array2::from_shape_fn((3, 4), |(i, j)| (i + j) % 3 != 0);
        let count = mask.iter().filter(|&&k| k).count() as f64;
        for kind in [
            Regression::Mse,
            Regression::L1,
            Regression::Huber { delta: 0.7 },
        ] {
            let reference = |p: &Array2<f64>| -> f64 {
                let mut s = 0.0;
                for ((&y, &tt), &k) in p.iter().zip(&t).zip(&mask) {
                    let d = y - tt as f64;
                    if k {
                        s += match kind {
                            Regression::Mse => d * d,
                            Regression::L1 => d.abs(),
                            Regression::Huber { delta } => {
                                let delta = delta as f64;
                                if d.abs() < delta {
                                    0.5 * d * d
                                } else {
                                    delta * (d.abs() - 0.5 * delta)
                                }
                            }
                        };
                    }
                }
                s / count
            };
            let mut d = Array2::from_elem((3, 4), 7.0f32);
            let out = kind
                .forward_backward(p.view(), t.view(), Some(mask.view()), &mut d)
                .unwrap();
            let mut p64 = p.mapv(|x| x as f64);
            assert!((out.loss as f64 - reference(&p64)).abs() < 1e-6);
            let h = 1e-6;
            for i in 0..3 {
                for j in 0..4 {
                    let orig = p64[[i, j]];
                    p64[[i, j]] = orig + h;
                    let up = reference(&p64);
                    p64[[i, j]] = orig - h;
                    let down = reference(&p64);
                    p64[[i, j]] = orig;
                    let num = (up - down) / (2.0 * h);
                    assert!(
                        (num - d[[i, j]] as f64).abs() < 1e-5,
                        "{kind:?} [{i}, {j}]: {num} vs {}",
                        d[[i, j]]
                    );
                    if !mask[[i, j]] {
                        assert_eq!(d[[i, j]], 0.0);
                    }
                }
            }
        }
        let bad = Regression::Huber { delta: 0.0 }.forward(p.view(), t.view(), None);
        assert!(bad.is_err());
        assert!(Regression::Mse.forward(p.view(), t.t(), None).is_err());
    }

    #[test]
    fn metrics() {
        assert!((perplexity(0.0) - 1.0).abs() < 1e-12);
        assert!((bits_per_char(1.0) - 1.0 / std::f64::consts::LN_2).abs() < 1e-12);
        let z = array![[0.1f32, 0.9, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 3.0]];
        // Ties go to the first index; the ignored row does not count.
        let a = accuracy(z.view(), &[1, 0, 2], Some(2)).unwrap();
        assert_eq!(
            a,
            Accuracy {
                correct: 2,
                count: 2
            }
        );
        let ce = CrossEntropy::default()
            .forward(z.view(), &[1, 1, 2])
            .unwrap();
        assert_eq!(ce.correct, 2);
        assert!(accuracy(z.view(), &[1, 0, 3], None).is_err());
        let p = array![[1.0f32, 2.0], [3.0, 4.0]];
        let t = array![[1.0f32, 0.0], [3.0, 8.0]];
        let m = array![[true, true], [false, true]];
        assert!(
            (rmse(p.view(), t.view(), Some(m.view())).unwrap() - (20.0f64 / 3.0).sqrt()).abs()
                < 1e-12
        );
        assert_eq!(mae(p.view(), t.view(), None).unwrap(), 1.5);
    }
}
