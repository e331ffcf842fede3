//! Dropout as RNN practitioners use it, seeded: standard, variational (locked), embedding
//! (whole words) and weight drop (DropConnect, AWD-LSTM).
//!
//! Every kind draws a mask `m` whose entries are `0` (dropped, probability `p`) or `1/(1 − p)`
//! (kept; "inverted" scaling, so evaluation needs no rescaling), then multiplies:
//!
//! ```text
//! standard     y = x ⊙ m                    m same shape as x          dx = dy ⊙ m
//! locked       y[t,b,f] = x[t,b,f]·m[b,f]    m [B, F], shared over T    dx[t,b,f] = dy[t,b,f]·m[b,f]
//! embedding    Ẽ[v,:] = E[v,:]·m[v]          m [V], whole rows          dE[v,:] += dẼ[v,:]·m[v]
//! weight drop  W̃ = W ⊙ m                     m [rows, cols]             dW += dW̃ ⊙ m
//! ```
//!
//! Masks are drawn from the `rng` given (`&mut dyn RngCore`), one uniform draw per mask entry in
//! row-major order (an entry is dropped when the draw is `< p`), so a seeded generator gives the
//! same masks on every run.
//!
//! **Evaluation.** Every `forward` takes `train: bool`: with `train = false` (or `p = 0`) it is
//! the identity and returns no mask, and backward with no mask is the identity too. For
//! embedding dropout and weight drop, evaluation simply uses the weight itself.

use crate::error::{Error, Result};
use ndarray::{
    Array, Array1, Array2, Array3, ArrayView, ArrayView1, ArrayView2, ArrayView3, Axis, Dimension,
    ShapeBuilder, Zip,
};
use rand::{Rng, RngCore};

/// Checks `0 ≤ p < 1`.
fn check_p(p: f32, what: &str) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what} probability must be in [0, 1), got {p}"
        )))
    }
}

/// Fills `out` with `0` (probability `p`) or `1/(1 − p)`, one draw per entry.
fn fill_mask(out: &mut [f32], p: f32, rng: &mut dyn RngCore) {
    if p == 0.0 {
        out.fill(1.0);
        return;
    }
    let keep = 1.0 / (1.0 - p);
    for m in out {
        *m = if rng.random::<f32>() < p { 0.0 } else { keep };
    }
}

/// A fresh mask array of `shape` (standard layout).
fn mask_array<D: Dimension, Sh: ShapeBuilder<Dim = D>>(
    shape: Sh,
    p: f32,
    rng: &mut dyn RngCore,
) -> Array<f32, D> {
    let mut m = Array::<f32, D>::zeros(shape);
    // Contiguous either way (C or Fortran order as the shape asks); draws go in memory order.
    fill_mask(m.as_slice_memory_order_mut().expect("fresh"), p, rng);
    m
}

/// `x ⊙ mask` for two arrays of one shape: the forward and the backward of standard dropout.
///
/// ```
/// use ndarray::array;
/// let y = rnnkit::nn::dropout::multiply(array![1.0f32, 2.0].view(), array![0.0f32, 2.0].view()).unwrap();
/// assert_eq!(y, array![0.0, 4.0]);
/// ```
pub fn multiply<D: Dimension>(
    x: ArrayView<'_, f32, D>,
    mask: ArrayView<'_, f32, D>,
) -> Result<Array<f32, D>> {
    if x.shape() != mask.shape() {
        return Err(Error::Shape(format!(
            "dropout mask is {:?} but the values are {:?}",
            mask.shape(),
            x.shape()
        )));
    }
    Ok(Zip::from(&x).and(&mask).map_collect(|&a, &m| a * m))
}

