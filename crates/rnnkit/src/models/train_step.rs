//! What the [`Trainer`](crate::train::Trainer) needs of a model: one batch forward and backward
//! into gradients of the model's own type, one batch evaluated, and optionally a diagnosis.

use crate::diagnostics::Diagnosis;
use crate::error::Result;
use crate::module::{Grads, Module};
use crate::precision::Precision;
use crate::recurrent::RnnState;
use rand::RngCore;

/// The loss of one batch, with sums so batches of different sizes average correctly.
///
/// ```
/// use rnnkit::models::BatchLoss;
/// let b = BatchLoss { loss: 0.5, sum: 2.0, count: 4, correct: 3 };
/// assert_eq!(b.sum / b.count as f64, 0.5);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// The batch's mean loss (what the gradient is of).
    pub loss: f32,
    /// Sum of the per-element losses (negative log-likelihoods, or squared errors).
    pub sum: f64,
    /// Elements counted: tokens, sequences, valid steps or forecast values.
    pub count: usize,
    /// Correct predictions (classification and tagging; 0 for regression).
    pub correct: usize,
}

impl From<crate::nn::loss::CrossEntropyOutput> for BatchLoss {
    fn from(o: crate::nn::loss::CrossEntropyOutput) -> Self {
        BatchLoss {
            loss: o.loss,
            sum: o.nll_sum,
            count: o.count,
            correct: o.correct,
        }
    }
}

impl From<crate::nn::loss::LossOutput> for BatchLoss {
    fn from(o: crate::nn::loss::LossOutput) -> Self {
        BatchLoss {
            loss: o.loss,
            sum: o.sum,
            count: o.count,
            correct: 0,
        }
    }
}

/// A model the [`Trainer`](crate::train::Trainer) can train, with the batch type it reads.
///
/// `carry` is the recurrent state a model carries from one batch to the next within an epoch
/// (truncated BPTT over a stream: the language model). It is `None` at the start of every epoch
/// and of every evaluation; models over independent sequences leave it alone.
///
/// Implementing it for a model of your own: forward, backward into `grads`, return the loss.
///
/// ```
/// use rand::RngCore;
/// use rnnkit::models::{BatchLoss, TrainStep};
/// use rnnkit::module::{Grads, Module, TensorMut, TensorRef};
/// use rnnkit::nn::Linear;
/// use rnnkit::RnnState;
///
/// /// Least squares on a linear layer: batches of (x [N, 2], y [N, 1]).
/// #[derive(Clone)]
/// struct Fit(Linear);
/// impl Module for Fit {
///     fn visit_params<'a>(&'a self, p: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
///         self.0.visit_params(p, f)
///     }
///     fn visit_params_mut<'a>(&'a mut self, p: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
///         self.0.visit_params_mut(p, f)
///     }
/// }
/// impl TrainStep for Fit {
///     type Batch = (ndarray::Array2<f32>, ndarray::Array2<f32>);
///     fn train_batch(&self, (x, y): &Self::Batch, _: &mut Option<RnnState>,
///                    grads: &mut Grads<Self>, _: &mut dyn RngCore) -> rnnkit::Result<BatchLoss> {
///         let pred = self.0.forward(x.view())?;
///         let n = (pred.len()) as f32;
///         let d = (&pred - y) * (2.0 / n);
///         self.0.backward(x.view(), d.view(), &mut grads.0 .0)?;
///         let sum = (&pred - y).mapv(|e| (e * e) as f64).sum();
///         Ok(BatchLoss { loss: (sum / n as f64) as f32, sum, count: pred.len(), correct: 0 })
///     }
///     fn eval_batch(&self, b: &Self::Batch, c: &mut Option<RnnState>) -> rnnkit::Result<BatchLoss> {
///         let mut g = Grads::zeros_like(self);
///         self.train_batch(b, c, &mut g, &mut rand::rng())
///     }
/// }
/// ```
pub trait TrainStep: Module + Clone {
    /// One batch of the model's data.
    type Batch;

    /// Forward and backward over one batch (training: dropout on), adding into `grads`.
    fn train_batch(
        &self,
        batch: &Self::Batch,
        carry: &mut Option<RnnState>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss>;

    /// The loss of one batch (evaluation: no dropout, no gradients).
    fn eval_batch(&self, batch: &Self::Batch, carry: &mut Option<RnnState>) -> Result<BatchLoss>;

    /// Rank `rank`'s share of `batch` when `ranks` processes train together
    /// ([`crate::distributed`]). The shares of all ranks together are the batch. The default
    /// refuses: a model trains on several processes once it says how its batches split.
    ///
    /// # Errors
    /// A model whose batches do not split, or a batch too small for the ranks.
    fn shard_batch(_batch: &Self::Batch, _rank: usize, _ranks: usize) -> Result<Self::Batch>
    where
        Self::Batch: Sized,
    {
        Err(crate::Error::Config(
            "this model cannot train on several processes yet (only language models can)".into(),
        ))
    }

    /// The loss of a model that knows nothing, per element: `ln(classes)` for a cross-entropy
    /// over that many classes (a uniform guess). The trainer's divergence rule measures the
    /// loss against the larger of this and the first step's loss. Default: `None` (unknown, as
    /// for a regression loss).
    fn chance_loss(&self) -> Option<f64> {
        None
    }

    /// Runs the recurrent layers' matrix products in `precision` where this CPU can (see
    /// [`crate::Rnn::set_precision`]) and returns what runs. Default: f32 (models without
    /// recurrent layers).
    fn set_precision(&mut self, _precision: Precision) -> Precision {
        Precision::F32
    }

    /// Gradient-through-time and gate diagnostics on `batch`, for models that have them
    /// (see [`crate::diagnostics`]). Default: none.
    fn diagnose(&self, _batch: &Self::Batch) -> Result<Option<Diagnosis>> {
        Ok(None)
    }
}

/// Sequences in a training-time diagnosis: enough for stable means, cheap to run.
pub(crate) const DIAGNOSIS_ROWS: usize = 32;
