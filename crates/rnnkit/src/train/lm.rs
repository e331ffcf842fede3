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

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::module::{self, Module, TensorMut, TensorRef, join};
use crate::nn::{
    CrossEntropy, Dropout, Embedding, EmbeddingDropout, Linear, LockedDropout, WeightDrop, flat_mut,
};
use crate::params::RnnParams;
use crate::recurrent::{Rnn, RnnState, Upstream};
use ndarray::{Array2, Array3, ArrayD, ArrayView2};
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Embedding → recurrent stack → decoder.
#[derive(Clone, Debug)]
pub struct LanguageModel {
    /// `[V, D]` token embeddings (`embedding.weight`).
    pub embedding: Embedding,
    /// The recurrent stack (`rnn.*`); its `input_size` is `D`.
    pub rnn: Rnn,
    /// `[V, H·dirs]` → logits (`decoder.weight`, `decoder.bias`). With tied weights its weight
    /// is empty (`[0, H·dirs]`) and the embedding matrix is used instead.
    pub decoder: Linear,
    /// Weight tying (Press & Wolf 2017; Inan et al. 2017): the decoder uses the embedding
    /// matrix, and both uses add into its one gradient. See [`LanguageModel::tie`].
    pub tie_weights: bool,
    /// Dropout around the stack (AWD-LSTM style), training only. Default: none.
    pub dropout: LmDropout,
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

/// Gradients of a [`LanguageModel`], same shapes; backward adds into them.
#[derive(Clone, Debug)]
pub struct LmGrads {
    /// `[V, D]`.
    pub embedding: Array2<f32>,
    /// Recurrent stack.
    pub rnn: RnnParams,
    /// Decoder.
    pub decoder: Linear,
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
        visit_decoder(
            &self.decoder,
            self.tie_weights,
            &join(prefix, "decoder."),
            f,
        );
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        self.embedding
            .visit_params_mut(&join(prefix, "embedding."), f);
        self.rnn.visit_params_mut(&join(prefix, "rnn."), f);
        let prefix = join(prefix, "decoder.");
        if self.tie_weights {
            // The tied weight is the embedding's, visited above; only the bias is the decoder's.
            if let Some(b) = &mut self.decoder.bias {
                f(&join(&prefix, "bias"), crate::nn::linear::tensor_mut(b));
            }
        } else {
            self.decoder.visit_params_mut(&prefix, f);
        }
    }

    fn aliases(&self, prefix: &str) -> Vec<(String, String)> {
        if self.tie_weights {
            vec![(
                join(prefix, "decoder.weight"),
                join(prefix, "embedding.weight"),
            )]
        } else {
            Vec::new()
        }
    }
}

/// The decoder's parameters: its weight only when untied (a tied decoder uses the embedding's).
fn visit_decoder<'a>(
    decoder: &'a Linear,
    tied: bool,
    prefix: &str,
    f: &mut dyn FnMut(&str, TensorRef<'a>),
) {
    if tied {
        if let Some(b) = &decoder.bias {
            f(&join(prefix, "bias"), crate::nn::linear::tensor_ref(b));
        }
    } else {
        decoder.visit_params(prefix, f);
    }
}