/// Standard (element-wise) dropout, inverted scaling: PyTorch `nn.Dropout`.
///
/// ```
/// use ndarray::Array2;
/// use rand::SeedableRng;
/// use rnnkit::nn::dropout::{multiply, Dropout};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let drop = Dropout::new(0.5).unwrap();
/// let x = Array2::<f32>::ones((4, 8));
/// let (y, mask) = drop.forward(x.view(), true, &mut rng);
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// let dx = multiply(Array2::ones((4, 8)).view(), mask.unwrap().view()).unwrap(); // backward
/// assert_eq!(dx, y);
///
/// let (y, mask) = drop.forward(x.view(), false, &mut rng); // evaluation: identity
/// assert!(mask.is_none() && y == x);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`.
    ///
    /// ```
    /// assert!(rnnkit::nn::dropout::Dropout::new(1.0).is_err());
    /// ```
    pub fn new(p: f32) -> Result<Self> {
        check_p(p, "dropout")?;
        Ok(Dropout { p })
    }

    /// The drop probability.
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::dropout::Dropout::new(0.2).unwrap().p(), 0.2);
    /// ```
    pub fn p(&self) -> f32 {
        self.p
    }

    /// A mask of `shape`: each entry `0` with probability `p`, else `1/(1 − p)`.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let m = rnnkit::nn::dropout::Dropout::new(0.0).unwrap().mask((2, 3), &mut rng);
    /// assert!(m.iter().all(|&v| v == 1.0));
    /// ```
    pub fn mask<D: Dimension, Sh: ShapeBuilder<Dim = D>>(
        &self,
        shape: Sh,
        rng: &mut dyn RngCore,
    ) -> Array<f32, D> {
        mask_array(shape, self.p, rng)
    }

    /// `x ⊙ m` with a fresh mask when training with `p > 0`; returns the output and the mask
    /// (for backward: [`multiply`] `dy` by it). Otherwise returns a copy of `x` and no mask.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let x = ndarray::Array1::<f32>::ones(5);
    /// let (_, m) = rnnkit::nn::dropout::Dropout::new(0.0).unwrap().forward(x.view(), true, &mut rng);
    /// assert!(m.is_none());
    /// ```
    pub fn forward<D: Dimension>(
        &self,
        x: ArrayView<'_, f32, D>,
        train: bool,
        rng: &mut dyn RngCore,
    ) -> (Array<f32, D>, Option<Array<f32, D>>) {
        if !train || self.p == 0.0 {
            return (x.to_owned(), None);
        }
        let mask = self.mask(x.raw_dim(), rng);
        let y = multiply(x, mask.view()).expect("mask made to shape");
        (y, Some(mask))
    }
}

/// Variational (locked) dropout (Gal & Ghahramani 2016; AWD-LSTM's `LockedDropout`): one mask
/// per sequence and feature, `[B, F]`, shared by every step of a time-major `[T, B, F]` tensor.
///
/// ```
/// use ndarray::Array3;
/// use rand::SeedableRng;
/// use rnnkit::nn::dropout::LockedDropout;
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let drop = LockedDropout::new(0.5).unwrap();
/// let x = Array3::<f32>::ones((6, 2, 4)); // [T, B, F]
/// let (y, mask) = drop.forward(x.view(), true, &mut rng).unwrap();
/// let mask = mask.unwrap(); // [B, F]
/// for t in 0..6 {
///     assert_eq!(y.index_axis(ndarray::Axis(0), t), mask);
/// }
/// let dx = LockedDropout::backward(Array3::ones((6, 2, 4)).view(), Some(mask.view())).unwrap();
/// assert_eq!(dx, y);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LockedDropout {
    p: f32,
}

impl LockedDropout {
    /// Locked dropout with drop probability `p` in `[0, 1)`.
    ///
    /// ```
    /// assert!(rnnkit::nn::dropout::LockedDropout::new(-0.1).is_err());
    /// ```
    pub fn new(p: f32) -> Result<Self> {
        check_p(p, "locked dropout")?;
        Ok(LockedDropout { p })
    }

