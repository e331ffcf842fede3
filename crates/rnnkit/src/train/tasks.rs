//! Models for the other three task shapes around the recurrent stack: sequence classification
//! (many-to-one), sequence tagging (aligned many-to-many) and forecasting (regression over a
//! multi-step horizon, multivariate). The language model is [`crate::train::lm`].
//!
//! Every model takes a padded, time-major batch with optional `lengths` (each in `1..=T`; absent
//! means every sequence has `T` steps). The input is either token ids `[T, B]` (looked up in an
//! [`Embedding`] of dimension `I`) or features `[T, B, I]`; see [`SeqInput`]. The stack runs with
//! packed-sequence semantics, so its output `h` `[T, B, F]` (`F = D·P`) is zero at padded steps,
//! and nothing computed here reads a padded step.
//!
//! # Forward and backward
//!
//! Shared front end (`x` ids or features, `ℓ_b` the length of sequence `b`):
//!
//! ```text
//! forward                                   backward
//! e = E[x]  (or e = x)      [T, B, I]       dE[x[t,b]] += de[t,b]   (padding id skipped)
//! h = rnn(e; ℓ)             [T, B, F]       de = rnn.backward(dh)   (dθ_rnn += …)
//! ```
//!
//! [`SequenceClassifier`] (pooling over valid steps `t < ℓ_b` only, see [`Pooling`]):
//!
//! ```text
//! Last (1 direction):  p[b] = h[ℓ_b−1, b]                dh[ℓ_b−1, b] += dp[b]
//! Last (2 directions): p[b] = [h→[ℓ_b−1, b], h←[0, b]]   dh→[ℓ_b−1, b] += dp→[b], dh←[0, b] += dp←[b]
//! Mean:                p[b] = (1/ℓ_b) Σ_{t<ℓ_b} h[t, b]  dh[t, b] += dp[b] / ℓ_b   (t < ℓ_b)
//! Max:                 p[b,f] = max_{t<ℓ_b} h[t, b, f]   dh[a[b,f], b, f] += dp[b,f]  (a = argmax,
//!                                                         first on ties)
//! z = p Wᵀ + c          [B, C]                           dp = dz W, dW += dzᵀ p, dc += Σ_b dz[b]
//! L = (1/B) Σ_b −log softmax(z[b])[y_b]                  dz = (softmax(z) − onehot(y)) / B
//! ```
//!
//! [`SequenceTagger`] (one label per valid step; padded steps are ignored targets):
//!
//! ```text
//! z = h Wᵀ + c          [T·B, C]  (row t·B + b)           dh = dz W, dW += dzᵀ h, dc += Σ dz
//! L = (1/N) Σ_{t<ℓ_b} −log softmax(z[t·B+b])[y[t,b]]     dz = (softmax − onehot)/N, 0 at padding
//!                                                        (N = Σ_b ℓ_b)
//! ```
//!
//! [`Forecaster`] (features only; the last valid step's output, `Last` pooling as above):
//!
//! ```text
//! p = Last(h)           [B, F]
//! ŷ = p Wᵀ + c          [B, H·K] viewed as [B, H, K]      dp = dŷ W, dW += dŷᵀ p, dc += Σ dŷ
//! L = (1/(B·H·K)) Σ (ŷ − y)²                              dŷ = 2 (ŷ − y) / (B·H·K)
//! ```
//!
//! Every backward adds (`+=`) into the gradient buffers of [`TaskGrads`], so several batches
//! accumulate; zero them between optimizer steps with [`TaskGrads::fill_zero`].
//!
//! # Last step of a bidirectional stack
//!
//! `Last` follows PyTorch practice for classifiers over a bidirectional stack: the forward
//! direction's output at the last valid step concatenated with the reverse direction's output at
//! step 0. Both are the directions' final states (`h_n` of the top layer), i.e. each direction
//! after it has read the whole valid sequence. (The reverse direction's output at `ℓ_b − 1` has
//! read only one step, so it is not used.)

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::module::{Module, TensorMut, TensorRef, join};
use crate::nn::loss::{CrossEntropyOutput, LossOutput};
use crate::nn::{CrossEntropy, Embedding, Linear, Regression, flat_mut};
use crate::params::RnnParams;
use crate::recurrent::{Rnn, Upstream};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A padded, time-major input batch: token ids `[T, B]` (for a model with an embedding) or
/// features `[T, B, I]` (for a model without one).
///
/// ```
/// use ndarray::{Array2, Array3};
/// use rnnkit::train::tasks::SeqInput;
/// let ids = Array2::<u32>::zeros((5, 2));
/// assert_eq!(SeqInput::Tokens(ids.view()).dims(), (5, 2));
/// let x = Array3::<f32>::zeros((5, 2, 3));
/// assert_eq!(SeqInput::Features(x.view()).dims(), (5, 2));
/// ```
#[derive(Clone, Copy, Debug)]
pub enum SeqInput<'a> {
    /// Token ids `[T, B]`.
    Tokens(ArrayView2<'a, u32>),
    /// Features `[T, B, I]`.
    Features(ArrayView3<'a, f32>),
}

impl SeqInput<'_> {
    /// `(T, B)`.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            SeqInput::Tokens(x) => x.dim(),
            SeqInput::Features(x) => (x.dim().0, x.dim().1),
        }
    }
}

