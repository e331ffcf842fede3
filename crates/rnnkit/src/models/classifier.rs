//! Sequence classification (many-to-one): (embedding →) recurrent stack → pooling over valid
//! steps → linear head → softmax cross-entropy.
//!
//! ```text
//! p = pool(h; ℓ)        [B, F]                           (see Pooling)
//! z = p Wᵀ + c          [B, C]                           dp = dz W, dW += dzᵀ p, dc += Σ_b dz[b]
//! L = (1/B) Σ_b −log softmax(z[b])[y_b]                  dz = (softmax(z) − onehot(y)) / B
//! ```

use super::attention_pool::{AttentionPool, OnlinePool};
use super::encoder::resolve_lengths;
use super::encoder::{Encoder, InputSpec, SeqInput};
use super::pooling::{Pooling, pool_backward, pool_forward};
use super::train_step::{BatchLoss, DIAGNOSIS_ROWS, TrainStep};
use crate::config::RnnConfig;
use crate::data::batch::{BatchTargets, PaddedBatch};
use crate::diagnostics::{Diagnosis, default_distances, gate_stats, gradient_through_time};
use crate::error::{Error, Result};
use crate::module::{Grads, Module, TensorMut, TensorRef, join};
use crate::nn::loss::CrossEntropyOutput;
use crate::nn::{CrossEntropy, Linear};
use crate::precision::Precision;
use crate::recurrent::{Rnn, RnnState};
use ndarray::{Array2, Array3, Axis, s};
use rand::RngCore;

/// Many-to-one classification over padded, time-major batches with lengths.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::models::{InputSpec, Pooling, SeqInput, SequenceClassifier};
/// use rnnkit::module::Grads;
/// use rnnkit::{CellKind, RnnConfig};
///
/// let cfg = RnnConfig::new(CellKind::Lstm, 4, 8).bidirectional(true);
/// let tokens = InputSpec::Tokens { vocab: 20, padding_idx: Some(0) };
/// let model = SequenceClassifier::new(tokens, cfg, 3, Pooling::Last, 0).unwrap();
/// let ids = Array2::<u32>::from_shape_fn((5, 2), |(t, b)| (1 + t + b) as u32); // [T, B]
/// let lengths = [5, 3];
/// let mut grads = Grads::zeros_like(&model);
/// let mut rng = rand::rng();
/// let out = model
///     .train_batch(SeqInput::Tokens(ids.view()), Some(&lengths), &[2, 0], &mut grads, &mut rng)
///     .unwrap();
/// assert!(out.loss.is_finite());
/// let logits = model.predict(SeqInput::Tokens(ids.view()), Some(&lengths)).unwrap();
/// assert_eq!(logits.shape(), &[2, 3]); // [B, C]
/// ```
#[derive(Clone, Debug)]
pub struct SequenceClassifier {
    encoder: Encoder,
    head: Linear,
    pooling: Pooling,
    /// Present exactly when `pooling` is `Attention`.
    attention: Option<AttentionPool>,
}

impl Module for SequenceClassifier {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        self.encoder.visit_params(prefix, f);
        if let Some(a) = &self.attention {
            a.visit_params(&join(prefix, "attention."), f);
        }
        self.head.visit_params(&join(prefix, "head."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.encoder.visit_params_mut(prefix, f);
        if let Some(a) = &mut self.attention {
            a.visit_params_mut(&join(prefix, "attention."), f);
        }
        self.head.visit_params_mut(&join(prefix, "head."), f);
    }
}

impl SequenceClassifier {
    /// A model with PyTorch's default initialization, seeded, for `num_classes` classes.
    /// Attention pooling's parameters are drawn from `seed + 2`.
    pub fn new(
        input: InputSpec,
        rnn: RnnConfig,
        num_classes: usize,
        pooling: Pooling,
        seed: u64,
    ) -> Result<Self> {
        let (encoder, head) = Encoder::with_head(input, rnn, num_classes, seed)?;
        let attention = (pooling == Pooling::Attention).then(|| {
            AttentionPool::new(encoder.rnn().config().output_size(), seed.wrapping_add(2))
        });
        Ok(SequenceClassifier {
            encoder,
            head,
            pooling,
            attention,
        })
    }

    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
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

