//! A forecaster trained with truncated backpropagation through time, for the lab's BPTT axis:
//! the loss at the last step sends its gradient back only `k` steps. The first `T − k` steps
//! run forward without keeping anything (their final state starts the last `k`, as a carried
//! state does between TBPTT chunks), so what happened earlier than `k` steps before the loss
//! shapes the state but is never taught. Evaluation runs the whole sequence, as usual.

use crate::data::series::WindowBatch;
use crate::error::Result;
use crate::models::{BatchLoss, Forecaster, TrainStep};
use crate::module::{Grads, Module, TensorMut, TensorRef};
use crate::nn::Regression;
use crate::precision::Precision;
use crate::recurrent::{RnnState, Upstream};
use ndarray::{Array2, Array3, s};
use rand::RngCore;

/// A [`Forecaster`] whose training gradient reaches back `k` steps from the loss.
///
/// ```
/// use rnnkit::lab::TruncatedForecaster;
/// use rnnkit::models::Forecaster;
/// use rnnkit::{CellKind, RnnConfig};
/// let inner = Forecaster::new(RnnConfig::new(CellKind::Gru, 1, 4), 1, 1, 0).unwrap();
/// let model = TruncatedForecaster { inner, k: 5 };
/// assert_eq!(rnnkit::module::param_names(&model, "")[0], "rnn.weight_ih_l0");
/// ```
#[derive(Clone, Debug)]
pub struct TruncatedForecaster {
    /// The model.
    pub inner: Forecaster,
    /// Steps the gradient reaches back (at least 1).
    pub k: usize,
}

impl Module for TruncatedForecaster {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        self.inner.visit_params(prefix, f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.inner.visit_params_mut(prefix, f);
    }
}

impl TrainStep for TruncatedForecaster {
    type Batch = WindowBatch;

    fn set_precision(&mut self, precision: Precision) -> Precision {
        self.inner.set_precision(precision)
    }

    fn train_batch(
        &self,
        b: &WindowBatch,
        _carry: &mut Option<RnnState>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss> {
        let steps = b.inputs.dim().0;
        let k = self.k.clamp(1, steps);
        let rnn = self.inner.rnn();
        let state = if steps > k {
            let prefix = b.inputs.slice(s![..steps - k, .., ..]);
            Some(rnn.forward(prefix, None, None)?.state)
        } else {
            None
        };
        let suffix = b.inputs.slice(s![steps - k.., .., ..]);
        let (out, cache) = rnn.forward_train(suffix, state.as_ref(), None, rng)?;
        let last = out.output.slice(s![k - 1, .., ..]).to_owned();
        let head = self.inner.head();
        let pred = head.forward(last.view())?;
        let mut dpred = Array2::zeros(pred.dim());
        let loss =
            Regression::Mse.forward_backward(pred.view(), b.targets.view(), None, &mut dpred)?;
        let (g_rnn, g_head) = grads.0.inner.grads_mut();
        let dlast = head.backward(last.view(), dpred.view(), g_head)?;
        let mut dh = Array3::zeros(out.output.dim());
        dh.slice_mut(s![k - 1, .., ..]).assign(&dlast);
        // The gradient of the initial state is dropped: that is the truncation.
        rnn.backward(&cache, &Upstream::output_only(dh.view()), g_rnn)?;
        Ok(loss.into())
    }

    fn eval_batch(&self, b: &WindowBatch, carry: &mut Option<RnnState>) -> Result<BatchLoss> {
        self.inner.eval_batch(b, carry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module;
    use crate::{CellKind, RnnConfig};

    fn batch() -> WindowBatch {
        WindowBatch {
            inputs: Array3::from_shape_fn((6, 3, 2), |(t, b, f)| {
                ((t * 5 + b * 3 + f) % 7) as f32 / 7.0
            }),
            targets: Array2::from_shape_fn((3, 1), |(b, _)| b as f32 / 2.0),
        }
    }

    #[test]
    fn full_length_truncation_is_plain_backpropagation() {
        let f = Forecaster::new(RnnConfig::new(CellKind::Lstm, 2, 4), 1, 1, 0).unwrap();
        let full = TruncatedForecaster {
            inner: f.clone(),
            k: 6,
        };
        let (mut g1, mut g2) = (Grads::zeros_like(&f), Grads::zeros_like(&full));
        let mut rng = rand::rng();
        let a = TrainStep::train_batch(&f, &batch(), &mut None, &mut g1, &mut rng).unwrap();
        let b = full
            .train_batch(&batch(), &mut None, &mut g2, &mut rng)
            .unwrap();
        assert!((a.loss - b.loss).abs() < 1e-6);
        let w = |g: &dyn Module| module::named_tensors(g, "")["rnn.weight_ih_l0"].clone();
        let diff = (w(&g1.0) - w(&g2.0)).mapv(f32::abs);
        assert!(diff.iter().all(|&d| d < 1e-5));
        // Truncated to 2 steps: same loss (the forward is whole), smaller input-weight gradient
        // (fewer steps contribute).
        let short = TruncatedForecaster {
            inner: f.clone(),
            k: 2,
        };
        let mut g3 = Grads::zeros_like(&short);
        let c = short
            .train_batch(&batch(), &mut None, &mut g3, &mut rng)
            .unwrap();
        assert!((a.loss - c.loss).abs() < 1e-6);
        assert_ne!(w(&g1.0), w(&g3.0));
    }
}