    /// The drop probability.
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::dropout::LockedDropout::new(0.3).unwrap().p(), 0.3);
    /// ```
    pub fn p(&self) -> f32 {
        self.p
    }

    /// A `[batch, features]` mask.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let m = rnnkit::nn::dropout::LockedDropout::new(0.5).unwrap().mask(3, 4, &mut rng);
    /// assert_eq!(m.shape(), &[3, 4]);
    /// ```
    pub fn mask(&self, batch: usize, features: usize, rng: &mut dyn RngCore) -> Array2<f32> {
        mask_array((batch, features), self.p, rng)
    }

    /// `x` `[T, B, F]` times a fresh `[B, F]` mask at every step when training with `p > 0`;
    /// returns the output and the mask. Otherwise a copy of `x` and no mask.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let d = rnnkit::nn::dropout::LockedDropout::new(0.5).unwrap();
    /// let x = ndarray::Array3::<f32>::ones((2, 1, 3));
    /// assert!(d.forward(x.view(), false, &mut rng).unwrap().1.is_none());
    /// ```
    pub fn forward(
        &self,
        x: ArrayView3<'_, f32>,
        train: bool,
        rng: &mut dyn RngCore,
    ) -> Result<(Array3<f32>, Option<Array2<f32>>)> {
        if !train || self.p == 0.0 {
            return Ok((x.to_owned(), None));
        }
        let (_, b, f) = x.dim();
        let mask = self.mask(b, f, rng);
        let y = Self::apply(x, mask.view())?;
        Ok((y, Some(mask)))
    }

    /// `x[t, b, f] · mask[b, f]`, `x` `[T, B, F]`, `mask` `[B, F]`.
    ///
    /// ```
    /// use ndarray::{array, Array3};
    /// use rnnkit::nn::dropout::LockedDropout;
    /// let y = LockedDropout::apply(Array3::ones((2, 1, 2)).view(), array![[0.0f32, 2.0]].view()).unwrap();
    /// assert_eq!(y, array![[[0.0, 2.0]], [[0.0, 2.0]]]);
    /// ```
    pub fn apply(x: ArrayView3<'_, f32>, mask: ArrayView2<'_, f32>) -> Result<Array3<f32>> {
        let (_, b, f) = x.dim();
        if mask.dim() != (b, f) {
            return Err(Error::Shape(format!(
                "locked dropout mask is {:?}, expected [{b}, {f}] for values {:?}",
                mask.shape(),
                x.shape()
            )));
        }
        let mut y = x.to_owned();
        for mut step in y.axis_iter_mut(Axis(0)) {
            step *= &mask;
        }
        Ok(y)
    }

    /// Backward: `dx = dy ⊙ mask` at every step (`dy` `[T, B, F]`); no mask means identity.
    ///
    /// ```
    /// use ndarray::Array3;
    /// let dy = Array3::<f32>::ones((2, 1, 2));
    /// let dx = rnnkit::nn::dropout::LockedDropout::backward(dy.view(), None).unwrap();
    /// assert_eq!(dx, dy);
    /// ```
    pub fn backward(
        dy: ArrayView3<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<Array3<f32>> {
        match mask {
            Some(m) => Self::apply(dy, m),
            None => Ok(dy.to_owned()),
        }
    }
}

/// Embedding dropout (Gal & Ghahramani 2016; AWD-LSTM's `embedded_dropout`): drops whole
/// vocabulary rows, so every occurrence of a dropped word in the batch is zero. Mask `[V]`,
/// applied to the weight `[V, D]` and scaled `1/(1 − p)`.
///
/// Two equivalent ways to use it (bit-identical results):
/// - AWD-LSTM's: [`EmbeddingDropout::apply_to_weight`] makes a masked copy of the weight, looked
///   up by an [`crate::nn::Embedding`] over that copy; backward gives the copy's gradient, passed
///   through [`EmbeddingDropout::backward_weight`].
/// - Cheaper for large vocabularies: look up with the real embedding, then
///   [`EmbeddingDropout::scale_rows`] the looked-up rows; in backward, `scale_rows` the upstream
///   gradient the same way before [`crate::nn::Embedding::backward`].
///
/// ```
/// use ndarray::Array2;
/// use rand::SeedableRng;
/// use rnnkit::nn::{dropout::EmbeddingDropout, Embedding};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let emb = Embedding::new(20, 3, None, &mut rng).unwrap();
/// let drop = EmbeddingDropout::new(0.5).unwrap();
/// let mask = drop.mask(20, &mut rng); // [V]
/// let ids = [4, 7, 4];
/// let mut x = emb.forward(&ids).unwrap();
/// EmbeddingDropout::scale_rows(&mut x, &ids, mask.view()).unwrap();
/// assert_eq!(x.row(0), x.row(2)); // the same word, the same fate
///
/// let mut dy = Array2::<f32>::ones((3, 3));
/// EmbeddingDropout::scale_rows(&mut dy, &ids, mask.view()).unwrap();
/// let mut grad = Array2::zeros((20, 3));
/// emb.backward(&ids, dy.view(), &mut grad).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmbeddingDropout {
    p: f32,
}

