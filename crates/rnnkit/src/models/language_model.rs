//! The language model of PyTorch's word_language_model example: embedding → recurrent stack →
//! linear decoder → softmax cross-entropy, trained chunk by chunk with truncated BPTT.
//!
//! Parameter names are that example's (`embedding.weight`, `rnn.weight_ih_l0`, …,
//! `decoder.weight`, `decoder.bias`), so a saved model loads into the PyTorch model with
//! `load_state_dict`.
//!
//! Forward for a chunk of `T` steps of `B` streams (ids `x`, targets `y`, both `[T, B]`):
//!
//! ```text
//! e = E[x]                       [T·B, D]   embedding rows
//! h, state' = rnn(e, state)      [T, B, H]  state carried from the previous chunk, detached
//! z = h Wᵀ + b                   [T·B, V]   logits
//! L = mean −log softmax(z)[y]
//! ```
//!
//! Backward walks the same path in reverse: `dz` from the fused cross-entropy, `dh = dz W`,
//! `dW += dzᵀ h`, `de` from the stack's backward, scattered into `dE` by id.

use super::train_step::{BatchLoss, DIAGNOSIS_ROWS, TrainStep};
use crate::config::RnnConfig;
use crate::data::stream::StreamChunk;
use crate::diagnostics::Diagnosis;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::module::{self, Grads, Module, TensorMut, TensorRef, join};
use crate::nn::linear::{tensor_mut, tensor_ref};
use crate::nn::{
    CrossEntropy, Dropout, Embedding, EmbeddingDropout, Linear, LockedDropout, WeightDrop,
};
use crate::params::RnnParams;
use crate::precision::Precision;
use crate::recurrent::{Rnn, RnnState, Upstream};
use ndarray::{Array1, Array2, Array3, ArrayD, ArrayView2};
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Embedding → recurrent stack → decoder.
#[derive(Clone, Debug)]
pub struct LanguageModel {
    /// `[V, D]` token embeddings (`embedding.weight`).
    embedding: Embedding,
    /// The recurrent stack (`rnn.*`); its `input_size` is `D`.
    rnn: Rnn,
    /// `[V, F]` → logits (`decoder.weight`, `decoder.bias`), or tied to the embedding.
    decoder: Decoder,
    /// Dropout around the stack (AWD-LSTM style), training only. Default: none.
    dropout: LmDropout,
}

/// The decoder of a [`LanguageModel`]: a linear layer of its own, or tied to the embedding
/// matrix (Press & Wolf 2017; Inan et al. 2017), when both uses add into the one gradient.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoder {
    /// `decoder.weight` `[V, F]` and `decoder.bias` of its own.
    Untied(Linear),
    /// The embedding matrix as weight; only the bias (`decoder.bias`) is the decoder's.
    Tied {
        /// `[V]`, if any.
        bias: Option<Array1<f32>>,
    },
}

impl Decoder {
    /// The bias `[V]`, if any.
    pub fn bias(&self) -> Option<&Array1<f32>> {
        match self {
            Decoder::Untied(l) => l.bias.as_ref(),
            Decoder::Tied { bias } => bias.as_ref(),
        }
    }
}

/// Dropout of a language model outside the stack (the stack's own `dropout` acts between its
/// layers). Each is a probability in `[0, 1)`; 0 turns it off. Drawn from the training RNG.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmDropout {
    /// Embedding dropout: whole words (vocabulary rows) dropped for the chunk (Gal & Ghahramani).
    pub words: f32,
    /// Locked (variational) dropout on the embedded input: one mask per sequence, shared over time.
    pub input: f32,
    /// Locked dropout on the stack's output, before the decoder.
    pub output: f32,
    /// Weight drop (DropConnect, AWD-LSTM): elements of every hidden-to-hidden matrix
    /// `weight_hh` dropped for the chunk, the same mask at every step.
    pub weight_hh: f32,
    /// Draw the `input` and `output` masks per element and step (PyTorch's `nn.Dropout`, as
    /// in Zaremba et al. 2014 and the word_language_model example) instead of once per
    /// sequence. Default false: locked.
    pub elementwise: bool,
}

