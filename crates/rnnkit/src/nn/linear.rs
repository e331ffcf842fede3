//! Fully connected layer (PyTorch `torch.nn.Linear`): the decoder of a language model, the head
//! of a classifier or forecaster.
//!
//! Forward, for a batch of `N` rows `x` `[N, in]`, weight `W` `[out, in]` and bias `b` `[out]`:
//!
//! ```text
//! y = x Wᵀ + b                       [N, out]
//! ```
//!
//! Backward, given `dy` `[N, out]`:
//!
//! ```text
//! dx  = dy W                         [N, in]
//! dW += dyᵀ x                        [out, in]
//! db += Σ_n dy[n, :]                 [out]
//! ```
//!
//! The layer is also available as free functions over borrowed weights ([`forward`],
//! [`backward`]), which is how a decoder shares (ties) the embedding's weight: see
//! [`crate::nn::embedding`].

use crate::error::{Error, Result};
use crate::kernels::bf16::{PackedBf16, gemm_bf16, gemm_bf16_at};
use crate::kernels::gemm::{MatRef, add_column_sums, matmul};
use crate::module::{Module, TensorMut, TensorRef, join};
use crate::precision::Precision;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A fully connected layer's parameters, or their gradients (one struct serves both, like
/// [`crate::LayerParams`]).
///
/// Names and shapes are PyTorch's: `weight [out_features, in_features]`, `bias [out_features]`.
///
/// ```
/// use ndarray::Array2;
/// use rand::SeedableRng;
/// use rnnkit::nn::Linear;
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let layer = Linear::new(3, 2, true, &mut rng);
/// let x = Array2::<f32>::ones((4, 3)); // [N, in]
/// let y = layer.forward(x.view()).unwrap();
/// assert_eq!(y.shape(), &[4, 2]);
///
/// let mut grads = layer.zeros_like();
/// let dx = layer.backward(x.view(), Array2::ones((4, 2)).view(), &mut grads).unwrap();
/// assert_eq!(dx.shape(), &[4, 3]);
/// assert_eq!(grads.bias().unwrap()[0], 4.0); // Σ over the batch of dy = 1
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// `[out_features, in_features]`. Keep it in standard layout (constructors do): the
    /// parameter visitor hands out its values as one slice.
    pub weight: Array2<f32>,
    /// `[out_features]`, absent for `bias = false`.
    pub bias: Option<Array1<f32>>,
}

impl Module for Linear {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        f(&join(prefix, "weight"), tensor_ref(&self.weight));
        if let Some(b) = &self.bias {
            f(&join(prefix, "bias"), tensor_ref(b));
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        f(&join(prefix, "weight"), tensor_mut(&mut self.weight));
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), tensor_mut(b));
        }
    }
}