impl EmbeddingDropout {
    /// Embedding dropout with drop probability `p` in `[0, 1)` (AWD-LSTM uses 0.1).
    ///
    /// ```
    /// assert!(rnnkit::nn::dropout::EmbeddingDropout::new(0.1).is_ok());
    /// ```
    pub fn new(p: f32) -> Result<Self> {
        check_p(p, "embedding dropout")?;
        Ok(EmbeddingDropout { p })
    }

    /// The drop probability.
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::dropout::EmbeddingDropout::new(0.1).unwrap().p(), 0.1);
    /// ```
    pub fn p(&self) -> f32 {
        self.p
    }

    /// A `[num_embeddings]` mask: one entry per vocabulary row.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let m = rnnkit::nn::dropout::EmbeddingDropout::new(0.5).unwrap().mask(10, &mut rng);
    /// assert!(m.iter().all(|&v| v == 0.0 || v == 2.0));
    /// ```
    pub fn mask(&self, num_embeddings: usize, rng: &mut dyn RngCore) -> Array1<f32> {
        mask_array(num_embeddings, self.p, rng)
    }

    /// Training with `p > 0`: a masked copy of `weight` `[V, D]` and its mask. Otherwise a copy
    /// of the weight and no mask (at evaluation, use the weight itself).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let d = rnnkit::nn::dropout::EmbeddingDropout::new(0.5).unwrap();
    /// let w = ndarray::Array2::<f32>::ones((6, 2));
    /// let (masked, mask) = d.forward(w.view(), true, &mut rng).unwrap();
    /// let mask = mask.unwrap();
    /// assert!((0..6).all(|v| masked.row(v).iter().all(|&x| x == mask[v])));
    /// ```
    pub fn forward(
        &self,
        weight: ArrayView2<'_, f32>,
        train: bool,
        rng: &mut dyn RngCore,
    ) -> Result<(Array2<f32>, Option<Array1<f32>>)> {
        if !train || self.p == 0.0 {
            return Ok((weight.to_owned(), None));
        }
        let mask = self.mask(weight.nrows(), rng);
        let masked = Self::apply_to_weight(weight, mask.view())?;
        Ok((masked, Some(mask)))
    }

    /// `weight[v, :] · mask[v]`: the masked copy of `weight` `[V, D]`.
    ///
    /// ```
    /// use ndarray::array;
    /// use rnnkit::nn::dropout::EmbeddingDropout;
    /// let w = EmbeddingDropout::apply_to_weight(array![[1.0f32, 2.0], [3.0, 4.0]].view(), array![0.0f32, 2.0].view()).unwrap();
    /// assert_eq!(w, array![[0.0, 0.0], [6.0, 8.0]]);
    /// ```
    pub fn apply_to_weight(
        weight: ArrayView2<'_, f32>,
        mask: ArrayView1<'_, f32>,
    ) -> Result<Array2<f32>> {
        check_rows(weight.nrows(), mask.len())?;
        let mut w = weight.to_owned();
        for (mut row, &m) in w.rows_mut().into_iter().zip(mask) {
            row *= m;
        }
        Ok(w)
    }

    /// Backward of [`EmbeddingDropout::apply_to_weight`]: adds `dmasked[v, :] · mask[v]` into
    /// `grad` `[V, D]`.
    ///
    /// ```
    /// use ndarray::{array, Array2};
    /// use rnnkit::nn::dropout::EmbeddingDropout;
    /// let mut g = Array2::zeros((2, 1));
    /// EmbeddingDropout::backward_weight(array![[1.0f32], [1.0]].view(), array![0.0f32, 2.0].view(), &mut g).unwrap();
    /// assert_eq!(g, array![[0.0], [2.0]]);
    /// ```
    pub fn backward_weight(
        dmasked: ArrayView2<'_, f32>,
        mask: ArrayView1<'_, f32>,
        grad: &mut Array2<f32>,
    ) -> Result<()> {
        check_rows(dmasked.nrows(), mask.len())?;
        if grad.dim() != dmasked.dim() {
            return Err(Error::Shape(format!(
                "embedding gradient buffer is {:?}, the masked weight's gradient is {:?}",
                grad.shape(),
                dmasked.shape()
            )));
        }
        for ((mut g, d), &m) in grad.rows_mut().into_iter().zip(dmasked.rows()).zip(mask) {
            g.scaled_add(m, &d);
        }
        Ok(())
    }

    /// Scales row `n` of `rows` `[N, D]` by `mask[ids[n]]`: applied to looked-up embeddings in
    /// forward, and to their upstream gradient in backward.
    ///
    /// ```
    /// use ndarray::array;
    /// use rnnkit::nn::dropout::EmbeddingDropout;
    /// let mut x = array![[1.0f32], [1.0]];
    /// EmbeddingDropout::scale_rows(&mut x, &[1, 0], array![0.0f32, 2.0].view()).unwrap();
    /// assert_eq!(x, array![[2.0], [0.0]]);
    /// ```
    pub fn scale_rows(
        rows: &mut Array2<f32>,
        ids: &[usize],
        mask: ArrayView1<'_, f32>,
    ) -> Result<()> {
        if rows.nrows() != ids.len() {
            return Err(Error::Shape(format!(
                "{} rows but {} ids",
                rows.nrows(),
                ids.len()
            )));
        }
        if let Some(n) = ids.iter().position(|&id| id >= mask.len()) {
            return Err(Error::Shape(format!(
                "token id {} at position {n} is outside the vocabulary of size {}",
                ids[n],
                mask.len()
            )));
        }
        for (mut row, &id) in rows.rows_mut().into_iter().zip(ids) {
            row *= mask[id];
        }
        Ok(())
    }
}