impl LmDropout {
    /// Checks each probability is in `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        for (name, p) in [
            ("words", self.words),
            ("input", self.input),
            ("output", self.output),
            ("weight_hh", self.weight_hh),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::Config(format!(
                    "dropout.{name} must be in [0, 1), got {p}"
                )));
            }
        }
        Ok(())
    }
}

/// A dropout mask of a `[T, B, F]` tensor.
enum StepMask {
    /// `[B, F]`, shared by every step.
    Locked(Array2<f32>),
    /// `[T, B, F]`, one draw per element.
    Element(Array3<f32>),
}

/// Dropout of `x` `[T, B, F]` when `p > 0` (returns the mask), else `x` unchanged: locked, or
/// per element when `elementwise`.
fn drop_steps(
    x: Array3<f32>,
    p: f32,
    elementwise: bool,
    rng: &mut dyn RngCore,
) -> Result<(Array3<f32>, Option<StepMask>)> {
    if p == 0.0 {
        return Ok((x, None));
    }
    if elementwise {
        let (y, mask) = Dropout::new(p)?.forward(x.view(), true, rng);
        Ok((y, mask.map(StepMask::Element)))
    } else {
        let (y, mask) = LockedDropout::new(p)?.forward(x.view(), true, rng)?;
        Ok((y, mask.map(StepMask::Locked)))
    }
}

/// The backward of [`drop_steps`].
fn drop_steps_back(dy: Array3<f32>, mask: &Option<StepMask>) -> Result<Array3<f32>> {
    match mask {
        Some(StepMask::Locked(m)) => LockedDropout::backward(dy.view(), Some(m.view())),
        Some(StepMask::Element(m)) => crate::nn::dropout::multiply(dy.view(), m.view()),
        None => Ok(dy),
    }
}

/// What one chunk reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkLoss {
    /// Mean cross-entropy over the chunk (nats per token).
    pub loss: f32,
    /// Summed negative log-likelihood, for perplexity over many chunks.
    pub nll_sum: f64,
    /// Tokens counted.
    pub count: usize,
}

impl Module for LanguageModel {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        self.embedding.visit_params(&join(prefix, "embedding."), f);
        self.rnn.visit_params(&join(prefix, "rnn."), f);
        let prefix = join(prefix, "decoder.");
        match &self.decoder {
            Decoder::Untied(l) => l.visit_params(&prefix, f),
            // The tied weight is the embedding's, visited above; only the bias is the decoder's.
            Decoder::Tied { bias } => {
                if let Some(b) = bias {
                    f(&join(&prefix, "bias"), tensor_ref(b));
                }
            }
        }
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.embedding
            .visit_params_mut(&join(prefix, "embedding."), f);
        self.rnn.visit_params_mut(&join(prefix, "rnn."), f);
        let prefix = join(prefix, "decoder.");
        match &mut self.decoder {
            Decoder::Untied(l) => l.visit_params_mut(&prefix, f),
            Decoder::Tied { bias } => {
                if let Some(b) = bias {
                    f(&join(&prefix, "bias"), tensor_mut(b));
                }
            }
        }
    }

    fn aliases(&self, prefix: &str) -> Vec<(String, String)> {
        if self.is_tied() {
            vec![(
                join(prefix, "decoder.weight"),
                join(prefix, "embedding.weight"),
            )]
        } else {
            Vec::new()
        }
    }
}

impl LanguageModel {
    /// A model with PyTorch's default initialization, seeded.
    ///
    /// ```
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let lm = LanguageModel::new(50, RnnConfig::new(CellKind::Lstm, 8, 16), 0).unwrap();
    /// assert_eq!(lm.vocab_size(), 50);
    /// ```
    pub fn new(vocab: usize, rnn: RnnConfig, seed: u64) -> Result<Self> {
        // Every size is checked before anything is allocated.
        rnn.validate()?;
        crate::nn::check_matrix_size("decoder", vocab, rnn.output_size())?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let embedding = Embedding::new(vocab, rnn.input_size, None, &mut rng)?;
        let decoder = Linear::new(rnn.output_size(), vocab, true, &mut rng);
        let rnn = Rnn::new(rnn, &Init::default(), seed.wrapping_add(1))?;
        Ok(LanguageModel {
            embedding,
            rnn,
            decoder: Decoder::Untied(decoder),
            dropout: LmDropout::default(),
        })
    }