/// What a model reads: token ids through an embedding of the stack's `input_size`, or features.
///
/// ```
/// use rnnkit::train::tasks::InputSpec;
/// let spec = InputSpec::Tokens { vocab: 100, padding_idx: Some(0) };
/// assert_ne!(spec, InputSpec::Features);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// Token ids below `vocab`; `padding_idx`'s embedding row gets no gradient.
    Tokens {
        /// Vocabulary size.
        vocab: usize,
        /// The padding id, if any.
        padding_idx: Option<usize>,
    },
    /// Feature vectors of the stack's `input_size`.
    Features,
}

/// How a [`SequenceClassifier`] reduces the stack's outputs over the valid steps of each
/// sequence to one vector (padded steps are never read).
///
/// ```
/// use rnnkit::train::tasks::Pooling;
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
}

/// Gradients of a task model, shaped like its parameters; backward adds into them.
///
/// ```
/// use rnnkit::train::tasks::{InputSpec, Pooling, SequenceClassifier};
/// use rnnkit::{CellKind, RnnConfig};
/// let m = SequenceClassifier::new(
///     InputSpec::Features, RnnConfig::new(CellKind::Gru, 3, 4), 2, Pooling::Mean, 0,
/// ).unwrap();
/// let mut g = m.zero_grads();
/// assert!(g.embedding.is_none());
/// g.fill_zero();
/// assert_eq!(g.slices_mut().len(), 4 + 2); // 4 stack tensors, head weight and bias
/// ```
#[derive(Clone, Debug)]
pub struct TaskGrads {
    /// `[V, I]`, when the model has an embedding.
    pub embedding: Option<Array2<f32>>,
    /// The recurrent stack.
    pub rnn: RnnParams,
    /// The output head.
    pub head: Linear,
}

impl TaskGrads {
    fn zeros(embedding: &Option<Embedding>, rnn: &Rnn, head: &Linear) -> Self {
        TaskGrads {
            embedding: embedding.as_ref().map(|e| Array2::zeros(e.weight.dim())),
            rnn: RnnParams::zeros(rnn.config()),
            head: head.zeros_like(),
        }
    }

    /// Sets every gradient to zero.
    pub fn fill_zero(&mut self) {
        if let Some(e) = &mut self.embedding {
            e.fill(0.0);
        }
        self.rnn.fill_zero();
        self.head.fill_zero();
    }