fn check_rows(rows: usize, mask: usize) -> Result<()> {
    if rows == mask {
        Ok(())
    } else {
        Err(Error::Shape(format!(
            "embedding dropout mask has {mask} entries, the weight has {rows} rows"
        )))
    }
}

/// Weight drop (DropConnect, Wan et al. 2013), as AWD-LSTM applies it to the hidden-to-hidden
/// weights `weight_hh` `[G·H, H]`: a mask over the matrix's elements, drawn once per forward
/// (per batch), shared by every time step.
///
/// Use: draw a mask, run the recurrent stack with `weight_hh` replaced by
/// [`WeightDrop::apply`]'s copy, and after its backward pass the gradient it gives for that copy
/// through [`WeightDrop::backward`] into the real weight's gradient. At evaluation, run with the
/// weight itself.
///
/// ```
/// use ndarray::Array2;
/// use rand::SeedableRng;
/// use rnnkit::nn::dropout::WeightDrop;
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let wd = WeightDrop::new(0.5).unwrap();
/// let w = Array2::<f32>::ones((8, 2)); // weight_hh [G*H, H]
/// let (dropped, mask) = wd.forward(w.view(), true, &mut rng).unwrap();
/// let mask = mask.unwrap();
/// assert_eq!(dropped, mask); // w is all ones
///
/// let ddropped = Array2::<f32>::ones((8, 2)); // what the stack's backward gave for `dropped`
/// let mut grad = Array2::zeros((8, 2));
/// WeightDrop::backward(ddropped.view(), mask.view(), &mut grad).unwrap();
/// assert_eq!(grad, mask);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightDrop {
    p: f32,
}

impl WeightDrop {
    /// Weight drop with drop probability `p` in `[0, 1)` (AWD-LSTM uses 0.5).
    ///
    /// ```
    /// assert!(rnnkit::nn::dropout::WeightDrop::new(0.5).is_ok());
    /// ```
    pub fn new(p: f32) -> Result<Self> {
        check_p(p, "weight drop")?;
        Ok(WeightDrop { p })
    }

    /// The drop probability.
    ///
    /// ```
    /// assert_eq!(rnnkit::nn::dropout::WeightDrop::new(0.5).unwrap().p(), 0.5);
    /// ```
    pub fn p(&self) -> f32 {
        self.p
    }

    /// A `[rows, cols]` element mask.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let m = rnnkit::nn::dropout::WeightDrop::new(0.5).unwrap().mask(4, 3, &mut rng);
    /// assert_eq!(m.shape(), &[4, 3]);
    /// ```
    pub fn mask(&self, rows: usize, cols: usize, rng: &mut dyn RngCore) -> Array2<f32> {
        mask_array((rows, cols), self.p, rng)
    }