impl Linear {
    /// A layer with PyTorch's default initialization: `kaiming_uniform_(a = √5)` for the weight,
    /// which is U(−1/√in, 1/√in), and the same range for the bias (zero when `in_features` is 0).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let l = rnnkit::nn::Linear::new(16, 4, true, &mut rng);
    /// assert!(l.weight.iter().all(|w| w.abs() <= 0.25));
    /// ```
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut ChaCha8Rng) -> Self {
        let bound = if in_features > 0 {
            1.0 / (in_features as f32).sqrt()
        } else {
            0.0
        };
        let mut draw = || {
            if bound > 0.0 {
                rng.random_range(-bound..=bound)
            } else {
                0.0
            }
        };
        let weight = Array2::from_shape_fn((out_features, in_features), |_| draw());
        let bias = bias.then(|| Array1::from_shape_fn(out_features, |_| draw()));
        Linear { weight, bias }
    }

    /// A layer over given parameters: `weight` `[out, in]` and `bias` `[out]` (e.g. loaded from
    /// a file), in any memory layout.
    ///
    /// ```
    /// use ndarray::array;
    /// let l = rnnkit::nn::Linear::from_parts(array![[1.0, 2.0]], Some(array![0.5])).unwrap();
    /// assert_eq!(l.forward(array![[3.0, 4.0]].view()).unwrap(), array![[11.5]]);
    /// assert!(rnnkit::nn::Linear::from_parts(array![[1.0, 2.0]], Some(array![0.5, 1.0])).is_err());
    /// ```
    pub fn from_parts(weight: Array2<f32>, bias: Option<Array1<f32>>) -> Result<Self> {
        if let Some(b) = &bias
            && b.len() != weight.nrows()
        {
            return Err(Error::Shape(format!(
                "linear bias has {} values, the weight has {} output rows",
                b.len(),
                weight.nrows()
            )));
        }
        Ok(Linear {
            weight: standard(weight),
            bias: bias.map(standard),
        })
    }

    /// The weight `[out_features, in_features]`.
    pub fn weight(&self) -> &Array2<f32> {
        &self.weight
    }

    /// The bias `[out_features]`, if the layer has one.
    pub fn bias(&self) -> Option<&Array1<f32>> {
        self.bias.as_ref()
    }

    /// The weight's values, to change in place (its shape and layout stay).
    pub fn weight_mut(&mut self) -> ndarray::ArrayViewMut2<'_, f32> {
        self.weight.view_mut()
    }

    /// The bias's values, to change in place.
    pub fn bias_mut(&mut self) -> Option<ndarray::ArrayViewMut1<'_, f32>> {
        self.bias.as_mut().map(|b| b.view_mut())
    }

    /// All-zero parameters (the start of a gradient buffer).
    ///
    /// ```
    /// let g = rnnkit::nn::Linear::zeros(5, 2, false);
    /// assert_eq!(g.weight.shape(), &[2, 5]);
    /// assert!(g.bias.is_none());
    /// ```
    pub fn zeros(in_features: usize, out_features: usize, bias: bool) -> Self {
        Linear {
            weight: Array2::zeros((out_features, in_features)),
            bias: bias.then(|| Array1::zeros(out_features)),
        }
    }

    /// All-zero parameters of this layer's shapes.
    ///
    /// ```
    /// let l = rnnkit::nn::Linear::zeros(5, 2, true);
    /// assert_eq!(l.zeros_like(), l);
    /// ```
    pub fn zeros_like(&self) -> Self {
        Linear::zeros(self.in_features(), self.out_features(), self.bias.is_some())
    }

    /// `in_features` (columns of the weight).
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::Linear::zeros(5, 2, true).in_features(), 5);
    /// ```
    pub fn in_features(&self) -> usize {
        self.weight.ncols()
    }

    /// `out_features` (rows of the weight).
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::Linear::zeros(5, 2, true).out_features(), 2);
    /// ```
    pub fn out_features(&self) -> usize {
        self.weight.nrows()
    }

    /// Sets every value to zero (between optimizer steps).
    ///
    /// ```
    /// let mut g = rnnkit::nn::Linear::zeros(2, 2, true);
    /// g.weight[[0, 1]] = 3.0;
    /// g.fill_zero();
    /// assert_eq!(g.weight[[0, 1]], 0.0);
    /// ```
    pub fn fill_zero(&mut self) {
        self.weight.fill(0.0);
        if let Some(b) = &mut self.bias {
            b.fill(0.0);
        }
    }

    /// `y = x Wᵀ + b`: `x` `[N, in]` to `[N, out]`.
    ///
    /// ```
    /// use ndarray::array;
    /// let l = rnnkit::nn::Linear::from_parts(array![[1.0, 2.0]], Some(array![0.5])).unwrap();
    /// assert_eq!(l.forward(array![[3.0, 4.0]].view()).unwrap(), array![[11.5]]);
    /// ```
    pub fn forward(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        forward(x, self.weight.view(), self.bias.as_ref().map(|b| b.view()))
    }

    /// Backward of [`Linear::forward`] at input `x` `[N, in]` with upstream gradient `dy`
    /// `[N, out]`: adds the weight and bias gradients into `grads` and returns `dx` `[N, in]`.
    ///
    /// ```
    /// use ndarray::array;
    /// let l = rnnkit::nn::Linear::from_parts(array![[1.0, 2.0]], None).unwrap();
    /// let mut g = l.zeros_like();
    /// let dx = l.backward(array![[3.0, 4.0]].view(), array![[1.0]].view(), &mut g).unwrap();
    /// assert_eq!(dx, array![[1.0, 2.0]]);
    /// assert_eq!(g.weight(), array![[3.0, 4.0]]);
    /// ```
    pub fn backward(
        &self,
        x: ArrayView2<'_, f32>,
        dy: ArrayView2<'_, f32>,
        grads: &mut Linear,
    ) -> Result<Array2<f32>> {
        self.backward_in(x, dy, grads, Precision::F32)
    }

    /// [`Linear::backward`] with its products in `precision` (see [`backward_in`]).
    ///
    /// ```
    /// use ndarray::array;
    /// let l = rnnkit::nn::Linear::from_parts(array![[1.0, 2.0]], None).unwrap();
    /// let mut g = l.zeros_like();
    /// let (x, dy) = (array![[3.0, 4.0]], array![[1.0]]);
    /// let dx = l.backward_in(x.view(), dy.view(), &mut g, rnnkit::Precision::Bf16).unwrap();
    /// assert_eq!(dx, array![[1.0, 2.0]]);
    /// ```
    pub fn backward_in(
        &self,
        x: ArrayView2<'_, f32>,
        dy: ArrayView2<'_, f32>,
        grads: &mut Linear,
        precision: Precision,
    ) -> Result<Array2<f32>> {
        if grads.weight.dim() != self.weight.dim() || grads.bias.is_some() != self.bias.is_some() {
            return Err(Error::Shape(format!(
                "linear gradient buffer has weight {:?} (bias {}), the layer has {:?} (bias {})",
                grads.weight.shape(),
                grads.bias.is_some(),
                self.weight.shape(),
                self.bias.is_some()
            )));
        }
        let dx = backward_in(
            x,
            dy,
            self.weight.view(),
            &mut grads.weight,
            grads.bias.as_mut(),
            precision,
        )?;
        Ok(dx)
    }
}

