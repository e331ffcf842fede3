//! Attention pooling over valid steps (additive attention with a learned query, as in
//! self-attentive pooling for speech and text classifiers): each step gets a score, the scores
//! are soft-maxed over the sequence's valid steps, and the pooled vector is the weighted sum.
//!
//! Forward, for the stack's outputs `h` `[T, B, F]` and lengths `ℓ`:
//!
//! ```text
//! u[t,b] = tanh(W h[t,b] + c)                     [A]      W [A, F], c [A]
//! e[t,b] = v · u[t,b]                             scalar   v [1, A] (no bias: softmax ignores it)
//! α[t,b] = exp(e[t,b]) / Σ_{s<ℓ_b} exp(e[s,b])    (t < ℓ_b; 0 at padding)
//! p[b]   = Σ_{t<ℓ_b} α[t,b] h[t,b]                [F]
//! ```
//!
//! Backward, given `dp` `[B, F]`:
//!
//! ```text
//! dα[t,b] = dp[b] · h[t,b]
//! de[t,b] = α[t,b] (dα[t,b] − Σ_s α[s,b] dα[s,b])        softmax backward
//! du      = de vᵀ,    dz = du ⊙ (1 − u²)                  dv += Σ de u
//! dh[t,b] = α[t,b] dp[b] + dz[t,b] W                      dW += dzᵀ h, dc += Σ dz
//! ```
//!
//! [`OnlinePool`] runs every pooling, attention included, one step at a time (a running softmax
//! with a rescaled accumulator), so a streaming classifier scores a segment as it grows.

use super::pooling::Pooling;
use crate::error::{Error, Result};
use crate::module::{Module, TensorMut, TensorRef, join};
use crate::nn::Linear;
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The parameters of attention pooling, or their gradients: `proj` (`W`, `c`) and `score` (`v`).
///
/// ```
/// use ndarray::Array3;
/// use rnnkit::models::AttentionPool;
///
/// let pool = AttentionPool::new(4, 0); // F = 4 features, attention size A = F
/// let h = Array3::<f32>::ones((3, 2, 4)); // [T, B, F]
/// let p = pool.pool(h.view(), &[3, 1]).unwrap();
/// assert_eq!(p.shape(), &[2, 4]);
/// assert!((p[[0, 0]] - 1.0).abs() < 1e-6); // a weighted mean of equal rows
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionPool {
    proj: Linear,
    score: Linear,
}

/// What a training forward keeps for [`AttentionPool::backward`].
pub(crate) struct AttentionCache {
    /// `tanh(W h + c)`, `[T·B, A]`.
    u: Array2<f32>,
    /// Weights `[T, B]`, zero at padding.
    alpha: Array2<f32>,
}

impl Module for AttentionPool {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        self.proj.visit_params(&join(prefix, "proj."), f);
        self.score.visit_params(&join(prefix, "score."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.proj.visit_params_mut(&join(prefix, "proj."), f);
        self.score.visit_params_mut(&join(prefix, "score."), f);
    }
}

impl AttentionPool {
    /// Attention over `features`-wide outputs with an attention size equal to `features`,
    /// initialized as PyTorch initializes `nn.Linear`, seeded.
    pub fn new(features: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let proj = Linear::new(features, features, true, &mut rng);
        let score = Linear::new(features, 1, false, &mut rng);
        AttentionPool { proj, score }
    }

    /// Input width `F`.
    pub fn features(&self) -> usize {
        self.proj.in_features()
    }

    /// Pooled `[B, F]` (inference).
    pub fn pool(&self, h: ArrayView3<f32>, lengths: &[usize]) -> Result<Array2<f32>> {
        Ok(self.forward(h, lengths)?.0)
    }

    /// The attention weights `α` `[T, B]` (zero at padding): which frames the model listened to.
    pub fn weights(&self, h: ArrayView3<f32>, lengths: &[usize]) -> Result<Array2<f32>> {
        Ok(self.forward(h, lengths)?.1.alpha)
    }

    /// The unnormalized score `e` of one step's output `h` `[F]`.
    pub fn score_one(&self, h: ArrayView1<f32>) -> Result<f32> {
        let u = self
            .proj
            .forward(h.insert_axis(Axis(0)))?
            .mapv_into(f32::tanh);
        Ok(self.score.forward(u.view())?[[0, 0]])
    }