impl LanguageModel {
    /// A model with PyTorch's default initialization, seeded.
    ///
    /// ```
    /// use rnnkit::train::lm::LanguageModel;
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
            decoder,
            tie_weights: false,
            dropout: LmDropout::default(),
        })
    }

    /// Ties the decoder's weight to the embedding matrix (it needs the embedding size, the
    /// stack's `input_size`, to equal the stack's output size). The decoder's own weight is
    /// dropped; saved files still carry `decoder.weight` (a copy), as PyTorch's state_dict does.
    ///
    /// ```
    /// use rnnkit::train::lm::LanguageModel;
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
        self.tie_weights = true;
        self.decoder.weight = Array2::zeros((0, out));
        Ok(())
    }

    /// The decoder's weight matrix `[V, F]` (the embedding matrix when tied).
    fn decoder_weight(&self) -> ArrayView2<'_, f32> {
        if self.tie_weights {
            self.embedding.weight.view()
        } else {
            self.decoder.weight.view()
        }
    }

    fn decode(&self, h: ArrayView2<f32>) -> Result<Array2<f32>> {
        let bias = self.decoder.bias.as_ref().map(|b| b.view());
        // The logits are the step's largest array (WikiText-2: 400 × 33,280 floats, 53 MB):
        // from the stack's workspace, so its pages stay mapped between steps (give it back
        // with `recycle`).
        let buffer = self
            .rnn
            .workspace()
            .take_capacity(h.nrows() * self.vocab_size());
        crate::nn::linear::forward_into(h, self.decoder_weight(), bias, buffer)
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

    /// Zeroed gradient buffers.
    pub fn zero_grads(&self) -> LmGrads {
        LmGrads {
            embedding: Array2::zeros(self.embedding.weight.dim()),
            rnn: RnnParams::zeros(self.rnn.config()),
            // Shaped from the decoder's own fields (its weight is empty when tied).
            decoder: Linear {
                weight: Array2::zeros(self.decoder.weight.dim()),
                bias: self
                    .decoder
                    .bias
                    .as_ref()
                    .map(|b| ndarray::Array1::zeros(b.len())),
            },
        }
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
            decoder: Linear { weight, bias },
            tie_weights: false,
            dropout: LmDropout::default(),
        })
    }

    /// Forward and backward over one chunk: `x`, `y` are `[T, B]` token ids; `state` is read
    /// (and detached: no gradient flows into the previous chunk) and replaced by the final
    /// state. Gradients are added into `grads`; `rng` draws inter-layer dropout.
    ///
    /// Truncated BPTT by hand: chunks of a batchified stream, the state carried from one to the
    /// next, a plain SGD step after each (what [`LmTrainer`](super::trainer::LmTrainer) does,
    /// with clipping, schedules and checkpoints):
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use rnnkit::train::lm::LanguageModel;
    /// use rnnkit::train::tbptt::batchify;
    /// use rnnkit::{CellKind, RnnConfig, RnnState};
    ///
    /// # fn main() -> rnnkit::Result<()> {
    /// let stream: Vec<u32> = (0..400).map(|i| (i % 5) as u32).collect(); // 0 1 2 3 4 0 1 ...
    /// let data = batchify(&stream, 4)?; // [100, 4]: four parallel streams
    /// let mut lm = LanguageModel::new(5, RnnConfig::new(CellKind::Gru, 8, 16), 0)?;
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let mut losses = Vec::new();
    /// for _epoch in 0..10 {
    ///     let mut state = RnnState::zeros(lm.rnn.config(), 4);
    ///     for start in (0..99).step_by(11) {
    ///         let len = 11.min(99 - start);
    ///         let x = data.slice(ndarray::s![start..start + len, ..]);
    ///         let y = data.slice(ndarray::s![start + 1..start + len + 1, ..]);
    ///         let mut grads = lm.zero_grads();
    ///         let out = lm.train_chunk(x, y, &mut state, &mut grads, &mut rng)?;
    ///         losses.push(out.loss);
    ///         for (p, g) in lm.params_and_grads(&grads) {
    ///             p.iter_mut().zip(g).for_each(|(p, g)| *p -= 0.5 * g);
    ///         }
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
        grads: &mut LmGrads,
        rng: &mut dyn RngCore,
    ) -> Result<ChunkLoss> {
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
        let dh = if self.tie_weights {
            // The tied matrix gets the decoder's gradient here and the embedding's below.
            crate::nn::linear::backward(
                h2.view(),
                dlogits.view(),
                self.embedding.weight.view(),
                &mut grads.embedding,
                grads.decoder.bias.as_mut(),
            )?
        } else {
            self.decoder
                .backward(h2.view(), dlogits.view(), &mut grads.decoder)?
        };
        self.recycle(dlogits);
        let dh3: Array3<f32> = dh
            .into_shape_with_order((steps, batch, hidden))
            .expect("[T, B, H]");
        let dh3 = drop_steps_back(dh3, &out_mask)?;
        let upstream = Upstream::output_only(dh3.view());
        let dx = match &dropped {
            None => rnn.backward(&cache, &upstream, &mut grads.rnn)?,
            Some((_, masks)) => {
                // d/dW of W ⊙ M is the masked gradient: computed apart, masked, then added.
                let mut g = RnnParams::zeros(rnn.config());
                let dx = rnn.backward(&cache, &upstream, &mut g)?;
                for ((dst, src), mask) in grads.rnn.layers.iter_mut().zip(&g.layers).zip(masks) {
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
            .backward(&ids, de.view(), &mut grads.embedding)?;
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
    /// use rnnkit::train::lm::LanguageModel;
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
    /// See [`crate::train::diagnostics`].
    ///
    /// ```
    /// use rnnkit::train::lm::LanguageModel;
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
    pub fn diagnose(
        &self,
        x: ArrayView2<u32>,
        y_last: &[u32],
    ) -> Result<crate::train::diagnostics::Diagnosis> {
        use crate::train::diagnostics::{default_distances, gate_stats, gradient_through_time};
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
        Ok(crate::train::diagnostics::Diagnosis {
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

    /// Every parameter with its gradient, in the order of [`LanguageModel::param_names`].
    pub fn params_and_grads<'a>(
        &'a mut self,
        grads: &'a LmGrads,
    ) -> Vec<(&'a mut [f32], &'a [f32])> {
        let std = "standard layout";
        let mut out: Vec<(&mut [f32], &[f32])> = vec![(
            flat_mut(&mut self.embedding.weight),
            grads.embedding.as_slice().expect(std),
        )];
        out.extend(self.rnn.params_mut().tensors_mut().zip(grads.rnn.tensors()));
        if !self.tie_weights {
            out.push((
                flat_mut(&mut self.decoder.weight),
                grads.decoder.weight.as_slice().expect(std),
            ));
        }
        if let (Some(b), Some(g)) = (&mut self.decoder.bias, &grads.decoder.bias) {
            out.push((flat_mut(b), g.as_slice().expect(std)));
        }
        out
    }

    /// Visits every parameter with its gradient, in `state_dict` order.
    pub fn for_each_param(&mut self, grads: &LmGrads, mut f: impl FnMut(&str, &mut [f32], &[f32])) {
        let names = self.param_names();
        for (name, (p, g)) in names.iter().zip(self.params_and_grads(grads)) {
            f(name, p, g);
        }
    }
}

impl LmGrads {
    /// Sets every gradient to zero.
    pub fn fill_zero(&mut self) {
        for g in self.slices_mut() {
            crate::kernels::elementwise::fill_zero(g);
        }
    }

    /// Every gradient as a mutable slice (for clipping).
    pub fn slices_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> =
            vec![self.embedding.as_slice_mut().expect("standard layout")];
        out.extend(self.rnn.tensors_mut());
        out.push(self.decoder.weight.as_slice_mut().expect("standard layout"));
        if let Some(b) = &mut self.decoder.bias {
            out.push(b.as_slice_mut().expect("standard layout"));
        }
        out
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