    /// The token embedding `[V, D]`.
    pub fn embedding(&self) -> &Embedding {
        &self.embedding
    }

    /// The recurrent stack.
    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    /// Quantizes the recurrent stack to int8 for inference ([`Rnn::quantize`]); the embedding and the decoder
    /// stay f32. Returns the int8 kernel's name. Training the model afterwards is refused.
    pub fn quantize(&mut self) -> &'static str {
        self.rnn.quantize()
    }

    /// The decoder (its own linear layer, or tied to the embedding).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Whether the decoder uses the embedding matrix (see [`LanguageModel::tie`]).
    pub fn is_tied(&self) -> bool {
        matches!(self.decoder, Decoder::Tied { .. })
    }

    /// Dropout around the stack.
    pub fn dropout(&self) -> LmDropout {
        self.dropout
    }

    /// Sets the dropout around the stack (each probability in `[0, 1)`).
    ///
    /// ```
    /// use rnnkit::models::{LanguageModel, LmDropout};
    /// use rnnkit::{CellKind, RnnConfig};
    /// let mut lm = LanguageModel::new(9, RnnConfig::new(CellKind::Gru, 4, 4), 0).unwrap();
    /// lm.set_dropout(LmDropout { output: 0.3, ..Default::default() }).unwrap();
    /// assert!(lm.set_dropout(LmDropout { words: 1.0, ..Default::default() }).is_err());
    /// assert_eq!(lm.dropout().output, 0.3);
    /// ```
    pub fn set_dropout(&mut self, dropout: LmDropout) -> Result<()> {
        dropout.validate()?;
        self.dropout = dropout;
        Ok(())
    }

    /// Ties the decoder's weight to the embedding matrix (it needs the embedding size, the
    /// stack's `input_size`, to equal the stack's output size). The decoder's own weight is
    /// dropped, its bias kept; saved files still carry `decoder.weight` (a copy), as PyTorch's
    /// state_dict does. Tying a tied model changes nothing.
    ///
    /// ```
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let mut lm = LanguageModel::new(30, RnnConfig::new(CellKind::Lstm, 16, 16), 0).unwrap();
    /// lm.tie().unwrap();
    /// assert!(lm.param_names().iter().all(|n| n != "decoder.weight"));
    /// let mut other = LanguageModel::new(30, RnnConfig::new(CellKind::Lstm, 8, 16), 0).unwrap();
    /// assert!(other.tie().is_err());
    /// ```
    pub fn tie(&mut self) -> Result<()> {
        let (d, out) = (
            self.rnn.config().input_size,
            self.rnn.config().output_size(),
        );
        if d != out {
            return Err(Error::Config(format!(
                "weight tying needs the embedding size ({d}) to equal the recurrent output size \
                 ({out}): set input_size = hidden_size (or proj_size)"
            )));
        }
        let bias = self.decoder.bias().cloned();
        self.decoder = Decoder::Tied { bias };
        Ok(())
    }

    /// The decoder's weight matrix `[V, F]` (the embedding matrix when tied).
    pub fn decoder_weight(&self) -> ArrayView2<'_, f32> {
        match &self.decoder {
            Decoder::Untied(l) => l.weight.view(),
            Decoder::Tied { .. } => self.embedding.weight.view(),
        }
    }

    fn decode(&self, h: ArrayView2<f32>) -> Result<Array2<f32>> {
        let bias = self.decoder.bias().map(|b| b.view());
        // The logits are the step's largest array (WikiText-2: 400 × 33,280 floats, 53 MB):
        // from the stack's workspace, so its pages stay mapped between steps (give it back
        // with `recycle`).
        let buffer = self
            .rnn
            .workspace()
            .take_capacity(h.nrows() * self.vocab_size());
        // The decoder runs in the stack's precision, as autocast runs `linear` in bf16 too.
        let precision = self.rnn.precision();
        crate::nn::linear::forward_into_in(h, self.decoder_weight(), bias, buffer, precision)
    }

    /// Gives a [`LanguageModel::decode`] buffer back to the workspace.
    fn recycle(&self, a: Array2<f32>) {
        let (v, _) = a.into_raw_vec_and_offset();
        self.rnn.workspace().recycle(v);
    }

    /// Vocabulary size `V`.
    pub fn vocab_size(&self) -> usize {
        self.embedding.num_embeddings()
    }

    /// Every parameter under PyTorch's names (a tied model's `decoder.weight` too, as a copy
    /// of the embedding, as PyTorch's `state_dict` has it).
    pub fn named_tensors(&self) -> BTreeMap<String, ArrayD<f32>> {
        module::named_tensors(self, "")
    }

    /// A model from PyTorch-named tensors (a `state_dict`); every tensor is checked.
    pub fn from_named(rnn: RnnConfig, tensors: &BTreeMap<String, ArrayD<f32>>) -> Result<Self> {
        let get2 = |name: &str| -> Result<Array2<f32>> {
            let t = tensors
                .get(name)
                .ok_or_else(|| Error::Params(format!("missing tensor `{name}`")))?;
            // The optimizer updates parameters as flat slices: any memory layout in, standard out.
            t.as_standard_layout()
                .into_owned()
                .into_dimensionality()
                .map_err(|_| {
                    Error::Params(format!("`{name}` has shape {:?}, expected 2-D", t.shape()))
                })
        };
        let embedding = Embedding::from_weight(get2("embedding.weight")?, None)?;
        let params = RnnParams::from_named(&rnn, tensors, "rnn.")?;
        let weight = get2("decoder.weight")?;
        let bias = match tensors.get("decoder.bias") {
            Some(b) => Some(
                b.as_standard_layout()
                    .into_owned()
                    .into_dimensionality()
                    .map_err(|_| {
                        Error::Params(format!(
                            "`decoder.bias` has shape {:?}, expected 1-D",
                            b.shape()
                        ))
                    })?,
            ),
            None => None,
        };
        let (v, d) = embedding.weight.dim();
        if d != rnn.input_size || weight.dim() != (v, rnn.output_size()) {
            return Err(Error::Params(format!(
                "embedding [{v}, {d}] and decoder {:?} do not fit a stack with input_size {} and \
                 output size {}",
                weight.shape(),
                rnn.input_size,
                rnn.output_size()
            )));
        }
        if bias
            .as_ref()
            .is_some_and(|b: &ndarray::Array1<f32>| b.len() != v)
        {
            return Err(Error::Params(format!(
                "`decoder.bias` must have {v} values"
            )));
        }
        let known = tensors.keys().filter(|k| !k.starts_with("rnn.")).find(|k| {
            !matches!(
                k.as_str(),
                "embedding.weight" | "decoder.weight" | "decoder.bias"
            )
        });
        if let Some(extra) = known {
            return Err(Error::Params(format!(
                "unexpected tensor `{extra}` in a language model"
            )));
        }
        Ok(LanguageModel {
            embedding,
            rnn: Rnn::from_params(rnn, params)?,
            decoder: Decoder::Untied(Linear { weight, bias }),
            dropout: LmDropout::default(),
        })
    }

    /// Forward and backward over one chunk: `x`, `y` are `[T, B]` token ids; `state` is read
    /// (and detached: no gradient flows into the previous chunk) and replaced by the final
    /// state. Gradients are added into `grads`; `rng` draws inter-layer dropout.
    ///
    /// Truncated BPTT by hand: chunks of a batchified stream, the state carried from one to the
    /// next, a plain SGD step after each (what the [`Trainer`](crate::train::Trainer) does, with
    /// clipping, schedules and checkpoints):
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use rnnkit::data::stream::batchify;
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::module::{self, Grads};
    /// use rnnkit::{CellKind, RnnConfig, RnnState};
    ///
    /// # fn main() -> rnnkit::Result<()> {
    /// let stream: Vec<u32> = (0..400).map(|i| (i % 5) as u32).collect(); // 0 1 2 3 4 0 1 ...
    /// let data = batchify(&stream, 4)?; // [100, 4]: four parallel streams
    /// let mut lm = LanguageModel::new(5, RnnConfig::new(CellKind::Gru, 8, 16), 0)?;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let mut losses = Vec::new();
    /// for _epoch in 0..10 {
    ///     let mut state = RnnState::zeros(lm.rnn().config(), 4);
    ///     for start in (0..99).step_by(11) {
    ///         let len = 11.min(99 - start);
    ///         let x = data.slice(ndarray::s![start..start + len, ..]);
    ///         let y = data.slice(ndarray::s![start + 1..start + len + 1, ..]);
    ///         let mut grads = Grads::zeros_like(&lm);
    ///         let out = lm.train_chunk(x, y, &mut state, &mut grads, &mut rng)?;
    ///         losses.push(out.loss);
    ///         module::for_each_with_grad(&mut lm, &grads, |_name, p, g| {
    ///             p.iter_mut().zip(g).for_each(|(p, g)| *p -= 0.5 * g);
    ///         });
    ///     }
    /// }
    /// assert!(losses.last().unwrap() < &(0.5 * losses[0])); // the cycle is learned
    /// # Ok(())
    /// # }
    /// ```
    pub fn train_chunk(
        &self,
        x: ArrayView2<u32>,
        y: ArrayView2<u32>,
        state: &mut RnnState,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<ChunkLoss> {
        let grads = &mut grads.0;
        let (steps, batch) = check_chunk(x, y)?;
        let ids: Vec<usize> = x.iter().map(|&t| t as usize).collect();
        let targets: Vec<usize> = y.iter().map(|&t| t as usize).collect();
        self.dropout.validate()?;
        let mut emb = self.embedding.forward(&ids)?; // [T·B, D]
        let words = (self.dropout.words > 0.0)
            .then(|| {
                EmbeddingDropout::new(self.dropout.words).map(|d| d.mask(self.vocab_size(), rng))
            })
            .transpose()?; // [V]
        if let Some(m) = &words {
            EmbeddingDropout::scale_rows(&mut emb, &ids, m.view())?;
        }
        let emb3 = emb
            .into_shape_with_order((steps, batch, self.rnn.config().input_size))
            .expect("rows are T·B");
        let (emb3, in_mask) = drop_steps(emb3, self.dropout.input, self.dropout.elementwise, rng)?;
        // Weight drop: the chunk runs on a copy of the stack whose W_hh are masked.
        let dropped = self.drop_recurrent_weights(rng)?;
        let rnn = dropped.as_ref().map_or(&self.rnn, |(r, _)| r);
        let (out, cache) = rnn.forward_train(emb3.view(), Some(state), None, rng)?;
        let final_state = out.state;
        let (h3, out_mask) = drop_steps(
            out.output,
            self.dropout.output,
            self.dropout.elementwise,
            rng,
        )?;
        let hidden = h3.dim().2;
        let h2 = h3
            .into_shape_with_order((steps * batch, hidden))
            .expect("[T·B, H]");
        // The logits buffer becomes dL/dlogits: the only [T·B, V] array of the step.
        let mut dlogits = self.decode(h2.view())?; // [T·B, V]
        let ce = CrossEntropy::default().forward_backward_in_place(&mut dlogits, &targets)?;
        let precision = self.rnn.precision();
        let dh = match (&self.decoder, &mut grads.decoder) {
            (Decoder::Untied(d), Decoder::Untied(g)) => {
                d.backward_in(h2.view(), dlogits.view(), g, precision)?
            }
            // The tied matrix gets the decoder's gradient here and the embedding's below.
            (Decoder::Tied { .. }, Decoder::Tied { bias }) => crate::nn::linear::backward_in(
                h2.view(),
                dlogits.view(),
                self.embedding.weight.view(),
                &mut grads.embedding.weight,
                bias.as_mut(),
                precision,
            )?,
            _ => {
                return Err(Error::Shape(
                    "gradients of a tied model for an untied one, or the reverse".into(),
                ));
            }
        };
        self.recycle(dlogits);
        let dh3: Array3<f32> = dh
            .into_shape_with_order((steps, batch, hidden))
            .expect("[T, B, H]");
        let dh3 = drop_steps_back(dh3, &out_mask)?;
        let upstream = Upstream::output_only(dh3.view());
        let dx = match &dropped {
            None => rnn.backward(&cache, &upstream, grads.rnn.params_mut())?,
            Some((_, masks)) => {
                // d/dW of W ⊙ M is the masked gradient: computed apart, masked, then added.
                let mut g = RnnParams::zeros(rnn.config());
                let dx = rnn.backward(&cache, &upstream, &mut g)?;
                let layers = grads.rnn.params_mut().layers.iter_mut();
                for ((dst, src), mask) in layers.zip(&g.layers).zip(masks) {
                    dst.weight_hh
                        .zip_mut_with(&(&src.weight_hh * mask), |d, s| *d += s);
                    dst.weight_ih += &src.weight_ih;
                    for (d, s) in [
                        (&mut dst.bias_ih, &src.bias_ih),
                        (&mut dst.bias_hh, &src.bias_hh),
                    ] {
                        if let (Some(d), Some(s)) = (d, s) {
                            *d += s;
                        }
                    }
                    if let (Some(d), Some(s)) = (&mut dst.weight_hr, &src.weight_hr) {
                        *d += s;
                    }
                }
                dx
            }
        };
        let d = self.rnn.config().input_size;
        let mut de = drop_steps_back(dx.input, &in_mask)?
            .into_shape_with_order((steps * batch, d))
            .expect("[T·B, D]");
        if let Some(m) = &words {
            EmbeddingDropout::scale_rows(&mut de, &ids, m.view())?;
        }
        self.embedding
            .backward(&ids, de.view(), &mut grads.embedding.weight)?;
        *state = final_state;
        Ok(ChunkLoss {
            loss: ce.loss,
            nll_sum: ce.nll_sum,
            count: ce.count,
        })
    }

    /// Forward only (evaluation: no dropout, nothing kept), carrying `state`.
    pub fn eval_chunk(
        &self,
        x: ArrayView2<u32>,
        y: ArrayView2<u32>,
        state: &mut RnnState,
    ) -> Result<ChunkLoss> {
        let (steps, batch) = check_chunk(x, y)?;
        let targets: Vec<usize> = y.iter().map(|&t| t as usize).collect();
        let logits = self.logits_2d(x, state)?;
        debug_assert_eq!(logits.nrows(), steps * batch);
        let ce = CrossEntropy::default().forward(logits.view(), &targets)?;
        self.recycle(logits);
        Ok(ChunkLoss {
            loss: ce.loss,
            nll_sum: ce.nll_sum,
            count: ce.count,
        })
    }

    /// The next-token logits `[T, B, V]` for ids `x` `[T, B]` (time-major, as PyTorch's
    /// `nn.LSTM` default), starting from `state` (zeros when `None`) and leaving the final state
    /// there. Inference: no dropout. The same numbers as the PyTorch model
    /// `decoder(rnn(embedding(x))[0])` with this model's `named_tensors` loaded.
    ///
    /// ```
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let lm = LanguageModel::new(7, RnnConfig::new(CellKind::Lstm, 4, 5), 0).unwrap();
    /// let x = ndarray::Array2::from_shape_fn((3, 2), |(t, b)| (t + b) as u32);
    /// let logits = lm.logits(x.view(), None).unwrap();
    /// assert_eq!(logits.shape(), &[3, 2, 7]);
    /// ```
    ///
    /// # Errors
    /// An id outside the vocabulary, or a state of the wrong shape.
    pub fn logits(
        &self,
        x: ArrayView2<u32>,
        state: Option<&mut RnnState>,
    ) -> Result<ndarray::Array3<f32>> {
        let (steps, batch) = x.dim();
        let mut fresh = RnnState::zeros(self.rnn.config(), batch);
        let state = state.unwrap_or(&mut fresh);
        let logits = self.logits_2d(x, state)?;
        let v = logits.ncols();
        Ok(logits
            .into_shape_with_order((steps, batch, v))
            .expect("rows are T·B"))
    }

    /// Gradient-through-time and gate diagnostics for the cross-entropy of the last step's
    /// next token: ids `x` `[T, B]` from a zero state, `y_last` `[B]` the tokens after them.
    /// See [`crate::diagnostics`].
    ///
    /// ```
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let lm = LanguageModel::new(7, RnnConfig::new(CellKind::Gru, 4, 5), 0).unwrap();
    /// let x = ndarray::Array2::from_shape_fn((6, 2), |(t, b)| ((t + b) % 7) as u32);
    /// let d = lm.diagnose(x.view(), &[1, 2]).unwrap();
    /// assert_eq!(d.profile.distances.last(), Some(&5));
    /// assert_eq!(d.gates[0].gates.len(), 2); // reset, update
    /// ```
    ///
    /// # Errors
    /// Ids outside the vocabulary, `y_last` of another length than `B`, a bidirectional stack.
    pub fn diagnose(&self, x: ArrayView2<u32>, y_last: &[u32]) -> Result<Diagnosis> {
        use crate::diagnostics::{default_distances, gate_stats, gradient_through_time};
        let (steps, batch) = x.dim();
        if y_last.len() != batch || steps == 0 {
            return Err(Error::Shape(format!(
                "diagnose: {} next tokens for a batch of {batch} (and {steps} steps)",
                y_last.len()
            )));
        }
        let ids: Vec<usize> = x.iter().map(|&t| t as usize).collect();
        let emb = self
            .embedding
            .forward(&ids)?
            .into_shape_with_order((steps, batch, self.rnn.config().input_size))
            .expect("rows are T·B");
        let out = self.rnn.forward(emb.view(), None, None)?;
        let last = out.output.slice(ndarray::s![steps - 1, .., ..]).to_owned();
        let logits = self.decode(last.view())?;
        let mut dlogits = Array2::zeros(logits.dim());
        let targets: Vec<usize> = y_last.iter().map(|&t| t as usize).collect();
        CrossEntropy::default().forward_backward(logits.view(), &targets, &mut dlogits)?;
        let d_last = dlogits.dot(&self.decoder_weight());
        Ok(Diagnosis {
            profile: gradient_through_time(
                &self.rnn,
                emb.view(),
                d_last.view(),
                &default_distances(steps),
            )?,
            gates: gate_stats(&self.rnn, emb.view())?,
        })
    }

    /// Logits `[T·B, V]` of `x`, carrying `state`.
    fn logits_2d(&self, x: ArrayView2<u32>, state: &mut RnnState) -> Result<Array2<f32>> {
        let (steps, batch) = x.dim();
        let ids: Vec<usize> = x.iter().map(|&t| t as usize).collect();
        let emb = self.embedding.forward(&ids)?;
        let emb3 = emb
            .into_shape_with_order((steps, batch, self.rnn.config().input_size))
            .expect("rows are T·B");
        let out = self.rnn.forward(emb3.view(), Some(state), None)?;
        let hidden = out.output.dim().2;
        let h2 = out
            .output
            .into_shape_with_order((steps * batch, hidden))
            .expect("[T·B, H]");
        *state = out.state;
        self.decode(h2.view())
    }

    /// With weight drop on: a copy of the stack with every `weight_hh` masked, and the masks.
    fn drop_recurrent_weights(
        &self,
        rng: &mut dyn RngCore,
    ) -> Result<Option<(Rnn, Vec<Array2<f32>>)>> {
        if self.dropout.weight_hh == 0.0 {
            return Ok(None);
        }
        let drop = WeightDrop::new(self.dropout.weight_hh)?;
        let mut rnn = self.rnn.clone();
        let mut masks = Vec::new();
        for layer in &mut rnn.params_mut().layers {
            let (r, c) = layer.weight_hh.dim();
            let mask = drop.mask(r, c, rng);
            layer.weight_hh *= &mask;
            masks.push(mask);
        }
        Ok(Some((rnn, masks)))
    }

    /// PyTorch names of every parameter, in `state_dict` order (a tied decoder's weight is
    /// the embedding's and is listed once).
    pub fn param_names(&self) -> Vec<String> {
        module::param_names(self, "")
    }
}