    /// Training with `p > 0`: the dropped copy of `weight` and its mask. Otherwise a copy of the
    /// weight and no mask.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let w = ndarray::Array2::<f32>::ones((2, 2));
    /// let (same, m) = rnnkit::nn::dropout::WeightDrop::new(0.5).unwrap().forward(w.view(), false, &mut rng).unwrap();
    /// assert!(m.is_none() && same == w);
    /// ```
    pub fn forward(
        &self,
        weight: ArrayView2<'_, f32>,
        train: bool,
        rng: &mut dyn RngCore,
    ) -> Result<(Array2<f32>, Option<Array2<f32>>)> {
        if !train || self.p == 0.0 {
            return Ok((weight.to_owned(), None));
        }
        let (r, c) = weight.dim();
        let mask = self.mask(r, c, rng);
        let dropped = Self::apply(weight, mask.view())?;
        Ok((dropped, Some(mask)))
    }

    /// `weight ⊙ mask`: a dropped copy of the weight.
    ///
    /// ```
    /// use ndarray::array;
    /// let w = rnnkit::nn::dropout::WeightDrop::apply(array![[1.0f32, 2.0]].view(), array![[2.0f32, 0.0]].view()).unwrap();
    /// assert_eq!(w, array![[2.0, 0.0]]);
    /// ```
    pub fn apply(weight: ArrayView2<'_, f32>, mask: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        multiply(weight, mask)
    }

    /// Backward: adds `ddropped ⊙ mask` into `grad` (the real weight's gradient, same shape).
    ///
    /// ```
    /// use ndarray::{array, Array2};
    /// let mut g = Array2::from_elem((1, 2), 1.0f32);
    /// rnnkit::nn::dropout::WeightDrop::backward(array![[3.0f32, 3.0]].view(), array![[2.0f32, 0.0]].view(), &mut g).unwrap();
    /// assert_eq!(g, array![[7.0, 1.0]]);
    /// ```
    pub fn backward(
        ddropped: ArrayView2<'_, f32>,
        mask: ArrayView2<'_, f32>,
        grad: &mut Array2<f32>,
    ) -> Result<()> {
        if ddropped.dim() != mask.dim() || grad.dim() != mask.dim() {
            return Err(Error::Shape(format!(
                "weight drop: gradient {:?}, mask {:?} and gradient buffer {:?} must have one shape",
                ddropped.shape(),
                mask.shape(),
                grad.shape()
            )));
        }
        Zip::from(grad)
            .and(&ddropped)
            .and(&mask)
            .for_each(|g, &d, &m| *g += d * m);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn keep_fraction(m: &[f32]) -> f64 {
        m.iter().filter(|&&v| v != 0.0).count() as f64 / m.len() as f64
    }

    #[test]
    fn masks_keep_the_expected_fraction_with_inverted_scale() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for p in [0.1f32, 0.3, 0.5, 0.8] {
            let m = Dropout::new(p).unwrap().mask(100_000, &mut rng);
            let s = m.as_slice().unwrap();
            // Binomial sd ≤ 0.0016 at n = 1e5; 0.01 is > 6 sd.
            assert!((keep_fraction(s) - (1.0 - p) as f64).abs() < 0.01, "p {p}");
            let keep = 1.0 / (1.0 - p);
            assert!(s.iter().all(|&v| v == 0.0 || v == keep));
            // Inverted scaling keeps the mean near 1.
            let mean = s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
            assert!((mean - 1.0).abs() < 0.05, "p {p}: mean {mean}");
        }
        let w = WeightDrop::new(0.5).unwrap().mask(300, 300, &mut rng);
        assert!((keep_fraction(w.as_slice().unwrap()) - 0.5).abs() < 0.01);
        let e = EmbeddingDropout::new(0.2).unwrap().mask(50_000, &mut rng);
        assert!((keep_fraction(e.as_slice().unwrap()) - 0.8).abs() < 0.01);
    }

