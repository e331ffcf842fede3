//! Aligned many-to-many tagging: (embedding →) recurrent stack → linear head on every step →
//! cross-entropy over valid steps (padded steps are ignored targets).
//!
//! ```text
//! z = h Wᵀ + c          [T·B, C]  (row t·B + b)           dh = dz W, dW += dzᵀ h, dc += Σ dz
//! L = (1/N) Σ_{t<ℓ_b} −log softmax(z[t·B+b])[y[t,b]]     dz = (softmax − onehot)/N, 0 at padding
//!                                                        (N = Σ_b ℓ_b)
//! ```

use super::encoder::{Encoder, InputSpec, SeqInput, reshape2, resolve_lengths};
use super::train_step::{BatchLoss, TrainStep};
use crate::config::RnnConfig;
use crate::data::batch::{BatchTargets, PaddedBatch};
use crate::error::{Error, Result};
use crate::module::{Grads, Module, TensorMut, TensorRef, join};
use crate::nn::loss::CrossEntropyOutput;
use crate::nn::{CrossEntropy, Linear};
use crate::precision::Precision;
use crate::recurrent::{Rnn, RnnState};
use ndarray::{Array2, Array3, ArrayView2};
use rand::RngCore;

/// One label per valid step of padded, time-major batches.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use rnnkit::models::{InputSpec, SeqInput, SequenceTagger};
/// use rnnkit::module::Grads;
/// use rnnkit::{CellKind, RnnConfig};
///
/// let model = SequenceTagger::new(InputSpec::Features, RnnConfig::new(CellKind::Gru, 3, 6), 4, 0)
///     .unwrap();
/// let x = Array3::<f32>::ones((5, 2, 3)); // [T, B, I]
/// let tags = Array2::<usize>::zeros((5, 2)); // [T, B]; values at padded steps are ignored
/// let mut grads = Grads::zeros_like(&model);
/// let out = model
///     .train_batch(SeqInput::Features(x.view()), Some(&[5, 2]), tags.view(), &mut grads,
///         &mut rand::rng())
///     .unwrap();
/// assert_eq!(out.count, 7); // valid steps
/// let logits = model.predict(SeqInput::Features(x.view()), Some(&[5, 2])).unwrap();
/// assert_eq!(logits.shape(), &[10, 4]); // [T·B, C], row t·B + b
/// ```
#[derive(Clone, Debug)]
pub struct SequenceTagger {
    encoder: Encoder,
    head: Linear,
}

impl Module for SequenceTagger {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        self.encoder.visit_params(prefix, f);
        self.head.visit_params(&join(prefix, "head."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.encoder.visit_params_mut(prefix, f);
        self.head.visit_params_mut(&join(prefix, "head."), f);
    }
}

impl SequenceTagger {
    /// A model with PyTorch's default initialization, seeded, for `num_tags` tags.
    pub fn new(input: InputSpec, rnn: RnnConfig, num_tags: usize, seed: u64) -> Result<Self> {
        let (encoder, head) = Encoder::with_head(input, rnn, num_tags, seed)?;
        Ok(SequenceTagger { encoder, head })
    }

    /// Number of tags `C`.
    pub fn num_tags(&self) -> usize {
        self.head.out_features()
    }

    /// The embedding and recurrent stack.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The recurrent stack.
    pub fn rnn(&self) -> &Rnn {
        self.encoder.rnn()
    }

    /// Quantizes the recurrent stack to int8 for inference ([`Rnn::quantize`]); the embedding and head
    /// stay f32. Returns the int8 kernel's name. Training the model afterwards is refused.
    pub fn quantize(&mut self) -> &'static str {
        self.encoder.rnn_mut().quantize()
    }

    /// The `[C, F]` output head.
    pub fn head(&self) -> &Linear {
        &self.head
    }