    /// Quantizes the recurrent stack to int8 for inference ([`Rnn::quantize`]); the embedding, pooling and head
    /// stay f32. Returns the int8 kernel's name. Training the model afterwards is refused.
    pub fn quantize(&mut self) -> &'static str {
        self.encoder.rnn_mut().quantize()
    }

    /// The `[C, F]` output head.
    pub fn head(&self) -> &Linear {
        &self.head
    }

    /// How outputs are reduced over valid steps.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Attention pooling's parameters (`Pooling::Attention` only).
    pub fn attention(&self) -> Option<&AttentionPool> {
        self.attention.as_ref()
    }

    /// An empty [`OnlinePool`] for this model's pooling: push the stack's outputs step by step.
    pub fn online_pool(&self) -> OnlinePool {
        OnlinePool::new(self.pooling)
    }

    /// Logits `[C]` from a pooled vector `[F]` (the head alone, as a streaming detector needs).
    pub fn head_logits(&self, pooled: ndarray::ArrayView1<f32>) -> Result<ndarray::Array1<f32>> {
        Ok(self
            .head
            .forward(pooled.insert_axis(Axis(0)))?
            .index_axis_move(Axis(0), 0))
    }

    /// Forward and backward over one batch: `labels` `[B]`. Adds every gradient into `grads`;
    /// `rng` draws inter-layer dropout. Returns the mean cross-entropy and counts.
    pub fn train_batch(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        labels: &[usize],
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<CrossEntropyOutput> {
        Ok(self
            .train_batch_with_input_grad(input, lengths, labels, grads, rng)?
            .0)
    }

    /// [`SequenceClassifier::train_batch`] that also returns the gradient with respect to the
    /// stack's input `[T, B, I]` (the features, or the looked-up embeddings); zero at padding.
    pub fn train_batch_with_input_grad(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        labels: &[usize],
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<(CrossEntropyOutput, Array3<f32>)> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        check_labels(labels, batch)?;
        let (out, cache) = self.encoder.forward_train(input, &lens, rng)?;
        let bidir = self.rnn().config().bidirectional;
        let att = self.attention.as_ref();
        let (pooled, pool_cache) =
            pool_forward(self.pooling, att, out.output.view(), &lens, bidir)?;
        let logits = self.head.forward(pooled.view())?;
        let mut dz = Array2::zeros(logits.dim());
        let ce = CrossEntropy::default().forward_backward(logits.view(), labels, &mut dz)?;
        let g = &mut grads.0;
        let dp = self.head.backward(pooled.view(), dz.view(), &mut g.head)?;
        let dh = pool_backward(
            self.pooling,
            att,
            g.attention.as_mut(),
            out.output.view(),
            &lens,
            bidir,
            &pool_cache,
            dp.view(),
        )?;
        let dx = self.encoder.backward(&cache, dh.view(), &mut g.encoder)?;
        Ok((ce, dx))
    }

    /// Logits `[B, C]` (inference: no dropout, nothing kept).
    pub fn predict(&self, input: SeqInput, lengths: Option<&[usize]>) -> Result<Array2<f32>> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let out = self.encoder.forward(input, &lens)?;
        let bidir = self.rnn().config().bidirectional;
        let att = self.attention.as_ref();
        let (pooled, _) = pool_forward(self.pooling, att, out.output.view(), &lens, bidir)?;
        self.head.forward(pooled.view())
    }

    /// The loss only (evaluation): mean cross-entropy against `labels` `[B]`.
    pub fn evaluate(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        labels: &[usize],
    ) -> Result<CrossEntropyOutput> {
        check_labels(labels, input.dims().1)?;
        let logits = self.predict(input, lengths)?;
        CrossEntropy::default().forward(logits.view(), labels)
    }