    /// Every gradient as a mutable slice (for clipping), in parameter order: embedding, stack,
    /// head weight, head bias.
    pub fn slices_mut(&mut self) -> Vec<&mut [f32]> {
        let std = "standard layout";
        let mut out: Vec<&mut [f32]> = Vec::new();
        if let Some(e) = &mut self.embedding {
            out.push(e.as_slice_mut().expect(std));
        }
        out.extend(self.rnn.tensors_mut());
        out.push(self.head.weight.as_slice_mut().expect(std));
        if let Some(b) = &mut self.head.bias {
            out.push(b.as_slice_mut().expect(std));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

fn make_parts(
    input: InputSpec,
    rnn: RnnConfig,
    head_out: usize,
    seed: u64,
) -> Result<(Option<Embedding>, Rnn, Linear)> {
    if head_out == 0 {
        return Err(Error::Config(
            "the output head needs at least one output".into(),
        ));
    }
    // Every size is checked before anything is allocated.
    rnn.validate()?;
    crate::nn::check_matrix_size("output head", head_out, rnn.output_size())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let embedding = match input {
        InputSpec::Tokens { vocab, padding_idx } => {
            if vocab == 0 {
                return Err(Error::Config("vocabulary size must be positive".into()));
            }
            Some(Embedding::new(
                vocab,
                rnn.input_size,
                padding_idx,
                &mut rng,
            )?)
        }
        InputSpec::Features => None,
    };
    let head = Linear::new(rnn.output_size(), head_out, true, &mut rng);
    let rnn = Rnn::new(rnn, &Init::default(), seed.wrapping_add(1))?;
    Ok((embedding, rnn, head))
}

/// Checks `lengths` against `(T, B)` and returns them (all `T` when absent).
fn resolve_lengths(lengths: Option<&[usize]>, steps: usize, batch: usize) -> Result<Vec<usize>> {
    if steps == 0 || batch == 0 {
        return Err(Error::Shape(format!(
            "the input batch must have at least one step and one sequence, got T = {steps}, \
             B = {batch}"
        )));
    }
    match lengths {
        None => Ok(vec![steps; batch]),
        Some(l) => {
            if l.len() != batch {
                return Err(Error::Shape(format!(
                    "{} lengths for a batch of {batch} sequences",
                    l.len()
                )));
            }
            if let Some((b, &len)) = l.iter().enumerate().find(|&(_, &n)| n == 0 || n > steps) {
                return Err(Error::Shape(format!(
                    "length {len} of sequence {b} is outside 1..={steps}"
                )));
            }
            Ok(l.to_vec())
        }
    }
}

/// The stack's input `[T, B, I]` and, for token input, the flattened ids.
fn front(
    embedding: &Option<Embedding>,
    rnn: &Rnn,
    input: SeqInput,
) -> Result<(Array3<f32>, Option<Vec<usize>>)> {
    let isz = rnn.config().input_size;
    match (embedding, input) {
        (Some(emb), SeqInput::Tokens(x)) => {
            let (t, b) = x.dim();
            let ids: Vec<usize> = x.iter().map(|&id| id as usize).collect();
            let e = emb.forward(&ids)?;
            let e3 = e
                .into_shape_with_order((t, b, isz))
                .map_err(|e| Error::Shape(e.to_string()))?;
            Ok((e3, Some(ids)))
        }
        (None, SeqInput::Features(x)) => {
            if x.dim().2 != isz {
                return Err(Error::Shape(format!(
                    "features are {:?}, the model expects [T, B, {isz}]",
                    x.shape()
                )));
            }
            Ok((x.to_owned(), None))
        }
        (Some(_), SeqInput::Features(_)) => Err(Error::Shape(
            "this model has an embedding and takes token ids [T, B], not features".into(),
        )),
        (None, SeqInput::Tokens(_)) => Err(Error::Shape(
            "this model has no embedding and takes features [T, B, I], not token ids".into(),
        )),
    }
}

/// Backward of [`front`]: scatters `de` into the embedding gradient (token input).
fn front_backward(
    embedding: &Option<Embedding>,
    ids: &Option<Vec<usize>>,
    de: &Array3<f32>,
    grads: &mut TaskGrads,
) -> Result<()> {
    if let (Some(emb), Some(ids)) = (embedding, ids) {
        let g = grads
            .embedding
            .as_mut()
            .ok_or_else(|| Error::Shape("the gradient buffer has no embedding gradient".into()))?;
        let (t, b, i) = de.dim();
        let de2 = de
            .view()
            .into_shape_with_order((t * b, i))
            .map_err(|e| Error::Shape(e.to_string()))?;
        emb.backward(ids, de2, g)?;
    }
    Ok(())
}

/// Pools `h` `[T, B, F]` over valid steps to `[B, F]`; for `Max` also returns the argmax steps.
fn pool_forward(
    pooling: Pooling,
    h: ArrayView3<f32>,
    lengths: &[usize],
    bidirectional: bool,
) -> (Array2<f32>, Option<Array2<usize>>) {
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
            (p, None)
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
            (p, None)
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
            (p, Some(arg))
        }
    }
}

/// Backward of [`pool_forward`]: `dp` `[B, F]` to `dh` `[T, B, F]`, zero at padded steps.
fn pool_backward(
    pooling: Pooling,
    dp: ArrayView2<f32>,
    lengths: &[usize],
    bidirectional: bool,
    argmax: Option<&Array2<usize>>,
    steps: usize,
) -> Array3<f32> {
    let (batch, f) = dp.dim();
    let half = f / 2;
    let mut dh = Array3::<f32>::zeros((steps, batch, f));
    for (b, &len) in lengths.iter().enumerate() {
        for k in 0..f {
            let g = dp[[b, k]];
            match pooling {
                Pooling::Last => {
                    let t = if bidirectional && k >= half {
                        0
                    } else {
                        len - 1
                    };
                    dh[[t, b, k]] += g;
                }
                Pooling::Mean => {
                    let s = g / len as f32;
                    for t in 0..len {
                        dh[[t, b, k]] += s;
                    }
                }
                Pooling::Max => {
                    let t = argmax.expect("max pooling keeps its argmax")[[b, k]];
                    dh[[t, b, k]] += g;
                }
            }
        }
    }
    dh
}

/// Visits `embedding.weight` (when present), `rnn.*`, `head.*`: the one list of a task model's
/// parameters, under PyTorch's names.
fn visit_parts<'a>(
    embedding: Option<&'a Embedding>,
    rnn: &'a Rnn,
    head: &'a Linear,
    prefix: &str,
    f: &mut dyn FnMut(&str, TensorRef<'a>),
) {
    if let Some(e) = embedding {
        e.visit_params(&join(prefix, "embedding."), f);
    }
    rnn.visit_params(&join(prefix, "rnn."), f);
    head.visit_params(&join(prefix, "head."), f);
}

/// Mutable form of [`visit_parts`].
fn visit_parts_mut<'a>(
    embedding: Option<&'a mut Embedding>,
    rnn: &'a mut Rnn,
    head: &'a mut Linear,
    prefix: &str,
    f: &mut dyn FnMut(&str, TensorMut<'a>),
) {
    if let Some(e) = embedding {
        e.visit_params_mut(&join(prefix, "embedding."), f);
    }
    rnn.visit_params_mut(&join(prefix, "rnn."), f);
    head.visit_params_mut(&join(prefix, "head."), f);
}

impl Module for SequenceClassifier {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        visit_parts(self.embedding.as_ref(), &self.rnn, &self.head, prefix, f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        visit_parts_mut(
            self.embedding.as_mut(),
            &mut self.rnn,
            &mut self.head,
            prefix,
            f,
        );
    }
}

impl Module for SequenceTagger {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        visit_parts(self.embedding.as_ref(), &self.rnn, &self.head, prefix, f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        visit_parts_mut(
            self.embedding.as_mut(),
            &mut self.rnn,
            &mut self.head,
            prefix,
            f,
        );
    }
}

impl Module for Forecaster {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        visit_parts(None, &self.rnn, &self.head, prefix, f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        visit_parts_mut(None, &mut self.rnn, &mut self.head, prefix, f);
    }
}

fn params_and_grads<'a>(
    embedding: Option<&'a mut Embedding>,
    rnn: &'a mut Rnn,
    head: &'a mut Linear,
    grads: &'a TaskGrads,
) -> Vec<(&'a mut [f32], &'a [f32])> {
    let std = "standard layout";
    let mut out: Vec<(&mut [f32], &[f32])> = Vec::new();
    if let (Some(e), Some(g)) = (embedding, &grads.embedding) {
        out.push((flat_mut(&mut e.weight), g.as_slice().expect(std)));
    }
    out.extend(rnn.params_mut().tensors_mut().zip(grads.rnn.tensors()));
    out.push((
        flat_mut(&mut head.weight),
        grads.head.weight.as_slice().expect(std),
    ));
    if let (Some(b), Some(g)) = (&mut head.bias, &grads.head.bias) {
        out.push((flat_mut(b), g.as_slice().expect(std)));
    }
    out
}

