//! Layers and losses around the recurrent stack, each with explicit forward and backward.
//!
//! | part | what |
//! |---|---|
//! | [`linear`] | [`Linear`]: `y = x Wᵀ + b` (PyTorch `nn.Linear`), also over borrowed weights for tying |
//! | [`dropout`] | [`Dropout`], [`LockedDropout`] (variational), [`EmbeddingDropout`] (whole words), [`WeightDrop`] (DropConnect); seeded, identity at evaluation |
//! | [`embedding`] | [`Embedding`]: id lookup with a padding id that gets no gradient; weight tying |
//! | [`loss`] | [`CrossEntropy`] (fused log-softmax, ignore index, label smoothing), [`Regression`] (MSE, L1, Huber); metrics: perplexity, bits per character, accuracy, RMSE, MAE |
//!
//! Conventions: `f32`, `ndarray` arrays at the boundary, shapes in PyTorch's layout; backward
//! functions add into parameter gradient buffers (`+=`); user-input errors (a token id outside
//! the vocabulary, mismatched shapes) are [`crate::Error`]s, never panics.
//!
//! ```
//! use ndarray::Array2;
//! use rand::SeedableRng;
//! use rnnkit::nn::{Embedding, Linear};
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let emb = Embedding::new(10, 4, Some(0), &mut rng).unwrap();
//! let dec = Linear::new(4, 10, true, &mut rng);
//! let logits = dec.forward(emb.forward(&[1, 2, 0]).unwrap().view()).unwrap();
//! assert_eq!(logits.shape(), &[3, 10]);
//! ```

pub mod dropout;
pub mod embedding;
pub mod linear;
pub mod loss;

pub use dropout::{Dropout, EmbeddingDropout, LockedDropout, WeightDrop};
pub use embedding::Embedding;
pub use linear::Linear;
pub use loss::{CrossEntropy, Regression};

/// Refuses a `rows × cols` weight matrix of more than 2^34 values (64 GiB of f32): sizes come
/// from configs and files, and an error naming them beats an abort on allocation. Counted in
/// f64, which cannot overflow.
pub(crate) fn check_matrix_size(what: &str, rows: usize, cols: usize) -> crate::Result<()> {
    if rows as f64 * cols as f64 > (1u64 << 34) as f64 {
        return Err(crate::Error::Config(format!(
            "the {what} would be {rows} × {cols}: too large"
        )));
    }
    Ok(())
}