    /// Forward and backward over one batch: `tags` `[T, B]` (ignored at padded steps). Adds
    /// every gradient into `grads`. Returns the mean cross-entropy over valid steps.
    pub fn train_batch(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        tags: ArrayView2<usize>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<CrossEntropyOutput> {
        Ok(self
            .train_batch_with_input_grad(input, lengths, tags, grads, rng)?
            .0)
    }

    /// [`SequenceTagger::train_batch`] that also returns the gradient with respect to the
    /// stack's input `[T, B, I]`.
    pub fn train_batch_with_input_grad(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        tags: ArrayView2<usize>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<(CrossEntropyOutput, Array3<f32>)> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let targets = tag_targets(tags, &lens, steps)?;
        let (out, cache) = self.encoder.forward_train(input, &lens, rng)?;
        let h2 = reshape2(out.output);
        let logits = self.head.forward(h2.view())?;
        let mut dz = Array2::zeros(logits.dim());
        let ce = CrossEntropy::default().forward_backward(logits.view(), &targets, &mut dz)?;
        let g = &mut grads.0;
        let dh = self.head.backward(h2.view(), dz.view(), &mut g.head)?;
        let f = dh.ncols();
        let dh3 = dh
            .into_shape_with_order((steps, batch, f))
            .expect("[T, B, F]");
        let dx = self.encoder.backward(&cache, dh3.view(), &mut g.encoder)?;
        Ok((ce, dx))
    }

    /// Logits `[T·B, C]` (row `t·B + b`; padded rows hold the head's bias). Inference.
    pub fn predict(&self, input: SeqInput, lengths: Option<&[usize]>) -> Result<Array2<f32>> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let out = self.encoder.forward(input, &lens)?;
        self.head.forward(reshape2(out.output).view())
    }

    /// The loss only (evaluation): mean cross-entropy over valid steps.
    pub fn evaluate(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        tags: ArrayView2<usize>,
    ) -> Result<CrossEntropyOutput> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let targets = tag_targets(tags, &lens, steps)?;
        let logits = self.predict(input, lengths)?;
        CrossEntropy::default().forward(logits.view(), &targets)
    }
}

/// Targets per row `t·B + b`: the tag at valid steps, `None` at padded ones.
fn tag_targets(
    tags: ArrayView2<usize>,
    lens: &[usize],
    steps: usize,
) -> Result<Vec<Option<usize>>> {
    let batch = lens.len();
    if tags.dim() != (steps, batch) {
        return Err(Error::Shape(format!(
            "tags are {:?}, the input is [{steps}, {batch}]",
            tags.shape()
        )));
    }
    let mut out = Vec::with_capacity(steps * batch);
    for t in 0..steps {
        for (b, &len) in lens.iter().enumerate() {
            out.push((t < len).then(|| tags[[t, b]]));
        }
    }
    Ok(out)
}

fn batch_tags(batch: &PaddedBatch) -> Result<ArrayView2<'_, usize>> {
    match &batch.targets {
        BatchTargets::Tags(tags) => Ok(tags.view()),
        BatchTargets::Classes(_) => Err(Error::Config(
            "a tagger got examples with one label per sequence; use a classifier".into(),
        )),
    }
}

/// A tagger's loss is at every step, not at the last: the last-step gradient through time is
/// no measure of it, so it has no diagnosis.
impl TrainStep for SequenceTagger {
    type Batch = PaddedBatch;

    fn set_precision(&mut self, precision: Precision) -> Precision {
        self.encoder.rnn_mut().set_precision(precision)
    }

    fn train_batch(
        &self,
        b: &PaddedBatch,
        _carry: &mut Option<RnnState>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss> {
        let input = SeqInput::Tokens(b.ids.view());
        let tags = batch_tags(b)?;
        Ok(SequenceTagger::train_batch(self, input, Some(&b.lengths), tags, grads, rng)?.into())
    }

    fn eval_batch(&self, b: &PaddedBatch, _carry: &mut Option<RnnState>) -> Result<BatchLoss> {
        let input = SeqInput::Tokens(b.ids.view());
        Ok(self
            .evaluate(input, Some(&b.lengths), batch_tags(b)?)?
            .into())
    }
}