/// `a` in standard (row-major) layout: the visitor hands out its values as one slice.
pub(crate) fn standard<D: ndarray::Dimension>(a: ndarray::Array<f32, D>) -> ndarray::Array<f32, D> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// `a` as a visitor's tensor. Constructors keep parameters in standard layout.
pub(crate) fn tensor_ref<D: ndarray::Dimension>(a: &ndarray::Array<f32, D>) -> TensorRef<'_> {
    TensorRef {
        shape: a.shape(),
        data: a
            .as_slice()
            .expect("parameters are kept in standard layout"),
    }
}

/// `a` as a visitor's mutable tensor (copied into standard layout first if needed).
pub(crate) fn tensor_mut<D: ndarray::Dimension>(a: &mut ndarray::Array<f32, D>) -> TensorMut<'_> {
    if !a.is_standard_layout() {
        *a = a.as_standard_layout().into_owned();
    }
    let shape = a.shape().to_vec();
    let data = a.as_slice_mut().expect("standard layout after the copy");
    TensorMut { shape, data }
}

/// Checks `x` `[N, in]` against `weight` `[out, in]` and `bias` `[out]`.
fn check(x: (usize, usize), weight: (usize, usize), bias: Option<usize>) -> Result<()> {
    if x.1 != weight.1 {
        return Err(Error::Shape(format!(
            "linear input has {} features per row ([{}, {}]), the weight [{}, {}] expects {}",
            x.1, x.0, x.1, weight.0, weight.1, weight.1
        )));
    }
    if let Some(b) = bias
        && b != weight.0
    {
        return Err(Error::Shape(format!(
            "linear bias has {b} values, the weight has {} output rows",
            weight.0
        )));
    }
    Ok(())
}

