//! Forecasting: regression from a lookback window of features to the next `horizon` steps of
//! `targets` variables.
//!
//! ```text
//! p = Last(h)           [B, F]                             (see Pooling::Last)
//! ŷ = p Wᵀ + c          [B, H·K] viewed as [B, H, K]      dp = dŷ W, dW += dŷᵀ p, dc += Σ dŷ
//! L = (1/(B·H·K)) Σ (ŷ − y)²                              dŷ = 2 (ŷ − y) / (B·H·K)
//! ```

use super::encoder::resolve_lengths;
use super::encoder::{Encoder, InputSpec, SeqInput};
use super::pooling::{Pooling, pool_backward, pool_forward};
use super::train_step::{BatchLoss, DIAGNOSIS_ROWS, TrainStep};
use crate::config::RnnConfig;
use crate::data::series::WindowBatch;
use crate::diagnostics::{Diagnosis, GradientProfile, default_distances, gate_stats};
use crate::error::{Error, Result};
use crate::module::{Grads, Module, TensorMut, TensorRef, join};
use crate::nn::loss::LossOutput;
use crate::nn::{Linear, Regression};
use crate::precision::Precision;
use crate::recurrent::{Rnn, RnnState};
use ndarray::{Array2, Array3, ArrayView3, Axis, s};
use rand::RngCore;

/// Recurrent stack → last valid step → linear head `[B, horizon·targets]` → mean squared error.
///
/// ```
/// use ndarray::Array3;
/// use rnnkit::models::Forecaster;
/// use rnnkit::module::Grads;
/// use rnnkit::{CellKind, RnnConfig};
///
/// let model = Forecaster::new(RnnConfig::new(CellKind::Lstm, 2, 8), 3, 2, 0).unwrap();
/// let x = Array3::<f32>::zeros((6, 4, 2)); // [T, B, I]
/// let y = Array3::<f32>::zeros((4, 3, 2)); // [B, horizon, targets]
/// let mut grads = Grads::zeros_like(&model);
/// let out = model.train_batch(x.view(), None, y.view(), &mut grads, &mut rand::rng()).unwrap();
/// assert_eq!(out.count, 24);
/// assert_eq!(model.predict(x.view(), None).unwrap().shape(), &[4, 3, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Forecaster {
    encoder: Encoder,
    head: Linear,
    horizon: usize,
    targets: usize,
}

impl Module for Forecaster {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        self.encoder.visit_params(prefix, f);
        self.head.visit_params(&join(prefix, "head."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.encoder.visit_params_mut(prefix, f);
        self.head.visit_params_mut(&join(prefix, "head."), f);
    }
}

impl Forecaster {
    /// A model with PyTorch's default initialization, seeded.
    pub fn new(rnn: RnnConfig, horizon: usize, targets: usize, seed: u64) -> Result<Self> {
        if horizon == 0 || targets == 0 {
            return Err(Error::Config(format!(
                "horizon ({horizon}) and targets ({targets}) must be positive"
            )));
        }
        let (encoder, head) =
            Encoder::with_head(InputSpec::Features, rnn, horizon * targets, seed)?;
        Ok(Forecaster {
            encoder,
            head,
            horizon,
            targets,
        })
    }

    /// Steps predicted.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// Variables predicted per step.
    pub fn targets(&self) -> usize {
        self.targets
    }

    /// The recurrent stack.
    pub fn rnn(&self) -> &Rnn {
        self.encoder.rnn()
    }

    /// Quantizes the recurrent stack to int8 for inference ([`Rnn::quantize`]); the head
    /// stay f32. Returns the int8 kernel's name. Training the model afterwards is refused.
    pub fn quantize(&mut self) -> &'static str {
        self.encoder.rnn_mut().quantize()
    }

    /// The `[horizon·targets, F]` output head.
    pub fn head(&self) -> &Linear {
        &self.head
    }

    /// The gradient buffers of the stack and the head, for training variants in the crate
    /// (the lab's truncated forecaster) that run their own backward.
    pub(crate) fn grads_mut(&mut self) -> (&mut crate::params::RnnParams, &mut Linear) {
        (self.encoder.rnn_mut().params_mut(), &mut self.head)
    }