    #[test]
    fn seeded_masks_repeat_and_differ_by_seed() {
        let d = Dropout::new(0.5).unwrap();
        let a = d.mask((10, 10), &mut ChaCha8Rng::seed_from_u64(1));
        let b = d.mask((10, 10), &mut ChaCha8Rng::seed_from_u64(1));
        let c = d.mask((10, 10), &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn standard_dropout_forward_backward_and_eval() {
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let d = Dropout::new(0.4).unwrap();
        let x = Array2::from_shape_fn((5, 7), |(i, j)| (i * 7 + j) as f32 - 10.0);
        let (y, m) = d.forward(x.view(), true, &mut rng);
        let m = m.unwrap();
        for ((&yv, &xv), &mv) in y.iter().zip(&x).zip(&m) {
            assert_eq!(yv, xv * mv);
        }
        // Backward of a linear map y = x ⊙ m is dy ⊙ m: check with L = Σ y ⊙ r.
        let r = Array2::from_shape_fn((5, 7), |(i, j)| ((i + 2 * j) % 5) as f32 - 2.0);
        let dx = multiply(r.view(), m.view()).unwrap();
        let eps = 0.5f32;
        for (idx, &g) in dx.iter().enumerate() {
            let (i, j) = (idx / 7, idx % 7);
            let loss = |xv: f32| -> f64 {
                let mut xx = x.clone();
                xx[[i, j]] = xv;
                let y = multiply(xx.view(), m.view()).unwrap();
                y.iter().zip(&r).map(|(a, b)| (*a * *b) as f64).sum()
            };
            let num = (loss(x[[i, j]] + eps) - loss(x[[i, j]] - eps)) / (2.0 * eps as f64);
            assert!((num - g as f64).abs() < 1e-4);
        }
        let (e, none) = d.forward(x.view(), false, &mut rng);
        assert!(none.is_none());
        assert_eq!(e, x);
        assert!(multiply(x.view(), m.t()).is_err());
        assert!(Dropout::new(f32::NAN).is_err());
    }

    #[test]
    fn locked_mask_is_identical_across_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let d = LockedDropout::new(0.5).unwrap();
        let (t, b, f) = (7, 3, 16);
        let x = Array3::from_shape_fn((t, b, f), |(s, i, j)| 1.0 + (s * 100 + i * 10 + j) as f32);
        let (y, m) = d.forward(x.view(), true, &mut rng).unwrap();
        let m = m.unwrap();
        assert_eq!(m.dim(), (b, f));
        assert!(m.iter().any(|&v| v == 0.0) && m.iter().any(|&v| v == 2.0));
        for s in 0..t {
            for i in 0..b {
                for j in 0..f {
                    assert_eq!(y[[s, i, j]], x[[s, i, j]] * m[[i, j]]);
                    // Zero at a (b, f) at one step means zero at every step.
                    assert_eq!(y[[s, i, j]] == 0.0, y[[0, i, j]] == 0.0);
                }
            }
        }
        // Backward is the same broadcast multiply; FD on L = Σ y ⊙ r (linear: exact).
        let r = Array3::from_shape_fn((t, b, f), |(s, i, j)| ((s + i + j) % 3) as f32 - 1.0);
        let dx = LockedDropout::backward(r.view(), Some(m.view())).unwrap();
        let loss = |xx: &Array3<f32>| -> f64 {
            let y = LockedDropout::apply(xx.view(), m.view()).unwrap();
            y.iter().zip(&r).map(|(a, b)| (*a * *b) as f64).sum()
        };
        for (s, i, j) in [(0, 0, 0), (3, 2, 5), (6, 1, 15), (2, 0, 9)] {
            let mut up = x.clone();
            up[[s, i, j]] += 0.5;
            let mut down = x.clone();
            down[[s, i, j]] -= 0.5;
            let num = (loss(&up) - loss(&down)) / 1.0;
            assert!((num - dx[[s, i, j]] as f64).abs() < 1e-3);
        }
        let (same, none) = d.forward(x.view(), false, &mut rng).unwrap();
        assert!(none.is_none() && same == x);
        assert!(LockedDropout::apply(x.view(), Array2::zeros((f, b)).view()).is_err());
    }

    #[test]
    fn embedding_dropout_drops_whole_rows_both_ways_alike() {
        let mut rng = ChaCha8Rng::seed_from_u64(24);
        let emb =
            crate::nn::Embedding::new(30, 5, Some(0), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let d = EmbeddingDropout::new(0.5).unwrap();
        let (masked, mask) = d.forward(emb.weight.view(), true, &mut rng).unwrap();
        let mask = mask.unwrap();
        for v in 0..30 {
            let row = masked.row(v);
            if mask[v] == 0.0 {
                assert!(row.iter().all(|&x| x == 0.0));
            } else {
                assert_eq!(mask[v], 2.0);
                assert_eq!(row, emb.weight.row(v).mapv(|x| x * 2.0));
            }
        }
        // Route 1: embedding over the masked copy. Route 2: scale the looked-up rows.
        let ids = [3, 0, 17, 3, 29, 8];
        let via_copy = crate::nn::Embedding::from_weight(masked.clone(), Some(0))
            .unwrap()
            .forward(&ids)
            .unwrap();
        let mut via_rows = emb.forward(&ids).unwrap();
        EmbeddingDropout::scale_rows(&mut via_rows, &ids, mask.view()).unwrap();
        assert_eq!(via_copy, via_rows);
        // Backward, both routes, with non-zero starting gradients (both add).
        let dy = Array2::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as f32 * 0.1 - 1.0);
        let mut dmasked = Array2::zeros((30, 5));
        emb.backward(&ids, dy.view(), &mut dmasked).unwrap();
        let mut g1 = Array2::from_elem((30, 5), 0.5f32);
        EmbeddingDropout::backward_weight(dmasked.view(), mask.view(), &mut g1).unwrap();
        let mut dy2 = dy.clone();
        EmbeddingDropout::scale_rows(&mut dy2, &ids, mask.view()).unwrap();
        let mut g2 = Array2::from_elem((30, 5), 0.5f32);
        emb.backward(&ids, dy2.view(), &mut g2).unwrap();
        assert_eq!(g1, g2);
        // Finite differences of L = Σ lookup(E ⊙ m) ⊙ dy (linear in E).
        let loss = |e: &Array2<f32>| -> f64 {
            let w = EmbeddingDropout::apply_to_weight(e.view(), mask.view()).unwrap();
            let y = crate::nn::Embedding::from_weight(w, Some(0))
                .unwrap()
                .forward(&ids)
                .unwrap();
            y.iter().zip(&dy).map(|(a, b)| (*a * *b) as f64).sum()
        };
        for (v, j) in [(3, 0), (17, 4), (29, 2), (8, 1), (5, 3)] {
            let mut up = emb.weight.clone();
            up[[v, j]] += 0.25;
            let mut down = emb.weight.clone();
            down[[v, j]] -= 0.25;
            let num = (loss(&up) - loss(&down)) / 0.5;
            assert!((num - (g2[[v, j]] - 0.5) as f64).abs() < 1e-4, "[{v}, {j}]");
        }
        assert!(
            EmbeddingDropout::scale_rows(&mut via_rows, &[1, 2, 3, 4, 5, 30], mask.view()).is_err()
        );
        assert!(
            EmbeddingDropout::apply_to_weight(emb.weight.view(), mask.slice(ndarray::s![..5]))
                .is_err()
        );
    }

    #[test]
    fn weight_drop_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(25);
        let wd = WeightDrop::new(0.3).unwrap();
        let w = Array2::from_shape_fn((8, 3), |(i, j)| (i * 3 + j) as f32 * 0.1 - 1.0);
        let (dropped, mask) = wd.forward(w.view(), true, &mut rng).unwrap();
        let mask = mask.unwrap();
        assert!(mask.iter().any(|&m| m == 0.0));
        let r = Array2::from_shape_fn((8, 3), |(i, j)| ((i * j) % 4) as f32 - 1.5);
        let loss = |w: &Array2<f32>| -> f64 {
            let d = WeightDrop::apply(w.view(), mask.view()).unwrap();
            d.iter().zip(&r).map(|(a, b)| (*a * *b) as f64).sum()
        };
        assert_eq!(dropped, WeightDrop::apply(w.view(), mask.view()).unwrap());
        let mut g = Array2::from_elem((8, 3), 1.0f32);
        WeightDrop::backward(r.view(), mask.view(), &mut g).unwrap();
        for i in 0..8 {
            for j in 0..3 {
                let mut up = w.clone();
                up[[i, j]] += 0.25;
                let mut down = w.clone();
                down[[i, j]] -= 0.25;
                let num = (loss(&up) - loss(&down)) / 0.5;
                assert!((num - (g[[i, j]] - 1.0) as f64).abs() < 1e-4);
                if mask[[i, j]] == 0.0 {
                    assert_eq!(g[[i, j]], 1.0); // dropped weights get no gradient
                }
            }
        }
        let mut bad = Array2::zeros((3, 8));
        assert!(WeightDrop::backward(r.view(), mask.view(), &mut bad).is_err());
    }
}