    pub(crate) fn forward(
        &self,
        h: ArrayView3<f32>,
        lengths: &[usize],
    ) -> Result<(Array2<f32>, AttentionCache)> {
        let (steps, batch, f) = h.dim();
        if f != self.features() {
            return Err(Error::Shape(format!(
                "attention pooling over {} features got {f}",
                self.features()
            )));
        }
        let flat = flatten(h);
        let u = self.proj.forward(flat.view())?.mapv_into(f32::tanh);
        let e = self.score.forward(u.view())?; // [T·B, 1]
        let mut alpha = Array2::<f32>::zeros((steps, batch));
        let mut p = Array2::<f32>::zeros((batch, f));
        for (b, &len) in lengths.iter().enumerate() {
            let score = |t: usize| e[[t * batch + b, 0]];
            let max = (0..len).map(score).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for t in 0..len {
                let w = (score(t) - max).exp();
                alpha[[t, b]] = w;
                sum += w;
            }
            for t in 0..len {
                alpha[[t, b]] /= sum;
                p.row_mut(b)
                    .scaled_add(alpha[[t, b]], &h.slice(ndarray::s![t, b, ..]));
            }
        }
        Ok((p, AttentionCache { u, alpha }))
    }

    /// Adds the parameter gradients into `grads` and returns `dh` `[T, B, F]`, zero at padding.
    pub(crate) fn backward(
        &self,
        h: ArrayView3<f32>,
        lengths: &[usize],
        cache: &AttentionCache,
        dp: ArrayView2<f32>,
        grads: &mut AttentionPool,
    ) -> Result<Array3<f32>> {
        let (steps, batch, f) = h.dim();
        let alpha = &cache.alpha;
        let mut dh = Array3::<f32>::zeros((steps, batch, f));
        let mut de = Array2::<f32>::zeros((steps * batch, 1));
        for (b, &len) in lengths.iter().enumerate() {
            let g = dp.row(b);
            let dalpha: Vec<f32> = (0..len)
                .map(|t| g.dot(&h.slice(ndarray::s![t, b, ..])))
                .collect();
            let mean: f32 = (0..len).map(|t| alpha[[t, b]] * dalpha[t]).sum();
            for t in 0..len {
                de[[t * batch + b, 0]] = alpha[[t, b]] * (dalpha[t] - mean);
                dh.slice_mut(ndarray::s![t, b, ..])
                    .scaled_add(alpha[[t, b]], &g);
            }
        }
        let du = self
            .score
            .backward(cache.u.view(), de.view(), &mut grads.score)?;
        let dz = du * cache.u.mapv(|u| 1.0 - u * u);
        let flat = flatten(h);
        let dflat = self
            .proj
            .backward(flat.view(), dz.view(), &mut grads.proj)?;
        let dflat = dflat
            .into_shape_with_order((steps, batch, f))
            .map_err(|e| Error::Shape(e.to_string()))?;
        for t in 0..steps {
            for (b, &len) in lengths.iter().enumerate() {
                // Padded rows have dz = 0, so their share is zero already; skip them anyway so
                // the contract (no gradient at padding) does not rest on the arithmetic.
                if t < len {
                    dh.slice_mut(ndarray::s![t, b, ..])
                        .zip_mut_with(&dflat.slice(ndarray::s![t, b, ..]), |d, &x| *d += x);
                }
            }
        }
        Ok(dh)
    }
}

/// `[T, B, F]` as an owned standard-layout `[T·B, F]`.
fn flatten(h: ArrayView3<f32>) -> Array2<f32> {
    let (t, b, f) = h.dim();
    h.as_standard_layout()
        .into_owned()
        .into_shape_with_order((t * b, f))
        .expect("[T·B, F]")
}

/// Pooling one step at a time, for streaming: after `push`ing the outputs `h₀ … h_t`,
/// [`OnlinePool::value`] equals the offline pooling of those `t + 1` steps (unidirectional
/// stacks; `Last` is the latest output).
///
/// Attention keeps a running maximum score `m`, a weight sum `s = Σ exp(e − m)` and an
/// accumulator `a = Σ exp(e − m) h`, rescaled when `m` grows, so the value is `a / s` without
/// storing the steps.
///
/// ```
/// use ndarray::array;
/// use rnnkit::models::{OnlinePool, Pooling};
///
/// let mut pool = OnlinePool::new(Pooling::Mean);
/// pool.push(array![1.0, 2.0], None).unwrap();
/// pool.push(array![3.0, 4.0], None).unwrap();
/// assert_eq!(pool.value().unwrap(), array![2.0, 3.0]);
/// ```
#[derive(Clone, Debug)]
pub struct OnlinePool {
    pooling: Pooling,
    steps: usize,
    acc: Option<Array1<f32>>,
    max_score: f32,
    weight_sum: f32,
}

impl OnlinePool {
    /// An empty pool.
    pub fn new(pooling: Pooling) -> Self {
        OnlinePool {
            pooling,
            steps: 0,
            acc: None,
            max_score: f32::NEG_INFINITY,
            weight_sum: 0.0,
        }
    }