    /// Forward and backward over one batch: `target` `[B, horizon, targets]`. Adds every
    /// gradient into `grads`. Returns the mean squared error.
    pub fn train_batch(
        &self,
        input: ArrayView3<f32>,
        lengths: Option<&[usize]>,
        target: ArrayView3<f32>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<LossOutput> {
        Ok(self
            .train_batch_with_input_grad(input, lengths, target, grads, rng)?
            .0)
    }

    /// [`Forecaster::train_batch`] that also returns the gradient with respect to the input
    /// `[T, B, I]`.
    pub fn train_batch_with_input_grad(
        &self,
        input: ArrayView3<f32>,
        lengths: Option<&[usize]>,
        target: ArrayView3<f32>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<(LossOutput, Array3<f32>)> {
        let (steps, batch, _) = input.dim();
        let lens = resolve_lengths(lengths, steps, batch)?;
        self.check_target(target, batch)?;
        let (out, cache) = self
            .encoder
            .forward_train(SeqInput::Features(input), &lens, rng)?;
        let bidir = self.rnn().config().bidirectional;
        let (last, pool_cache) =
            pool_forward(Pooling::Last, None, out.output.view(), &lens, bidir)?;
        let pred = self.head.forward(last.view())?;
        let t2 = target
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((batch, self.horizon * self.targets))
            .expect("[B, H·K]");
        let mut dpred = Array2::zeros(pred.dim());
        let loss = Regression::Mse.forward_backward(pred.view(), t2.view(), None, &mut dpred)?;
        let g = &mut grads.0;
        let dlast = self.head.backward(last.view(), dpred.view(), &mut g.head)?;
        let dh = pool_backward(
            Pooling::Last,
            None,
            None,
            out.output.view(),
            &lens,
            bidir,
            &pool_cache,
            dlast.view(),
        )?;
        let dx = self.encoder.backward(&cache, dh.view(), &mut g.encoder)?;
        Ok((loss, dx))
    }

    fn check_target(&self, target: ArrayView3<f32>, batch: usize) -> Result<()> {
        if target.dim() != (batch, self.horizon, self.targets) {
            return Err(Error::Shape(format!(
                "targets are {:?}, expected [{batch}, {}, {}]",
                target.shape(),
                self.horizon,
                self.targets
            )));
        }
        Ok(())
    }

    /// Predictions `[B, horizon, targets]` (inference).
    pub fn predict(
        &self,
        input: ArrayView3<f32>,
        lengths: Option<&[usize]>,
    ) -> Result<Array3<f32>> {
        let (steps, batch, _) = input.dim();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let out = self.encoder.forward(SeqInput::Features(input), &lens)?;
        let bidir = self.rnn().config().bidirectional;
        let (last, _) = pool_forward(Pooling::Last, None, out.output.view(), &lens, bidir)?;
        let pred = self.head.forward(last.view())?;
        Ok(pred
            .into_shape_with_order((batch, self.horizon, self.targets))
            .expect("[B, H, K]"))
    }

    /// The loss only (evaluation): mean squared error against `target` `[B, horizon, targets]`.
    pub fn evaluate(
        &self,
        input: ArrayView3<f32>,
        lengths: Option<&[usize]>,
        target: ArrayView3<f32>,
    ) -> Result<LossOutput> {
        self.check_target(target, input.dim().1)?;
        let pred = self.predict(input, lengths)?;
        Regression::Mse.forward(pred.view(), target, None)
    }

    /// `[B, H·K]` step-major window targets as the model's `[B, H, K]`.
    fn window_targets(&self, b: &WindowBatch) -> Result<Array3<f32>> {
        let (batch, hk) = b.targets.dim();
        if hk != self.horizon * self.targets {
            return Err(Error::Shape(format!(
                "windows have {hk} target values each, the model forecasts horizon {} × {} \
                 targets",
                self.horizon, self.targets
            )));
        }
        Ok(b.targets
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((batch, self.horizon, self.targets))
            .expect("[B, H, K]"))
    }

    /// The gradient of the MSE through time (see [`crate::diagnostics::gradient_through_time`])
    /// at the given `distances` back from the last step: the forecaster's own loss, through its
    /// head, with dropout off. Full-length windows only (no `lengths`); unidirectional stacks.
    ///
    /// ```
    /// use rnnkit::data::series::WindowBatch;
    /// use rnnkit::models::Forecaster;
    /// use rnnkit::{CellKind, RnnConfig};
    ///
    /// let model = Forecaster::new(RnnConfig::new(CellKind::Lstm, 2, 4), 1, 1, 0).unwrap();
    /// let batch = WindowBatch {
    ///     inputs: ndarray::Array3::from_shape_fn((8, 3, 2), |(t, b, i)| (t + b + i) as f32 * 0.1),
    ///     targets: ndarray::Array2::ones((3, 1)),
    /// };
    /// let p = model.gradient_profile(&batch, &[0, 2, 4, 7]).unwrap();
    /// assert_eq!(p.norm.len(), 4);
    /// assert!(p.norm.iter().all(|n| n.is_finite() && *n > 0.0));
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] when the batch does not fit the model; a bidirectional stack.
    pub fn gradient_profile(
        &self,
        batch: &WindowBatch,
        distances: &[usize],
    ) -> Result<GradientProfile> {
        let cfg = self.rnn().config();
        crate::diagnostics::check_unidirectional(cfg, "gradient_profile")?;
        let inputs = batch.inputs.view();
        crate::diagnostics::check_inputs(cfg, inputs)?;
        let (steps, b, _) = inputs.dim();
        let hk = self.horizon * self.targets;
        if batch.targets.dim() != (b, hk) {
            return Err(Error::Shape(format!(
                "targets are {:?}, expected [{b}, {hk}] (batch × horizon·targets)",
                batch.targets.shape()
            )));
        }
        let rnn = crate::diagnostics::without_dropout(self.rnn())?;
        let out = rnn.forward(inputs, None, None)?;
        let last = out.output.index_axis(Axis(0), steps - 1); // [B, P]
        let pred = self.head.forward(last)?; // [B, H·K]
        let mut dpred = Array2::zeros(pred.dim());
        Regression::Mse.forward_backward(pred.view(), batch.targets.view(), None, &mut dpred)?;
        let mut head_grads = self.head.zeros_like();
        let d_last = self.head.backward(last, dpred.view(), &mut head_grads)?;
        crate::diagnostics::gradient_through_time(&rnn, inputs, d_last.view(), distances)
    }

    /// The gradient profile and gate statistics on (at most `max_rows`) windows of `batch`.
    pub fn diagnose(&self, batch: &WindowBatch, max_rows: usize) -> Result<Diagnosis> {
        let rows = batch.targets.nrows().min(max_rows.max(1));
        let probe = WindowBatch {
            inputs: batch.inputs.slice(s![.., ..rows, ..]).to_owned(),
            targets: batch.targets.slice(s![..rows, ..]).to_owned(),
        };
        let steps = probe.inputs.dim().0;
        Ok(Diagnosis {
            profile: self.gradient_profile(&probe, &default_distances(steps))?,
            gates: gate_stats(self.rnn(), probe.inputs.view())?,
        })
    }
}

impl TrainStep for Forecaster {
    type Batch = WindowBatch;

    fn set_precision(&mut self, precision: Precision) -> Precision {
        self.encoder.rnn_mut().set_precision(precision)
    }

    fn train_batch(
        &self,
        b: &WindowBatch,
        _carry: &mut Option<RnnState>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss> {
        let y = self.window_targets(b)?;
        Ok(Forecaster::train_batch(self, b.inputs.view(), None, y.view(), grads, rng)?.into())
    }

    fn eval_batch(&self, b: &WindowBatch, _carry: &mut Option<RnnState>) -> Result<BatchLoss> {
        let y = self.window_targets(b)?;
        Ok(self.evaluate(b.inputs.view(), None, y.view())?.into())
    }

    fn diagnose(&self, batch: &WindowBatch) -> Result<Option<Diagnosis>> {
        Ok(Some(Forecaster::diagnose(self, batch, DIAGNOSIS_ROWS)?))
    }
}