/// `y = x Wᵀ + b` over borrowed parameters: `x` `[N, in]`, `weight` `[out, in]`, `bias`
/// `[out]`; returns `[N, out]`.
///
/// ```
/// use ndarray::array;
/// let w = array![[1.0f32, 0.0], [0.0, 2.0], [1.0, 1.0]]; // [out = 3, in = 2]
/// let y = rnnkit::nn::linear::forward(array![[1.0, 2.0]].view(), w.view(), None).unwrap();
/// assert_eq!(y, array![[1.0, 4.0, 3.0]]);
/// ```
pub fn forward(
    x: ArrayView2<'_, f32>,
    weight: ArrayView2<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
) -> Result<Array2<f32>> {
    forward_into(x, weight, bias, Vec::new())
}

/// [`forward`] into `buffer` (its contents are discarded; its capacity is reused), for callers
/// that keep a large output's memory between calls.
///
/// ```
/// use ndarray::array;
/// let y = rnnkit::nn::linear::forward_into(
///     array![[1.0f32, 1.0]].view(),
///     array![[1.0f32, 2.0]].view(),
///     Some(array![0.5f32].view()),
///     vec![9.0; 100],
/// )
/// .unwrap();
/// assert_eq!(y, array![[3.5]]);
/// ```
pub fn forward_into(
    x: ArrayView2<'_, f32>,
    weight: ArrayView2<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    buffer: Vec<f32>,
) -> Result<Array2<f32>> {
    forward_into_in(x, weight, bias, buffer, Precision::F32)
}

/// [`forward_into`] in `precision`: with [`Precision::Bf16`] the product rounds `x` and the
/// weight to bfloat16 and accumulates in f32 (autocast's `linear`); the bias is added in f32.
///
/// ```
/// use ndarray::array;
/// use rnnkit::Precision;
/// let y = rnnkit::nn::linear::forward_into_in(
///     array![[1.0f32, 1.0]].view(),
///     array![[1.0f32, 2.0]].view(),
///     Some(array![0.5f32].view()),
///     Vec::new(),
///     Precision::Bf16,
/// )
/// .unwrap();
/// assert_eq!(y, array![[3.5]]); // small integers are exact in bfloat16
/// ```
pub fn forward_into_in(
    x: ArrayView2<'_, f32>,
    weight: ArrayView2<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    buffer: Vec<f32>,
    precision: Precision,
) -> Result<Array2<f32>> {
    check(x.dim(), weight.dim(), bias.map(|b| b.len()))?;
    let ((n, k), out) = (x.dim(), weight.nrows());
    let (x, w) = (x.as_standard_layout(), weight.as_standard_layout());
    let x = x.as_slice().expect("standard layout");
    let w = w.as_slice().expect("standard layout");
    // Rows start as the bias and the product is added: one pass over `y` fewer than zeroing
    // it and adding the bias afterwards (`y` is a language model's [T·B, V] logits).
    let mut buf = buffer;
    buf.clear();
    buf.reserve(n * out);
    match bias {
        Some(b) => {
            let b = b.as_standard_layout();
            let b = b.as_slice().expect("standard layout");
            for _ in 0..n {
                buf.extend_from_slice(b);
            }
        }
        None => buf.resize(n * out, 0.0),
    }
    let mut y = Array2::from_shape_vec((n, out), buf).expect("n rows of out"); // [N, out]
    let ys = y.as_slice_mut().expect("fresh");
    let threads = rayon::current_num_threads();
    match precision {
        Precision::F32 => matmul(
            ys,
            out,
            MatRef::row_major(x, n, k),
            MatRef::row_major(w, out, k).t(),
            bias.is_some(),
            threads,
        ),
        Precision::Bf16 => {
            // Wᵀ [in, out] packed once per call: O(out·in) against the product's O(N·out·in).
            let wt = PackedBf16::from_transposed(w, out, k);
            gemm_bf16(ys, out, x, k, n, &wt, bias.is_some(), threads);
        }
    }
    Ok(y)
}