    /// Gradient-through-time and gate diagnostics of the cross-entropy on (at most `max_rows`)
    /// full-length sequences of `batch`. `None` where the measure does not apply: feature input,
    /// pooling other than `Last`, a bidirectional stack, or no full-length sequence.
    pub fn diagnose(&self, batch: &PaddedBatch, max_rows: usize) -> Result<Option<Diagnosis>> {
        let Some(embedding) = self.encoder.embedding() else {
            return Ok(None);
        };
        let rnn = self.rnn();
        if self.pooling != Pooling::Last || rnn.config().bidirectional {
            return Ok(None);
        }
        let labels = class_labels(batch)?;
        let steps = batch.ids.nrows();
        let rows: Vec<usize> = (0..batch.lengths.len())
            .filter(|&i| batch.lengths[i] == steps)
            .take(max_rows.max(1))
            .collect();
        if rows.is_empty() || steps == 0 {
            return Ok(None);
        }
        let ids = batch.ids.select(Axis(1), &rows);
        let flat: Vec<usize> = ids.iter().map(|&t| t as usize).collect();
        let emb = embedding
            .forward(&flat)?
            .into_shape_with_order((steps, rows.len(), rnn.config().input_size))
            .map_err(|e| Error::Shape(e.to_string()))?;
        let out = rnn.forward(emb.view(), None, None)?;
        let last = out.output.slice(s![steps - 1, .., ..]).to_owned();
        let logits = self.head.forward(last.view())?;
        let mut dlogits = Array2::zeros(logits.dim());
        let y: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
        CrossEntropy::default().forward_backward(logits.view(), &y, &mut dlogits)?;
        let d_last = dlogits.dot(self.head.weight());
        Ok(Some(Diagnosis {
            profile: gradient_through_time(
                rnn,
                emb.view(),
                d_last.view(),
                &default_distances(steps),
            )?,
            gates: gate_stats(rnn, emb.view())?,
        }))
    }
}

fn check_labels(labels: &[usize], batch: usize) -> Result<()> {
    if labels.len() != batch {
        return Err(Error::Shape(format!(
            "{} labels for a batch of {batch} sequences",
            labels.len()
        )));
    }
    Ok(())
}

fn class_labels(batch: &PaddedBatch) -> Result<&[usize]> {
    match &batch.targets {
        BatchTargets::Classes(labels) => Ok(labels),
        BatchTargets::Tags(_) => Err(Error::Config(
            "a classifier got tagged examples (one label per token); use a tagger".into(),
        )),
    }
}

impl TrainStep for SequenceClassifier {
    type Batch = PaddedBatch;

    fn set_precision(&mut self, precision: Precision) -> Precision {
        self.encoder.rnn_mut().set_precision(precision)
    }

    /// `ln(classes)`: a uniform guess over the classes.
    fn chance_loss(&self) -> Option<f64> {
        Some((self.num_classes().max(1) as f64).ln())
    }

    fn train_batch(
        &self,
        b: &PaddedBatch,
        _carry: &mut Option<RnnState>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss> {
        let input = SeqInput::of_batch(b);
        let labels = class_labels(b)?;
        Ok(
            SequenceClassifier::train_batch(self, input, Some(&b.lengths), labels, grads, rng)?
                .into(),
        )
    }

    fn eval_batch(&self, b: &PaddedBatch, _carry: &mut Option<RnnState>) -> Result<BatchLoss> {
        let input = SeqInput::of_batch(b);
        Ok(self
            .evaluate(input, Some(&b.lengths), class_labels(b)?)?
            .into())
    }

    fn diagnose(&self, batch: &PaddedBatch) -> Result<Option<Diagnosis>> {
        SequenceClassifier::diagnose(self, batch, DIAGNOSIS_ROWS)
    }
}