    /// Steps pushed so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Adds one step's output `h` `[F]`; attention pooling needs its `attention` parameters.
    pub fn push(&mut self, h: Array1<f32>, attention: Option<&AttentionPool>) -> Result<()> {
        let acc = self.acc.take();
        let acc = match (self.pooling, acc) {
            (Pooling::Attention, acc) => {
                let att = attention.ok_or_else(|| {
                    Error::Config("attention pooling needs the attention parameters".into())
                })?;
                let e = att.score_one(h.view())?;
                match acc {
                    Some(mut a) if e <= self.max_score => {
                        let w = (e - self.max_score).exp();
                        a.scaled_add(w, &h);
                        self.weight_sum += w;
                        a
                    }
                    // A new maximum: rescale what was summed against the old one.
                    Some(a) => {
                        let scale = (self.max_score - e).exp();
                        self.weight_sum = self.weight_sum * scale + 1.0;
                        self.max_score = e;
                        a * scale + &h
                    }
                    None => {
                        self.weight_sum = 1.0;
                        self.max_score = e;
                        h
                    }
                }
            }
            (Pooling::Mean, Some(a)) => a + &h,
            (Pooling::Max, Some(a)) => ndarray::Zip::from(&a).and(&h).map_collect(|x, y| x.max(*y)),
            (Pooling::Last | Pooling::Mean | Pooling::Max, _) => h,
        };
        self.acc = Some(acc);
        self.steps += 1;
        Ok(())
    }

    /// The pooled vector of the steps so far; `None` before the first step.
    pub fn value(&self) -> Option<Array1<f32>> {
        let acc = self.acc.as_ref()?;
        Some(match self.pooling {
            Pooling::Mean => acc / self.steps as f32,
            Pooling::Attention => acc / self.weight_sum,
            Pooling::Last | Pooling::Max => acc.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn outputs(t: usize, b: usize, f: usize, seed: u64) -> Array3<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array3::from_shape_fn((t, b, f), |_| rng.random_range(-2.0..2.0))
    }

    #[test]
    fn weights_sum_to_one_over_valid_steps_and_ignore_padding() {
        let pool = AttentionPool::new(5, 1);
        let mut h = outputs(6, 3, 5, 2);
        let lens = [6, 2, 4];
        let w = pool.weights(h.view(), &lens).unwrap();
        for (b, &len) in lens.iter().enumerate() {
            let s: f32 = (0..len).map(|t| w[[t, b]]).sum();
            assert!((s - 1.0).abs() < 1e-5, "column {b} sums to {s}");
            assert!((len..6).all(|t| w[[t, b]] == 0.0));
        }
        let p = pool.pool(h.view(), &lens).unwrap();
        h.slice_mut(ndarray::s![2.., 1, ..]).fill(1e9); // garbage in padding changes nothing
        assert_eq!(pool.pool(h.view(), &lens).unwrap(), p);
    }

    #[test]
    fn online_attention_equals_offline_at_every_prefix() {
        let pool = AttentionPool::new(4, 3);
        let h = outputs(9, 1, 4, 4);
        let mut online = OnlinePool::new(Pooling::Attention);
        for t in 0..9 {
            online
                .push(h.slice(ndarray::s![t, 0, ..]).to_owned(), Some(&pool))
                .unwrap();
            let offline = pool.pool(h.view(), &[t + 1]).unwrap();
            let got = online.value().unwrap();
            for (a, b) in got.iter().zip(offline.row(0)) {
                assert!((a - b).abs() < 1e-5, "step {t}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn online_attention_without_parameters_is_an_error() {
        let mut online = OnlinePool::new(Pooling::Attention);
        assert!(online.push(Array1::zeros(3), None).is_err());
    }

    #[test]
    fn wrong_width_is_an_error() {
        let pool = AttentionPool::new(4, 0);
        assert!(pool.pool(outputs(2, 1, 3, 0).view(), &[2]).is_err());
    }
}
