//! Pooling: how a classifier reduces the stack's outputs `[T, B, F]` over each sequence's valid
//! steps to one vector `[B, F]`, forward and backward side by side. Attention pooling has
//! parameters of its own ([`AttentionPool`]); the others have none.

use super::attention_pool::{AttentionCache, AttentionPool};
use crate::error::{Error, Result};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

/// How a classifier reduces the stack's outputs over the valid steps of each sequence to one
/// vector (padded steps are never read).
///
/// `Last` follows PyTorch practice over a bidirectional stack: the forward direction's output
/// at the last valid step concatenated with the reverse direction's output at step 0. Both are
/// the directions' final states (`h_n` of the top layer), i.e. each direction after it has read
/// the whole valid sequence.
///
/// ```text
/// Last (1 direction):  p[b] = h[ℓ_b−1, b]                dh[ℓ_b−1, b] += dp[b]
/// Last (2 directions): p[b] = [h→[ℓ_b−1, b], h←[0, b]]   dh→[ℓ_b−1, b] += dp→[b], dh←[0, b] += dp←[b]
/// Mean:                p[b] = (1/ℓ_b) Σ_{t<ℓ_b} h[t, b]  dh[t, b] += dp[b] / ℓ_b   (t < ℓ_b)
/// Max:                 p[b,f] = max_{t<ℓ_b} h[t, b, f]   dh[a[b,f], b, f] += dp[b,f]  (first argmax)
/// Attention:           p[b] = Σ_{t<ℓ_b} α[t,b] h[t, b]   learned weights; see AttentionPool
/// ```
///
/// ```
/// use rnnkit::models::Pooling;
/// assert_eq!(Pooling::default(), Pooling::Last);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The output at the last valid step; for a bidirectional stack the forward direction's
    /// output there and the reverse direction's output at step 0 (each direction's `h_n`).
    #[default]
    Last,
    /// The mean over valid steps.
    Mean,
    /// The elementwise maximum over valid steps (gradient to the first argmax step).
    Max,
    /// A learned softmax weighting of the valid steps ([`AttentionPool`]); the model gains
    /// `attention.*` parameters.
    Attention,
}

/// What a training forward keeps for [`pool_backward`].
pub(crate) enum PoolCache {
    /// `Last` and `Mean` need nothing.
    Nothing,
    /// `Max`: the argmax step of each `[b, f]`.
    Argmax(Array2<usize>),
    /// `Attention`: its activations and weights.
    Attention(AttentionCache),
}

fn attention_of(attention: Option<&AttentionPool>) -> Result<&AttentionPool> {
    attention.ok_or_else(|| Error::Config("attention pooling needs its parameters".into()))
}

/// Pools `h` `[T, B, F]` over valid steps to `[B, F]`, keeping what the backward needs.
pub(crate) fn pool_forward(
    pooling: Pooling,
    attention: Option<&AttentionPool>,
    h: ArrayView3<f32>,
    lengths: &[usize],
    bidirectional: bool,
) -> Result<(Array2<f32>, PoolCache)> {
    let (_, batch, f) = h.dim();
    let half = f / 2;
    let mut p = Array2::<f32>::zeros((batch, f));
    match pooling {
        Pooling::Last => {
            for (b, &len) in lengths.iter().enumerate() {
                for k in 0..f {
                    let t = if bidirectional && k >= half {
                        0
                    } else {
                        len - 1
                    };
                    p[[b, k]] = h[[t, b, k]];
                }
            }
            Ok((p, PoolCache::Nothing))
        }
        Pooling::Mean => {
            for (b, &len) in lengths.iter().enumerate() {
                for t in 0..len {
                    for k in 0..f {
                        p[[b, k]] += h[[t, b, k]];
                    }
                }
                let inv = 1.0 / len as f32;
                p.row_mut(b).mapv_inplace(|v| v * inv);
            }
            Ok((p, PoolCache::Nothing))
        }
        Pooling::Max => {
            let mut arg = Array2::<usize>::zeros((batch, f));
            for (b, &len) in lengths.iter().enumerate() {
                for k in 0..f {
                    let (mut best, mut at) = (h[[0, b, k]], 0);
                    for t in 1..len {
                        if h[[t, b, k]] > best {
                            best = h[[t, b, k]];
                            at = t;
                        }
                    }
                    p[[b, k]] = best;
                    arg[[b, k]] = at;
                }
            }
            Ok((p, PoolCache::Argmax(arg)))
        }
        Pooling::Attention => {
            let (p, cache) = attention_of(attention)?.forward(h, lengths)?;
            Ok((p, PoolCache::Attention(cache)))
        }
    }
}

/// Backward of [`pool_forward`]: `dp` `[B, F]` to `dh` `[T, B, F]`, zero at padded steps;
/// attention pooling adds its parameter gradients into `attention_grads`.
#[allow(clippy::too_many_arguments)] // the forward's inputs, its cache and the two gradients
pub(crate) fn pool_backward(
    pooling: Pooling,
    attention: Option<&AttentionPool>,
    attention_grads: Option<&mut AttentionPool>,
    h: ArrayView3<f32>,
    lengths: &[usize],
    bidirectional: bool,
    cache: &PoolCache,
    dp: ArrayView2<f32>,
) -> Result<Array3<f32>> {
    if let (Pooling::Attention, PoolCache::Attention(c)) = (pooling, cache) {
        let grads = attention_grads
            .ok_or_else(|| Error::Config("attention pooling needs its gradients".into()))?;
        return attention_of(attention)?.backward(h, lengths, c, dp, grads);
    }
    let steps = h.dim().0;
    let (batch, f) = dp.dim();
    let half = f / 2;
    let mut dh = Array3::<f32>::zeros((steps, batch, f));
    for (b, &len) in lengths.iter().enumerate() {
        for k in 0..f {
            let g = dp[[b, k]];
            match (pooling, cache) {
                (Pooling::Last, _) => {
                    let t = if bidirectional && k >= half {
                        0
                    } else {
                        len - 1
                    };
                    dh[[t, b, k]] += g;
                }
                (Pooling::Mean, _) => {
                    let s = g / len as f32;
                    for t in 0..len {
                        dh[[t, b, k]] += s;
                    }
                }
                (Pooling::Max, PoolCache::Argmax(arg)) => dh[[arg[[b, k]], b, k]] += g,
                _ => {
                    return Err(Error::Shape(format!(
                        "{pooling:?} pooling backward got another pooling's cache"
                    )));
                }
            }
        }
    }
    Ok(dh)
}