fn reshape2(a: Array3<f32>) -> Array2<f32> {
    let (t, b, f) = a.dim();
    a.into_shape_with_order((t * b, f)).expect("[T·B, F]")
}

// ---------------------------------------------------------------------------------------------
// Sequence classification.

/// Many-to-one classification: (embedding →) recurrent stack → pooling over valid steps →
/// linear head → softmax cross-entropy.
///
/// ```
/// use ndarray::Array2;
/// use rnnkit::train::tasks::{InputSpec, Pooling, SeqInput, SequenceClassifier};
/// use rnnkit::{CellKind, RnnConfig};
///
/// let cfg = RnnConfig::new(CellKind::Lstm, 4, 8).bidirectional(true);
/// let tokens = InputSpec::Tokens { vocab: 20, padding_idx: Some(0) };
/// let model = SequenceClassifier::new(tokens, cfg, 3, Pooling::Last, 0).unwrap();
/// let ids = Array2::<u32>::from_shape_fn((5, 2), |(t, b)| (1 + t + b) as u32); // [T, B]
/// let lengths = [5, 3];
/// let mut grads = model.zero_grads();
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
    /// `[V, I]` token embeddings, for token input.
    pub embedding: Option<Embedding>,
    /// The recurrent stack.
    pub rnn: Rnn,
    /// `[C, F]` → logits.
    pub head: Linear,
    /// How outputs are reduced over valid steps.
    pub pooling: Pooling,
}

impl SequenceClassifier {
    /// A model with PyTorch's default initialization, seeded, for `num_classes` classes.
    pub fn new(
        input: InputSpec,
        rnn: RnnConfig,
        num_classes: usize,
        pooling: Pooling,
        seed: u64,
    ) -> Result<Self> {
        let (embedding, rnn, head) = make_parts(input, rnn, num_classes, seed)?;
        Ok(SequenceClassifier {
            embedding,
            rnn,
            head,
            pooling,
        })
    }

    /// Number of classes `C`.
    pub fn num_classes(&self) -> usize {
        self.head.out_features()
    }

    /// Zeroed gradient buffers.
    pub fn zero_grads(&self) -> TaskGrads {
        TaskGrads::zeros(&self.embedding, &self.rnn, &self.head)
    }

    /// Every parameter with its gradient: embedding, stack (PyTorch order), head weight, bias.
    pub fn params_and_grads<'a>(
        &'a mut self,
        grads: &'a TaskGrads,
    ) -> Vec<(&'a mut [f32], &'a [f32])> {
        params_and_grads(
            self.embedding.as_mut(),
            &mut self.rnn,
            &mut self.head,
            grads,
        )
    }

    /// Forward and backward over one batch: `labels` `[B]`. Adds every gradient into `grads`;
    /// `rng` draws inter-layer dropout. Returns the mean cross-entropy and counts.
    pub fn train_batch(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        labels: &[usize],
        grads: &mut TaskGrads,
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
        grads: &mut TaskGrads,
        rng: &mut dyn RngCore,
    ) -> Result<(CrossEntropyOutput, Array3<f32>)> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        check_labels(labels, batch)?;
        let (e, ids) = front(&self.embedding, &self.rnn, input)?;
        let (out, cache) = self.rnn.forward_train(e.view(), None, Some(&lens), rng)?;
        let bidir = self.rnn.config().bidirectional;
        let (pooled, argmax) = pool_forward(self.pooling, out.output.view(), &lens, bidir);
        let logits = self.head.forward(pooled.view())?;
        let mut dz = Array2::zeros(logits.dim());
        let ce = CrossEntropy::default().forward_backward(logits.view(), labels, &mut dz)?;
        let dp = self
            .head
            .backward(pooled.view(), dz.view(), &mut grads.head)?;
        let dh = pool_backward(
            self.pooling,
            dp.view(),
            &lens,
            bidir,
            argmax.as_ref(),
            steps,
        );
        let dx = self
            .rnn
            .backward(&cache, &Upstream::output_only(dh.view()), &mut grads.rnn)?;
        front_backward(&self.embedding, &ids, &dx.input, grads)?;
        Ok((ce, dx.input))
    }

    /// Logits `[B, C]` (inference: no dropout, nothing kept).
    pub fn predict(&self, input: SeqInput, lengths: Option<&[usize]>) -> Result<Array2<f32>> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let (e, _) = front(&self.embedding, &self.rnn, input)?;
        let out = self.rnn.forward(e.view(), None, Some(&lens))?;
        let bidir = self.rnn.config().bidirectional;
        let (pooled, _) = pool_forward(self.pooling, out.output.view(), &lens, bidir);
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

// ---------------------------------------------------------------------------------------------
// Sequence tagging.

/// Aligned many-to-many tagging: (embedding →) recurrent stack → linear head on every step →
/// cross-entropy over valid steps (padded steps are ignored).
///
/// ```
/// use ndarray::{Array2, Array3};
/// use rnnkit::train::tasks::{InputSpec, SeqInput, SequenceTagger};
/// use rnnkit::{CellKind, RnnConfig};
///
/// let model = SequenceTagger::new(InputSpec::Features, RnnConfig::new(CellKind::Gru, 3, 6), 4, 0)
///     .unwrap();
/// let x = Array3::<f32>::ones((5, 2, 3)); // [T, B, I]
/// let tags = Array2::<usize>::zeros((5, 2)); // [T, B]; values at padded steps are ignored
/// let mut grads = model.zero_grads();
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
    /// `[V, I]` token embeddings, for token input.
    pub embedding: Option<Embedding>,
    /// The recurrent stack.
    pub rnn: Rnn,
    /// `[C, F]` → per-step logits.
    pub head: Linear,
}

