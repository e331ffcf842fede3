//! A forecaster trained with truncated backpropagation through time, for the lab's BPTT axis:
//! the loss at the last step sends its gradient back only `k` steps. The first `T − k` steps
//! run forward without keeping anything (their final state starts the last `k`, as a carried
//! state does between TBPTT chunks), so what happened earlier than `k` steps before the loss
//! shapes the state but is never taught. Evaluation runs the whole sequence, as usual.

use ndarray::{Array2, Array3, ArrayD, s};
use rand::RngCore;
use rnnkit::Upstream;
use rnnkit::data::series::WindowBatch;
use rnnkit::nn::Regression;
use rnnkit::train::seq_trainer::{BatchLoss, TaskModel};
use rnnkit::train::tasks::{Forecaster, TaskGrads};
use std::collections::BTreeMap;

/// A [`Forecaster`] whose training gradient reaches back `k` steps from the loss.
pub struct TruncatedForecaster {
    /// The model.
    pub inner: Forecaster,
    /// Steps the gradient reaches back (at least 1).
    pub k: usize,
}

impl TaskModel for TruncatedForecaster {
    type Batch = WindowBatch;

    fn train_step(
        &self,
        b: &WindowBatch,
        grads: &mut TaskGrads,
        rng: &mut dyn RngCore,
    ) -> rnnkit::Result<BatchLoss> {
        let steps = b.inputs.dim().0;
        let k = self.k.clamp(1, steps);
        let state = if steps > k {
            let prefix = b.inputs.slice(s![..steps - k, .., ..]);
            Some(self.inner.rnn.forward(prefix, None, None)?.state)
        } else {
            None
        };
        let suffix = b.inputs.slice(s![steps - k.., .., ..]);
        let (out, cache) = self
            .inner
            .rnn
            .forward_train(suffix, state.as_ref(), None, rng)?;
        let last = out.output.slice(s![k - 1, .., ..]).to_owned();
        let pred = self.inner.head.forward(last.view())?;
        let mut dpred = Array2::zeros(pred.dim());
        let loss =
            Regression::Mse.forward_backward(pred.view(), b.targets.view(), None, &mut dpred)?;
        let dlast = self
            .inner
            .head
            .backward(last.view(), dpred.view(), &mut grads.head)?;
        let mut dh = Array3::zeros(out.output.dim());
        dh.slice_mut(s![k - 1, .., ..]).assign(&dlast);
        // The gradient of the initial state is dropped: that is the truncation.
        self.inner
            .rnn
            .backward(&cache, &Upstream::output_only(dh.view()), &mut grads.rnn)?;
        Ok(BatchLoss {
            loss: loss.loss,
            sum: loss.sum,
            count: loss.count,
            correct: 0,
        })
    }

    fn eval_step(&self, b: &WindowBatch) -> rnnkit::Result<BatchLoss> {
        self.inner.eval_step(b)
    }

    fn zero_grads(&self) -> TaskGrads {
        TaskModel::zero_grads(&self.inner)
    }

    fn params_and_grads<'a>(&'a mut self, grads: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])> {
        TaskModel::params_and_grads(&mut self.inner, grads)
    }

    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }

    fn named_tensors(&self) -> BTreeMap<String, ArrayD<f32>> {
        self.inner.named_tensors()
    }

    fn load_named(&mut self, t: &BTreeMap<String, ArrayD<f32>>) -> rnnkit::Result<()> {
        self.inner.load_named(t)
    }

    fn rnn_config(&self) -> &rnnkit::RnnConfig {
        self.inner.rnn_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnnkit::train::tasks::Forecaster;
    use rnnkit::{CellKind, RnnConfig};

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
        let (mut g1, mut g2) = (TaskModel::zero_grads(&f), TaskModel::zero_grads(&f));
        let mut rng = rand::rng();
        let a = f.train_step(&batch(), &mut g1, &mut rng).unwrap();
        let b = full.train_step(&batch(), &mut g2, &mut rng).unwrap();
        assert!((a.loss - b.loss).abs() < 1e-6);
        let diff = (&g1.rnn.layers[0].weight_ih - &g2.rnn.layers[0].weight_ih).mapv(f32::abs);
        assert!(diff.iter().all(|&d| d < 1e-5));
        // Truncated to 2 steps: same loss (the forward is whole), smaller input-weight gradient
        // (fewer steps contribute).
        let short = TruncatedForecaster {
            inner: f.clone(),
            k: 2,
        };
        let mut g3 = TaskModel::zero_grads(&f);
        let c = short.train_step(&batch(), &mut g3, &mut rng).unwrap();
        assert!((a.loss - c.loss).abs() < 1e-6);
        assert_ne!(g1.rnn.layers[0].weight_ih, g3.rnn.layers[0].weight_ih);
    }
}
