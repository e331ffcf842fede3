//! Token embedding (PyTorch `torch.nn.Embedding`): a lookup table from token ids to vectors.
//!
//! Forward, for ids `x` `[N]` and weight `E` `[V, D]` (`V` = `num_embeddings`, `D` =
//! `embedding_dim`):
//!
//! ```text
//! y[n, :] = E[x[n], :]                         [N, D]
//! ```
//!
//! Backward, given `dy` `[N, D]` (a scatter-add: an id seen twice gets both rows):
//!
//! ```text
//! dE[x[n], :] += dy[n, :]   for every n with x[n] ≠ padding_idx
//! ```
//!
//! The padding row receives no gradient, so it keeps its value (PyTorch initializes it to zeros,
//! and so does [`Embedding::new`]); forward returns whatever the row holds.
//!
//! # Weight tying
//! A language model's decoder (`decoder.weight`, `[V, D]`) can share the embedding's weight
//! (Press & Wolf 2017; Inan et al. 2017): compute the logits with
//! [`crate::nn::linear::forward`] over `embedding.weight`, and in backward pass the embedding's
//! gradient buffer as the decoder's `dweight` to [`crate::nn::linear::backward`]; both
//! backwards add, so the buffer ends up with the sum of the two contributions, which is the
//! gradient of the shared tensor. The hidden size feeding the decoder must then equal `D`.
//!
//! ```
//! use ndarray::{Array1, Array2};
//! use rand::SeedableRng;
//! use rnnkit::nn::{linear, Embedding};
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let emb = Embedding::new(10, 4, None, &mut rng).unwrap();
//! let dec_bias = Array1::<f32>::zeros(10);
//! let ids = [3, 1, 4];
//! let x = emb.forward(&ids).unwrap(); // [3, 4] (the recurrent stack would sit here)
//! let logits = linear::forward(x.view(), emb.weight().view(), Some(dec_bias.view())).unwrap();
//! assert_eq!(logits.shape(), &[3, 10]);
//!
//! let dlogits = Array2::<f32>::ones((3, 10));
//! let mut dweight = Array2::zeros((10, 4)); // one buffer for the tied weight
//! let mut dbias = Array1::zeros(10);
//! let dx = linear::backward(x.view(), dlogits.view(), emb.weight().view(), &mut dweight, Some(&mut dbias)).unwrap();
//! emb.backward(&ids, dx.view(), &mut dweight).unwrap(); // adds the embedding's part
//! ```