impl SequenceTagger {
    /// A model with PyTorch's default initialization, seeded, for `num_tags` tags.
    pub fn new(input: InputSpec, rnn: RnnConfig, num_tags: usize, seed: u64) -> Result<Self> {
        let (embedding, rnn, head) = make_parts(input, rnn, num_tags, seed)?;
        Ok(SequenceTagger {
            embedding,
            rnn,
            head,
        })
    }

    /// Number of tags `C`.
    pub fn num_tags(&self) -> usize {
        self.head.out_features()
    }

    /// Zeroed gradient buffers.
    pub fn zero_grads(&self) -> TaskGrads {
        TaskGrads::zeros(&self.embedding, &self.rnn, &self.head)
    }

    /// Every parameter with its gradient: embedding, stack (PyTorch order), head weight, bias.
    pub fn params_and_grads<'a>(
        &'a mut self,
        grads: &'a TaskGrads,
    ) -> Vec<(&'a mut [f32], &'a [f32])> {
        params_and_grads(
            self.embedding.as_mut(),
            &mut self.rnn,
            &mut self.head,
            grads,
        )
    }

    /// Forward and backward over one batch: `tags` `[T, B]` (ignored at padded steps). Adds
    /// every gradient into `grads`. Returns the mean cross-entropy over valid steps.
    pub fn train_batch(
        &self,
        input: SeqInput,
        lengths: Option<&[usize]>,
        tags: ArrayView2<usize>,
        grads: &mut TaskGrads,
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
        grads: &mut TaskGrads,
        rng: &mut dyn RngCore,
    ) -> Result<(CrossEntropyOutput, Array3<f32>)> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let targets = tag_targets(tags, &lens, steps)?;
        let (e, ids) = front(&self.embedding, &self.rnn, input)?;
        let (out, cache) = self.rnn.forward_train(e.view(), None, Some(&lens), rng)?;
        let h2 = reshape2(out.output);
        let logits = self.head.forward(h2.view())?;
        let mut dz = Array2::zeros(logits.dim());
        let ce = CrossEntropy::default().forward_backward(logits.view(), &targets, &mut dz)?;
        let dh = self.head.backward(h2.view(), dz.view(), &mut grads.head)?;
        let f = dh.ncols();
        let dh3 = dh
            .into_shape_with_order((steps, batch, f))
            .expect("[T, B, F]");
        let dx = self
            .rnn
            .backward(&cache, &Upstream::output_only(dh3.view()), &mut grads.rnn)?;
        front_backward(&self.embedding, &ids, &dx.input, grads)?;
        Ok((ce, dx.input))
    }

    /// Logits `[T·B, C]` (row `t·B + b`; padded rows hold the head's bias). Inference.
    pub fn predict(&self, input: SeqInput, lengths: Option<&[usize]>) -> Result<Array2<f32>> {
        let (steps, batch) = input.dims();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let (e, _) = front(&self.embedding, &self.rnn, input)?;
        let out = self.rnn.forward(e.view(), None, Some(&lens))?;
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

// ---------------------------------------------------------------------------------------------
// Forecasting.

/// Regression from a lookback window of features `[T, B, I]` to the next `horizon` steps of
/// `targets` variables: recurrent stack → last valid step (as [`Pooling::Last`]) → linear head
/// `[B, horizon·targets]` → mean squared error.
///
/// ```
/// use ndarray::{Array3};
/// use rnnkit::train::tasks::Forecaster;
/// use rnnkit::{CellKind, RnnConfig};
///
/// let model = Forecaster::new(RnnConfig::new(CellKind::Lstm, 2, 8), 3, 2, 0).unwrap();
/// let x = Array3::<f32>::zeros((6, 4, 2)); // [T, B, I]
/// let y = Array3::<f32>::zeros((4, 3, 2)); // [B, horizon, targets]
/// let mut grads = model.zero_grads();
/// let out = model.train_batch(x.view(), None, y.view(), &mut grads, &mut rand::rng()).unwrap();
/// assert_eq!(out.count, 24);
/// assert_eq!(model.predict(x.view(), None).unwrap().shape(), &[4, 3, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Forecaster {
    /// The recurrent stack.
    pub rnn: Rnn,
    /// `[horizon·targets, F]`.
    pub head: Linear,
    /// Steps predicted.
    pub horizon: usize,
    /// Variables predicted per step.
    pub targets: usize,
}

impl Forecaster {
    /// A model with PyTorch's default initialization, seeded.
    pub fn new(rnn: RnnConfig, horizon: usize, targets: usize, seed: u64) -> Result<Self> {
        if horizon == 0 || targets == 0 {
            return Err(Error::Config(format!(
                "horizon ({horizon}) and targets ({targets}) must be positive"
            )));
        }
        let (_, rnn, head) = make_parts(InputSpec::Features, rnn, horizon * targets, seed)?;
        Ok(Forecaster {
            rnn,
            head,
            horizon,
            targets,
        })
    }