impl TrainStep for LanguageModel {
    type Batch = StreamChunk;

    fn set_precision(&mut self, precision: Precision) -> Precision {
        self.rnn.set_precision(precision)
    }

    /// `ln(vocabulary size)`: a uniform guess over the tokens.
    fn chance_loss(&self) -> Option<f64> {
        Some((self.vocab_size().max(1) as f64).ln())
    }

    /// One chunk of truncated BPTT, the state carried from the previous chunk of the epoch
    /// (zeros at its start).
    fn train_batch(
        &self,
        chunk: &StreamChunk,
        carry: &mut Option<RnnState>,
        grads: &mut Grads<Self>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss> {
        let state =
            carry.get_or_insert_with(|| RnnState::zeros(self.rnn.config(), chunk.x.ncols()));
        Ok(self
            .train_chunk(chunk.x.view(), chunk.y.view(), state, grads, rng)?
            .into())
    }

    /// The rank's contiguous share of the chunk's parallel streams (columns). The carried
    /// state follows the same streams from chunk to chunk.
    fn shard_batch(chunk: &StreamChunk, rank: usize, ranks: usize) -> Result<StreamChunk> {
        let b = chunk.x.ncols();
        if b < ranks {
            return Err(Error::Config(format!(
                "train.batch_size = {b} streams cannot be split over {ranks} processes: give \
                 each at least one"
            )));
        }
        let cols = crate::distributed::share(b, rank, ranks);
        Ok(StreamChunk {
            x: chunk.x.slice(ndarray::s![.., cols.clone()]).to_owned(),
            y: chunk.y.slice(ndarray::s![.., cols]).to_owned(),
        })
    }

    fn eval_batch(&self, chunk: &StreamChunk, carry: &mut Option<RnnState>) -> Result<BatchLoss> {
        let state =
            carry.get_or_insert_with(|| RnnState::zeros(self.rnn.config(), chunk.x.ncols()));
        Ok(self
            .eval_chunk(chunk.x.view(), chunk.y.view(), state)?
            .into())
    }

    /// The gradient of the last step's next-token loss through time, on (at most 32 streams
    /// of) the chunk.
    fn diagnose(&self, chunk: &StreamChunk) -> Result<Option<Diagnosis>> {
        let b = chunk.x.ncols().min(DIAGNOSIS_ROWS);
        let x = chunk.x.slice(ndarray::s![.., ..b]);
        let t = chunk.y.nrows();
        let y_last: Vec<u32> = chunk.y.slice(ndarray::s![t - 1, ..b]).to_vec();
        Ok(Some(self.diagnose(x, &y_last)?))
    }
}

impl From<ChunkLoss> for BatchLoss {
    fn from(c: ChunkLoss) -> Self {
        BatchLoss {
            loss: c.loss,
            sum: c.nll_sum,
            count: c.count,
            correct: 0,
        }
    }
}

fn check_chunk(x: ArrayView2<u32>, y: ArrayView2<u32>) -> Result<(usize, usize)> {
    if x.dim() != y.dim() || x.is_empty() {
        return Err(Error::Shape(format!(
            "inputs {:?} and targets {:?} must be the same non-empty [T, B]",
            x.shape(),
            y.shape()
        )));
    }
    Ok(x.dim())
}