use crate::error::{Error, Result};
use crate::module::{Module, TensorMut, TensorRef, join};
use crate::nn::linear::{tensor_mut, tensor_ref};
use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// An embedding table, `weight` `[num_embeddings, embedding_dim]`, with an optional padding id.
///
/// ```
/// use ndarray::Array2;
/// use rand::SeedableRng;
/// use rnnkit::nn::Embedding;
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let emb = Embedding::new(5, 3, Some(0), &mut rng).unwrap();
/// let y = emb.forward(&[2, 0, 2]).unwrap(); // [3, 3]
/// assert_eq!(y.row(0), y.row(2));
/// assert!(y.row(1).iter().all(|&v| v == 0.0)); // the padding row
///
/// let mut grad = Array2::zeros((5, 3));
/// emb.backward(&[2, 0, 2], Array2::ones((3, 3)).view(), &mut grad).unwrap();
/// assert_eq!(grad[[2, 0]], 2.0); // id 2 seen twice
/// assert_eq!(grad[[0, 0]], 0.0); // padding gets no gradient
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`. Keep it in standard layout (constructors do): the
    /// parameter visitor hands out its values as one slice.
    pub weight: Array2<f32>,
    /// The id whose row gets no gradient (PyTorch `padding_idx`), if any.
    pub padding_idx: Option<usize>,
}

impl Module for Embedding {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        f(&join(prefix, "weight"), tensor_ref(&self.weight));
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        f(&join(prefix, "weight"), tensor_mut(&mut self.weight));
    }
}

impl Embedding {
    /// A table with PyTorch's initialization: N(0, 1) entries, the padding row zero.
    ///
    /// Fails if `padding_idx` is not below `num_embeddings`.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// assert!(rnnkit::nn::Embedding::new(4, 2, Some(4), &mut rng).is_err());
    /// ```
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self> {
        super::check_matrix_size("embedding table", num_embeddings, embedding_dim)?;
        let weight = Array2::from_shape_fn((num_embeddings, embedding_dim), |_| normal(rng));
        let mut emb = Embedding::from_weight(weight, padding_idx)?;
        if let Some(p) = padding_idx {
            emb.weight.row_mut(p).fill(0.0);
        }
        Ok(emb)
    }

    /// A table over a given weight (e.g. loaded from a file), kept as is, padding row included.
    ///
    /// ```
    /// use ndarray::Array2;
    /// let emb = rnnkit::nn::Embedding::from_weight(Array2::ones((4, 2)), Some(1)).unwrap();
    /// assert_eq!(emb.forward(&[1]).unwrap()[[0, 0]], 1.0);
    /// ```
    pub fn from_weight(weight: Array2<f32>, padding_idx: Option<usize>) -> Result<Self> {
        if let Some(p) = padding_idx
            && p >= weight.nrows()
        {
            return Err(Error::Config(format!(
                "padding_idx {p} is outside the vocabulary of {} embeddings",
                weight.nrows()
            )));
        }
        // The optimizer updates the table as a flat slice: any memory layout in, standard out.
        Ok(Embedding {
            weight: crate::nn::linear::standard(weight),
            padding_idx,
        })
    }

    /// The table `[num_embeddings, embedding_dim]`.
    pub fn weight(&self) -> &Array2<f32> {
        &self.weight
    }

    /// The table's values, to change in place (its shape and layout stay).
    pub fn weight_mut(&mut self) -> ndarray::ArrayViewMut2<'_, f32> {
        self.weight.view_mut()
    }

    /// The id whose row gets no gradient, if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }

    /// `V`, the vocabulary size.
    ///
    /// ```
    /// let emb = rnnkit::nn::Embedding::from_weight(ndarray::Array2::zeros((7, 2)), None).unwrap();
    /// assert_eq!(emb.num_embeddings(), 7);
    /// ```
    pub fn num_embeddings(&self) -> usize {
        self.weight.nrows()
    }

    /// `D`, the size of each vector.
    ///
    /// ```
    /// let emb = rnnkit::nn::Embedding::from_weight(ndarray::Array2::zeros((7, 2)), None).unwrap();
    /// assert_eq!(emb.embedding_dim(), 2);
    /// ```
    pub fn embedding_dim(&self) -> usize {
        self.weight.ncols()
    }

    /// Looks up `ids` `[N]`: returns `[N, D]`. An id outside the vocabulary is an error naming it.
    ///
    /// A time-major batch `[T, B]` of ids, flattened row-major, gives `[T·B, D]`, which reshapes
    /// to `[T, B, D]` for the recurrent stack.
    ///
    /// ```
    /// let emb = rnnkit::nn::Embedding::from_weight(ndarray::Array2::zeros((3, 2)), None).unwrap();
    /// let e = emb.forward(&[0, 5]).unwrap_err();
    /// assert!(e.to_string().contains("token id 5"));
    /// ```
    pub fn forward(&self, ids: &[usize]) -> Result<Array2<f32>> {
        self.check_ids(ids)?;
        let d = self.embedding_dim();
        let mut y = Array2::<f32>::zeros((ids.len(), d)); // [N, D]
        for (mut row, &id) in y.rows_mut().into_iter().zip(ids) {
            row.assign(&self.weight.row(id));
        }
        Ok(y)
    }

    /// Backward of [`Embedding::forward`]: adds `dy[n, :]` `[N, D]` into row `ids[n]` of `grad`
    /// `[V, D]`, skipping the padding id.
    ///
    /// ```
    /// use ndarray::{array, Array2};
    /// let emb = rnnkit::nn::Embedding::from_weight(Array2::zeros((3, 1)), None).unwrap();
    /// let mut g = Array2::zeros((3, 1));
    /// emb.backward(&[2, 2], array![[1.0], [2.0]].view(), &mut g).unwrap();
    /// assert_eq!(g, array![[0.0], [0.0], [3.0]]);
    /// ```
    pub fn backward(
        &self,
        ids: &[usize],
        dy: ArrayView2<'_, f32>,
        grad: &mut Array2<f32>,
    ) -> Result<()> {
        self.check_ids(ids)?;
        let d = self.embedding_dim();
        if dy.dim() != (ids.len(), d) {
            return Err(Error::Shape(format!(
                "embedding upstream gradient is {:?}, expected [{}, {d}] (one row per id)",
                dy.shape(),
                ids.len()
            )));
        }
        if grad.dim() != self.weight.dim() {
            return Err(Error::Shape(format!(
                "embedding gradient buffer is {:?}, the weight is {:?}",
                grad.shape(),
                self.weight.shape()
            )));
        }
        for (row, &id) in dy.rows().into_iter().zip(ids) {
            if Some(id) == self.padding_idx {
                continue;
            }
            let mut g = grad.row_mut(id);
            g += &row;
        }
        Ok(())
    }

    fn check_ids(&self, ids: &[usize]) -> Result<()> {
        let v = self.num_embeddings();
        match ids.iter().position(|&id| id >= v) {
            Some(n) => Err(Error::Shape(format!(
                "token id {} at position {n} is outside the vocabulary of size {v}",
                ids[n]
            ))),
            None => Ok(()),
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::worse;
    use rand::SeedableRng;

    #[test]
    fn gradient_matches_finite_differences_and_skips_padding() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut emb = Embedding::new(6, 3, Some(2), &mut rng).unwrap();
        // A non-zero padding row: forward returns it, backward still gives it nothing.
        emb.weight.row_mut(2).fill(0.75);
        let ids = [1, 2, 5, 1, 2, 0];
        let r = Array2::from_shape_fn((ids.len(), 3), |_| rng.random_range(-1.0f32..1.0));
        let y = emb.forward(&ids).unwrap();
        assert!(y.row(1).iter().all(|&v| v == 0.75));
        let mut grad = Array2::from_elem((6, 3), 0.25f32); // backward adds
        emb.backward(&ids, r.view(), &mut grad).unwrap();
        assert!(
            grad.row(2).iter().all(|&v| v == 0.25),
            "padding row got gradient"
        );
        let loss = |e: &Embedding| -> f64 {
            let y = e.forward(&ids).unwrap();
            y.iter().zip(&r).map(|(a, b)| *a as f64 * *b as f64).sum()
        };
        let eps = 1e-2f32;
        let mut worst = 0.0f64;
        for v in 0..6 {
            for d in 0..3 {
                let orig = emb.weight[[v, d]];
                emb.weight[[v, d]] = orig + eps;
                let up = loss(&emb);
                emb.weight[[v, d]] = orig - eps;
                let down = loss(&emb);
                emb.weight[[v, d]] = orig;
                let num = if v == 2 {
                    0.0
                } else {
                    (up - down) / (2.0 * eps as f64)
                };
                worst = worse(worst, (num - (grad[[v, d]] - 0.25) as f64).abs());
            }
        }
        assert!(worst < 1e-4, "worst gradient difference {worst}");
        // Rows never looked up get nothing.
        assert!(grad.row(3).iter().all(|&v| v == 0.25));
    }

    #[test]
    fn init_is_standard_normal_with_zero_padding() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let emb = Embedding::new(400, 50, Some(7), &mut rng).unwrap();
        assert!(emb.weight.row(7).iter().all(|&v| v == 0.0));
        let n = emb.weight.len() as f64;
        let mean = emb.weight.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = emb.weight.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
    }

    #[test]
    fn bad_ids_and_shapes_are_errors() {
        let emb = Embedding::from_weight(Array2::zeros((4, 2)), None).unwrap();
        let e = emb.forward(&[0, 3, 4]).unwrap_err().to_string();
        assert!(e.contains("token id 4") && e.contains("size 4"), "{e}");
        let mut g = Array2::zeros((4, 2));
        assert!(
            emb.backward(&[9], Array2::zeros((1, 2)).view(), &mut g)
                .is_err()
        );
        assert!(
            emb.backward(&[1], Array2::zeros((2, 2)).view(), &mut g)
                .is_err()
        );
        let mut g = Array2::zeros((3, 2));
        assert!(
            emb.backward(&[1], Array2::zeros((1, 2)).view(), &mut g)
                .is_err()
        );
        assert!(Embedding::from_weight(Array2::zeros((4, 2)), Some(4)).is_err());
    }
}