    /// Zeroed gradient buffers (no embedding).
    pub fn zero_grads(&self) -> TaskGrads {
        TaskGrads::zeros(&None, &self.rnn, &self.head)
    }

    /// Every parameter with its gradient: stack (PyTorch order), head weight, bias.
    pub fn params_and_grads<'a>(
        &'a mut self,
        grads: &'a TaskGrads,
    ) -> Vec<(&'a mut [f32], &'a [f32])> {
        params_and_grads(None, &mut self.rnn, &mut self.head, grads)
    }

    fn check_head(&self) -> Result<()> {
        if self.head.out_features() != self.horizon * self.targets {
            return Err(Error::Params(format!(
                "the head has {} outputs, horizon × targets is {} × {}",
                self.head.out_features(),
                self.horizon,
                self.targets
            )));
        }
        Ok(())
    }

    /// Forward and backward over one batch: `target` `[B, horizon, targets]`. Adds every
    /// gradient into `grads`. Returns the mean squared error.
    pub fn train_batch(
        &self,
        input: ArrayView3<f32>,
        lengths: Option<&[usize]>,
        target: ArrayView3<f32>,
        grads: &mut TaskGrads,
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
        grads: &mut TaskGrads,
        rng: &mut dyn RngCore,
    ) -> Result<(LossOutput, Array3<f32>)> {
        self.check_head()?;
        let (steps, batch, _) = input.dim();
        let lens = resolve_lengths(lengths, steps, batch)?;
        self.check_target(target, batch)?;
        let (e, _) = front(&None, &self.rnn, SeqInput::Features(input))?;
        let (out, cache) = self.rnn.forward_train(e.view(), None, Some(&lens), rng)?;
        let bidir = self.rnn.config().bidirectional;
        let (last, _) = pool_forward(Pooling::Last, out.output.view(), &lens, bidir);
        let pred = self.head.forward(last.view())?;
        let t2 = target
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((batch, self.horizon * self.targets))
            .expect("[B, H·K]");
        let mut dpred = Array2::zeros(pred.dim());
        let loss = Regression::Mse.forward_backward(pred.view(), t2.view(), None, &mut dpred)?;
        let dlast = self
            .head
            .backward(last.view(), dpred.view(), &mut grads.head)?;
        let dh = pool_backward(Pooling::Last, dlast.view(), &lens, bidir, None, steps);
        let dx = self
            .rnn
            .backward(&cache, &Upstream::output_only(dh.view()), &mut grads.rnn)?;
        Ok((loss, dx.input))
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
        self.check_head()?;
        let (steps, batch, _) = input.dim();
        let lens = resolve_lengths(lengths, steps, batch)?;
        let out = self.rnn.forward(
            front(&None, &self.rnn, SeqInput::Features(input))?.0.view(),
            None,
            Some(&lens),
        )?;
        let bidir = self.rnn.config().bidirectional;
        let (last, _) = pool_forward(Pooling::Last, out.output.view(), &lens, bidir);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CellKind;

    const EPS: f32 = 5e-3;

    trait Pg {
        fn pg<'a>(&'a mut self, g: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])>;
    }
    impl Pg for SequenceClassifier {
        fn pg<'a>(&'a mut self, g: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])> {
            self.params_and_grads(g)
        }
    }
    impl Pg for SequenceTagger {
        fn pg<'a>(&'a mut self, g: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])> {
            self.params_and_grads(g)
        }
    }
    impl Pg for Forecaster {
        fn pg<'a>(&'a mut self, g: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])> {
            self.params_and_grads(g)
        }
    }

    fn close(label: &str, an: f64, fd: f64) {
        let tol = 5e-3 + 5e-2 * an.abs().max(fd.abs());
        assert!(
            (an - fd).abs() <= tol,
            "{label}: analytic {an:.6e}, finite difference {fd:.6e}"
        );
    }

    /// Central differences of every parameter tensor (up to 10 elements each).
    fn check_params<M: Pg>(label: &str, m: &mut M, g: &TaskGrads, loss: impl Fn(&M) -> f64) {
        let n = m.pg(g).len();
        for i in 0..n {
            let len = m.pg(g)[i].0.len();
            let stride = (len / 10).max(1);
            for k in (0..len).step_by(stride) {
                let orig = m.pg(g)[i].0[k];
                m.pg(g)[i].0[k] = orig + EPS;
                let up = loss(m);
                m.pg(g)[i].0[k] = orig - EPS;
                let down = loss(m);
                m.pg(g)[i].0[k] = orig;
                let fd = (up - down) / (2.0 * EPS as f64);
                let an = m.pg(g)[i].1[k] as f64;
                close(&format!("{label} tensor {i}[{k}]"), an, fd);
            }
        }
    }

    fn check_input(
        label: &str,
        x: &Array3<f32>,
        dx: &Array3<f32>,
        loss: impl Fn(&Array3<f32>) -> f64,
    ) {
        let mut x = x.clone();
        for (idx, &an) in dx.indexed_iter() {
            let orig = x[idx];
            x[idx] = orig + EPS;
            let up = loss(&x);
            x[idx] = orig - EPS;
            let down = loss(&x);
            x[idx] = orig;
            close(
                &format!("{label} input {idx:?}"),
                an as f64,
                (up - down) / (2.0 * EPS as f64),
            );
        }
    }

    fn features(t: usize, b: usize, i: usize, seed: u64) -> Array3<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        use rand::Rng;
        Array3::from_shape_fn((t, b, i), |_| rng.random_range(-1.0..1.0))
    }

    fn configs() -> Vec<(&'static str, RnnConfig)> {
        vec![
            (
                "lstm 2 layers",
                RnnConfig::new(CellKind::Lstm, 2, 3).num_layers(2),
            ),
            (
                "gru bidirectional",
                RnnConfig::new(CellKind::Gru, 2, 3).bidirectional(true),
            ),
        ]
    }

    const LENS: [usize; 3] = [4, 2, 3];

    #[test]
    fn classifier_gradients_every_pooling() {
        let x = features(4, 3, 2, 5);
        let labels = [1, 0, 2];
        for (name, cfg) in configs() {
            for pooling in [Pooling::Last, Pooling::Mean, Pooling::Max] {
                let label = format!("classifier {name} {pooling:?}");
                let mut m =
                    SequenceClassifier::new(InputSpec::Features, cfg.clone(), 3, pooling, 3)
                        .unwrap();
                let mut g = m.zero_grads();
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                let (_, dx) = m
                    .train_batch_with_input_grad(
                        SeqInput::Features(x.view()),
                        Some(&LENS),
                        &labels,
                        &mut g,
                        &mut rng,
                    )
                    .unwrap();
                let loss = |m: &SequenceClassifier, x: &Array3<f32>| {
                    m.evaluate(SeqInput::Features(x.view()), Some(&LENS), &labels)
                        .unwrap()
                        .mean_nll()
                };
                check_params(&label, &mut m, &g, |m| loss(m, &x));
                check_input(&label, &x, &dx, |x| loss(&m, x));
                // Padded steps get no input gradient.
                for (b, &len) in LENS.iter().enumerate() {
                    for t in len..4 {
                        assert!(dx.slice(ndarray::s![t, b, ..]).iter().all(|&v| v == 0.0));
                    }
                }
            }
        }
    }

    #[test]
    fn classifier_token_input_gradients() {
        let ids = Array2::<u32>::from_shape_fn((4, 3), |(t, b)| ((t * 3 + b) % 6) as u32);
        let tokens = InputSpec::Tokens {
            vocab: 6,
            padding_idx: Some(0),
        };
        let cfg = RnnConfig::new(CellKind::Lstm, 2, 3).bidirectional(true);
        let mut m = SequenceClassifier::new(tokens, cfg, 2, Pooling::Mean, 1).unwrap();
        let mut g = m.zero_grads();
        let labels = [1, 0, 1];
        m.train_batch(
            SeqInput::Tokens(ids.view()),
            Some(&LENS),
            &labels,
            &mut g,
            &mut ChaCha8Rng::seed_from_u64(0),
        )
        .unwrap();
        assert!(
            g.embedding
                .as_ref()
                .unwrap()
                .row(0)
                .iter()
                .all(|&v| v == 0.0)
        );
        check_params("classifier tokens", &mut m, &g, |m| {
            m.evaluate(SeqInput::Tokens(ids.view()), Some(&LENS), &labels)
                .unwrap()
                .mean_nll()
        });
    }

    #[test]
    fn tagger_gradients() {
        let x = features(4, 3, 2, 7);
        let tags = Array2::<usize>::from_shape_fn((4, 3), |(t, b)| (t + 2 * b) % 3);
        for (name, cfg) in configs() {
            let label = format!("tagger {name}");
            let mut m = SequenceTagger::new(InputSpec::Features, cfg, 3, 2).unwrap();
            let mut g = m.zero_grads();
            let (out, dx) = m
                .train_batch_with_input_grad(
                    SeqInput::Features(x.view()),
                    Some(&LENS),
                    tags.view(),
                    &mut g,
                    &mut ChaCha8Rng::seed_from_u64(0),
                )
                .unwrap();
            assert_eq!(out.count, 9);
            let loss = |m: &SequenceTagger, x: &Array3<f32>| {
                m.evaluate(SeqInput::Features(x.view()), Some(&LENS), tags.view())
                    .unwrap()
                    .mean_nll()
            };
            check_params(&label, &mut m, &g, |m| loss(m, &x));
            check_input(&label, &x, &dx, |x| loss(&m, x));
        }
    }

    #[test]
    fn forecaster_gradients() {
        let x = features(4, 3, 2, 9);
        let y = features(3, 2, 2, 10); // [B, horizon, targets]
        for (name, cfg) in configs() {
            let label = format!("forecaster {name}");
            let mut m = Forecaster::new(cfg, 2, 2, 4).unwrap();
            let mut g = m.zero_grads();
            let (out, dx) = m
                .train_batch_with_input_grad(
                    x.view(),
                    Some(&LENS),
                    y.view(),
                    &mut g,
                    &mut ChaCha8Rng::seed_from_u64(0),
                )
                .unwrap();
            assert_eq!(out.count, 12);
            let loss = |m: &Forecaster, x: &Array3<f32>| {
                let o = m.evaluate(x.view(), Some(&LENS), y.view()).unwrap();
                o.sum / o.count as f64
            };
            check_params(&label, &mut m, &g, |m| loss(m, &x));
            check_input(&label, &x, &dx, |x| loss(&m, x));
            assert_eq!(
                m.predict(x.view(), Some(&LENS)).unwrap().shape(),
                &[3, 2, 2]
            );
        }
    }

    #[test]
    fn padded_steps_change_nothing() {
        let x = features(4, 3, 2, 11);
        let mut x2 = x.clone();
        for (b, &len) in LENS.iter().enumerate() {
            for t in len..4 {
                x2.slice_mut(ndarray::s![t, b, ..]).fill(100.0);
            }
        }
        let labels = [0, 1, 1];
        for (_, cfg) in configs() {
            for pooling in [Pooling::Last, Pooling::Mean, Pooling::Max] {
                let m = SequenceClassifier::new(InputSpec::Features, cfg.clone(), 2, pooling, 3)
                    .unwrap();
                let run = |x: &Array3<f32>| {
                    let mut g = m.zero_grads();
                    m.train_batch(
                        SeqInput::Features(x.view()),
                        Some(&LENS),
                        &labels,
                        &mut g,
                        &mut ChaCha8Rng::seed_from_u64(0),
                    )
                    .unwrap();
                    (
                        m.predict(SeqInput::Features(x.view()), Some(&LENS))
                            .unwrap(),
                        g,
                    )
                };
                let ((p1, g1), (p2, g2)) = (run(&x), run(&x2));
                assert_eq!(p1, p2, "{pooling:?}");
                assert_eq!(g1.head, g2.head);
                assert!(g1.rnn.tensors().zip(g2.rnn.tensors()).all(|(a, b)| a == b));
            }
            let t = SequenceTagger::new(InputSpec::Features, cfg.clone(), 2, 0).unwrap();
            let tags = Array2::<usize>::zeros((4, 3));
            let e1 = t
                .evaluate(SeqInput::Features(x.view()), Some(&LENS), tags.view())
                .unwrap();
            let e2 = t
                .evaluate(SeqInput::Features(x2.view()), Some(&LENS), tags.view())
                .unwrap();
            assert_eq!(e1, e2);
            let f = Forecaster::new(cfg, 2, 1, 0).unwrap();
            assert_eq!(
                f.predict(x.view(), Some(&LENS)).unwrap(),
                f.predict(x2.view(), Some(&LENS)).unwrap()
            );
        }
    }

    #[test]
    fn bidirectional_last_is_h_n_of_each_direction() {
        let x = features(4, 3, 2, 12);
        let cfg = RnnConfig::new(CellKind::Gru, 2, 3).bidirectional(true);
        let m = SequenceClassifier::new(InputSpec::Features, cfg, 2, Pooling::Last, 0).unwrap();
        let out = m.rnn.forward(x.view(), None, Some(&LENS)).unwrap();
        let (pooled, _) = pool_forward(Pooling::Last, out.output.view(), &LENS, true);
        for b in 0..3 {
            for k in 0..3 {
                assert_eq!(pooled[[b, k]], out.state.h[[0, b, k]]);
                assert_eq!(pooled[[b, 3 + k]], out.state.h[[1, b, k]]);
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = features(4, 3, 2, 1);
        let cfg = RnnConfig::new(CellKind::Lstm, 2, 3);
        let m =
            SequenceClassifier::new(InputSpec::Features, cfg.clone(), 2, Pooling::Max, 0).unwrap();
        let mut g = m.zero_grads();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let fx = SeqInput::Features(x.view());
        assert!(m.train_batch(fx, None, &[0, 1], &mut g, &mut rng).is_err()); // labels
        assert!(
            m.train_batch(fx, Some(&[4, 0, 1]), &[0, 1, 1], &mut g, &mut rng)
                .is_err()
        );
        assert!(
            m.train_batch(fx, Some(&[5, 1, 1]), &[0, 1, 1], &mut g, &mut rng)
                .is_err()
        );
        assert!(
            m.train_batch(fx, Some(&[4, 1]), &[0, 1, 1], &mut g, &mut rng)
                .is_err()
        );
        assert!(
            m.train_batch(fx, None, &[0, 1, 2], &mut g, &mut rng)
                .is_err()
        ); // class 2 of 2
        let ids = Array2::<u32>::zeros((4, 3));
        assert!(m.predict(SeqInput::Tokens(ids.view()), None).is_err());
        let wide = features(4, 3, 5, 1);
        assert!(m.predict(SeqInput::Features(wide.view()), None).is_err());
        let empty = Array3::<f32>::zeros((0, 3, 2));
        assert!(m.predict(SeqInput::Features(empty.view()), None).is_err());
        let other =
            SequenceClassifier::new(InputSpec::Features, cfg.clone(), 3, Pooling::Max, 0).unwrap();
        let mut g3 = other.zero_grads();
        assert!(
            m.train_batch(fx, None, &[0, 1, 1], &mut g3, &mut rng)
                .is_err()
        ); // grads shape

        let tok = SequenceTagger::new(
            InputSpec::Tokens {
                vocab: 3,
                padding_idx: None,
            },
            cfg.clone(),
            2,
            0,
        )
        .unwrap();
        assert!(tok.predict(fx, None).is_err());
        let bad_ids = Array2::<u32>::from_elem((4, 3), 7);
        assert!(tok.predict(SeqInput::Tokens(bad_ids.view()), None).is_err());
        let tags = Array2::<usize>::zeros((3, 3));
        assert!(
            tok.evaluate(SeqInput::Tokens(ids.view()), None, tags.view())
                .is_err()
        );

        let f = Forecaster::new(cfg.clone(), 2, 2, 0).unwrap();
        let mut gf = f.zero_grads();
        let y = Array3::<f32>::zeros((3, 2, 1));
        assert!(
            f.train_batch(x.view(), None, y.view(), &mut gf, &mut rng)
                .is_err()
        );
        assert!(Forecaster::new(cfg.clone(), 0, 2, 0).is_err());
        assert!(SequenceClassifier::new(InputSpec::Features, cfg, 0, Pooling::Last, 0).is_err());
    }
}