/// Backward of [`forward`]: adds `dyᵀ x` into `dweight` `[out, in]` and the column sums of `dy`
/// into `dbias` `[out]` (when given), and returns `dx = dy W` `[N, in]`.
///
/// With a tied weight, pass the shared gradient buffer as `dweight`: backward adds, so the
/// decoder's and the embedding's contributions sum.
///
/// ```
/// use ndarray::{array, Array2};
/// let w = array![[1.0f32, 2.0]];
/// let mut dw = Array2::zeros((1, 2));
/// let dx = rnnkit::nn::linear::backward(
///     array![[3.0, 4.0]].view(), array![[2.0]].view(), w.view(), &mut dw, None,
/// ).unwrap();
/// assert_eq!((dx, dw), (array![[2.0, 4.0]], array![[6.0, 8.0]]));
/// ```
pub fn backward(
    x: ArrayView2<'_, f32>,
    dy: ArrayView2<'_, f32>,
    weight: ArrayView2<'_, f32>,
    dweight: &mut Array2<f32>,
    dbias: Option<&mut Array1<f32>>,
) -> Result<Array2<f32>> {
    backward_in(x, dy, weight, dweight, dbias, Precision::F32)
}

/// [`backward`] in `precision`: with [`Precision::Bf16`] the two products (`dyᵀ x` and `dy W`)
/// round their operands to bfloat16 and accumulate in f32; the bias gradient stays f32.
///
/// ```
/// use ndarray::{array, Array2};
/// use rnnkit::Precision;
/// let w = array![[1.0f32, 2.0]];
/// let mut dw = Array2::zeros((1, 2));
/// let dx = rnnkit::nn::linear::backward_in(
///     array![[3.0, 4.0]].view(), array![[2.0]].view(), w.view(), &mut dw, None, Precision::Bf16,
/// ).unwrap();
/// assert_eq!((dx, dw), (array![[2.0, 4.0]], array![[6.0, 8.0]]));
/// ```
pub fn backward_in(
    x: ArrayView2<'_, f32>,
    dy: ArrayView2<'_, f32>,
    weight: ArrayView2<'_, f32>,
    dweight: &mut Array2<f32>,
    dbias: Option<&mut Array1<f32>>,
    precision: Precision,
) -> Result<Array2<f32>> {
    check(x.dim(), weight.dim(), dbias.as_ref().map(|b| b.len()))?;
    let ((n, k), out) = (x.dim(), weight.nrows());
    if dy.dim() != (n, out) {
        return Err(Error::Shape(format!(
            "linear upstream gradient is {:?}, expected [{n}, {out}] (rows of the input, rows of the weight)",
            dy.shape()
        )));
    }
    if dweight.dim() != weight.dim() {
        return Err(Error::Shape(format!(
            "linear weight gradient is {:?}, the weight is {:?}",
            dweight.shape(),
            weight.shape()
        )));
    }
    let threads = rayon::current_num_threads();
    let (x, dy, w) = (
        x.as_standard_layout(),
        dy.as_standard_layout(),
        weight.as_standard_layout(),
    );
    let x = x.as_slice().expect("standard layout"); // [N, in]
    let dy = dy.as_slice().expect("standard layout"); // [N, out]
    let w = w.as_slice().expect("standard layout"); // [out, in]
    // dW [out, in] += dyᵀ [out, N] · x [N, in]
    if !dweight.is_standard_layout() {
        *dweight = dweight.as_standard_layout().into_owned();
    }
    let dw = dweight.as_slice_mut().expect("standard layout");
    match precision {
        Precision::F32 => matmul(
            dw,
            k,
            MatRef::row_major(dy, n, out).t(),
            MatRef::row_major(x, n, k),
            true,
            threads,
        ),
        Precision::Bf16 => {
            let xp = PackedBf16::from_row_major(x, k, n, k); // [N, in]
            gemm_bf16_at(dw, k, dy, out, out, &xp, true, threads);
        }
    }
    if let Some(db) = dbias {
        if !db.is_standard_layout() {
            *db = db.as_standard_layout().into_owned();
        }
        add_column_sums(db.as_slice_mut().expect("standard layout"), dy, out);
    }
    // dx [N, in] = dy [N, out] · W [out, in]
    let mut dx = Array2::<f32>::zeros((n, k));
    let dxs = dx.as_slice_mut().expect("fresh");
    match precision {
        Precision::F32 => matmul(
            dxs,
            k,
            MatRef::row_major(dy, n, out),
            MatRef::row_major(w, out, k),
            false,
            threads,
        ),
        Precision::Bf16 => {
            let wp = PackedBf16::from_row_major(w, k, out, k); // [out, in]
            gemm_bf16(dxs, k, dy, out, n, &wp, false, threads);
        }
    }
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::worse;
    use rand::SeedableRng;

    /// `L = Σ y ⊙ r` in f64, for a fixed random `r`.
    fn loss(l: &Linear, x: &Array2<f32>, r: &Array2<f32>) -> f64 {
        let y = l.forward(x.view()).unwrap();
        y.iter().zip(r).map(|(a, b)| *a as f64 * *b as f64).sum()
    }

    fn rand_array(rng: &mut ChaCha8Rng, shape: (usize, usize)) -> Array2<f32> {
        Array2::from_shape_fn(shape, |_| rng.random_range(-1.0f32..1.0))
    }

    /// Central differences of every input and parameter against backward. `L` is linear in each
    /// value, so the difference quotient is exact up to f32 rounding of `y`.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for bias in [true, false] {
            let (n, i, o) = (4, 5, 3);
            let mut l = Linear::new(i, o, bias, &mut rng);
            let mut x = rand_array(&mut rng, (n, i));
            let r = rand_array(&mut rng, (n, o));
            let mut g = l.zeros_like();
            // Start from non-zero gradients: backward must add, not overwrite.
            g.weight.fill(0.5);
            if let Some(b) = &mut g.bias {
                b.fill(0.5);
            }
            let dx = l.backward(x.view(), r.view(), &mut g).unwrap();
            let eps = 1e-2f32;
            let fd = |f: &mut dyn FnMut(f32) -> f64| (f(eps) - f(-eps)) / (2.0 * eps as f64);
            let mut worst = 0.0f64;
            for idx in 0..n * i {
                let (a, b) = (idx / i, idx % i);
                let orig = x[[a, b]];
                let num = fd(&mut |d| {
                    x[[a, b]] = orig + d;
                    let v = loss(&l, &x, &r);
                    x[[a, b]] = orig;
                    v
                });
                worst = worse(worst, (num - dx[[a, b]] as f64).abs());
            }
            for idx in 0..o * i {
                let (a, b) = (idx / i, idx % i);
                let orig = l.weight[[a, b]];
                let num = fd(&mut |d| {
                    l.weight[[a, b]] = orig + d;
                    let v = loss(&l, &x, &r);
                    l.weight[[a, b]] = orig;
                    v
                });
                worst = worse(worst, (num - (g.weight[[a, b]] - 0.5) as f64).abs());
            }
            if bias {
                for a in 0..o {
                    let orig = l.bias.as_ref().unwrap()[a];
                    let num = fd(&mut |d| {
                        l.bias.as_mut().unwrap()[a] = orig + d;
                        let v = loss(&l, &x, &r);
                        l.bias.as_mut().unwrap()[a] = orig;
                        v
                    });
                    let got = g.bias.as_ref().unwrap()[a] - 0.5;
                    worst = worse(worst, (num - got as f64).abs());
                }
            }
            assert!(
                worst < 1e-3,
                "bias {bias}: worst gradient difference {worst}"
            );
        }
    }

    #[test]
    fn forward_matches_naive_and_handles_strided_input() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let l = Linear::new(7, 6, true, &mut rng);
        let xt = rand_array(&mut rng, (7, 9)); // transposed storage: x = xtᵀ [9, 7]
        let x = xt.t();
        let y = l.forward(x).unwrap();
        let b = l.bias.as_ref().unwrap();
        for n in 0..9 {
            for o in 0..6 {
                let want: f64 = b[o] as f64
                    + (0..7)
                        .map(|k| x[[n, k]] as f64 * l.weight[[o, k]] as f64)
                        .sum::<f64>();
                assert!((y[[n, o]] as f64 - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn init_follows_pytorch_bounds_and_seed() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let l = Linear::new(100, 50, true, &mut rng);
        let bound = 0.1 + 1e-7;
        assert!(l.weight.iter().all(|w| w.abs() <= bound));
        assert!(l.weight.iter().any(|w| w.abs() > 0.09));
        assert!(l.bias.as_ref().unwrap().iter().all(|w| w.abs() <= bound));
        let mut rng2 = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(Linear::new(100, 50, true, &mut rng2), l);
    }

    #[test]
    fn shape_errors_are_errors() {
        let l = Linear::zeros(3, 2, true);
        let e = l.forward(Array2::zeros((4, 5)).view()).unwrap_err();
        assert!(e.to_string().contains("5 features"), "{e}");
        let mut g = Linear::zeros(3, 2, false);
        let x = Array2::zeros((4, 3));
        assert!(
            l.backward(x.view(), Array2::zeros((4, 2)).view(), &mut g)
                .is_err()
        );
        let mut g = l.zeros_like();
        assert!(
            l.backward(x.view(), Array2::zeros((3, 2)).view(), &mut g)
                .is_err()
        );
    }

    /// The bf16 paths compute the products of the bfloat16-rounded operands, accumulated in
    /// f32: against the same products in f64 they agree to f32 accumulation error, while the
    /// f32 path differs from them by bfloat16 rounding.
    #[test]
    fn bf16_products_are_rounded_operands_accumulated_in_f32() {
        use crate::kernels::bf16::round_bf16;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (n, i, o) = (37, 45, 53); // ragged against the kernels' blocks
        let x = rand_array(&mut rng, (n, i));
        let w = rand_array(&mut rng, (o, i));
        let b = Array1::from_shape_fn(o, |_| rng.random_range(-1.0f32..1.0));
        let dy = rand_array(&mut rng, (n, o));
        let r = |a: &Array2<f32>| a.mapv(round_bf16);
        let (xr, wr, dyr) = (r(&x), r(&w), r(&dy));
        // f64 references of y = x Wᵀ + b, dW = dyᵀ x, dx = dy W over rounded operands.
        let dot = |a: &[f32], c: &[f32]| -> (f64, f64) {
            a.iter().zip(c).fold((0.0, 0.0), |(s, m), (p, q)| {
                let v = *p as f64 * *q as f64;
                (s + v, m + v.abs())
            })
        };
        let check = |got: f32, (want, mag): (f64, f64), what: &str| {
            assert!(
                (got as f64 - want).abs() <= 1e-6 * mag + 1e-7,
                "{what}: {got} vs {want}"
            );
        };
        let y =
            forward_into_in(x.view(), w.view(), Some(b.view()), vec![], Precision::Bf16).unwrap();
        for p in 0..n {
            for q in 0..o {
                let (s, m) = dot(xr.row(p).as_slice().unwrap(), wr.row(q).as_slice().unwrap());
                check(y[[p, q]], (s + b[q] as f64, m + b[q].abs() as f64), "y");
            }
        }
        let mut dw = Array2::from_elem((o, i), 0.25f32);
        let mut db = Array1::zeros(o);
        let dx = backward_in(
            x.view(),
            dy.view(),
            w.view(),
            &mut dw,
            Some(&mut db),
            Precision::Bf16,
        )
        .unwrap();
        for q in 0..o {
            for c in 0..i {
                let (xc, dyq) = (xr.column(c).to_vec(), dyr.column(q).to_vec());
                let (s, m) = dot(&dyq, &xc);
                check(dw[[q, c]], (s + 0.25, m + 0.25), "dW accumulates");
            }
            let want: f64 = dy.column(q).iter().map(|v| *v as f64).sum();
            assert!((db[q] as f64 - want).abs() < 1e-4, "db is f32");
        }
        for p in 0..n {
            for c in 0..i {
                let wc = wr.column(c).to_vec();
                check(dx[[p, c]], dot(dyr.row(p).as_slice().unwrap(), &wc), "dx");
            }
        }
        // The f32 path is visibly different: bf16 keeps 8 bits of mantissa.
        let y32 = forward(x.view(), w.view(), Some(b.view())).unwrap();
        let worst = (&y32 - &y).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(worst > 1e-4, "bf16 rounding should show: {worst}");
    }
}
