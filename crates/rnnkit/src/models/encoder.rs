//! The front of every sequence model: token ids through an [`Embedding`] (or features as they
//! are) into the recurrent stack, with packed-sequence `lengths`. The classifier, tagger and
//! forecaster put a head on it.
//!
//! ```text
//! forward                                   backward
//! e = E[x]  (or e = x)      [T, B, I]       dE[x[t,b]] += de[t,b]   (padding id skipped)
//! h = rnn(e; ℓ)             [T, B, F]       de = rnn.backward(dh)   (dθ_rnn += …)
//! ```

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::module::{Module, TensorMut, TensorRef, join};
use crate::nn::{Embedding, Linear};
use crate::recurrent::{Rnn, RnnCache, RnnOutput, Upstream};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A padded, time-major input batch: token ids `[T, B]` (for a model with an embedding) or
/// features `[T, B, I]` (for a model without one).
///
/// ```
/// use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
/// use rnnkit::models::SeqInput;
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

impl<'a> SeqInput<'a> {
    /// A padded batch's inputs: its feature frames when it has them, else its token ids.
    ///
    /// ```
    /// use rnnkit::data::batch::{Example, PadConfig, PaddedBatch};
    /// use rnnkit::models::SeqInput;
    /// let examples = vec![Example::class(vec![4, 5], 0)];
    /// let mut b = PaddedBatch::from_examples(&examples, &[0], &PadConfig::default()).unwrap();
    /// assert!(matches!(SeqInput::of_batch(&b), SeqInput::Tokens(_)));
    /// b.features = Some(ndarray::Array3::zeros((2, 1, 13)));
    /// assert!(matches!(SeqInput::of_batch(&b), SeqInput::Features(_)));
    /// ```
    pub fn of_batch(b: &'a crate::data::batch::PaddedBatch) -> Self {
        match &b.features {
            Some(f) => SeqInput::Features(f.view()),
            None => SeqInput::Tokens(b.ids.view()),
        }
    }
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
/// use rnnkit::models::InputSpec;
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

/// (Embedding →) recurrent stack: the shared front of the sequence models. Its parameters are
/// `embedding.weight` (token input only) and `rnn.*`, under the model's own prefix.
#[derive(Clone, Debug)]
pub struct Encoder {
    embedding: Option<Embedding>,
    rnn: Rnn,
}

/// What a training forward keeps for [`Encoder::backward`].
pub(crate) struct EncoderCache {
    cache: RnnCache,
    ids: Option<Vec<usize>>,
}

impl Encoder {
    /// The encoder and a head of `head_out` outputs, initialized as PyTorch does, seeded: the
    /// embedding and the head from one generator, the stack from `seed + 1`. Every size is
    /// checked before anything is allocated.
    pub(crate) fn with_head(
        input: InputSpec,
        rnn: RnnConfig,
        head_out: usize,
        seed: u64,
    ) -> Result<(Encoder, Linear)> {
        if head_out == 0 {
            return Err(Error::Config(
                "the output head needs at least one output".into(),
            ));
        }
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
        Ok((Encoder { embedding, rnn }, head))
    }

    /// The token embedding, for a model over token ids.
    pub fn embedding(&self) -> Option<&Embedding> {
        self.embedding.as_ref()
    }

    /// The recurrent stack.
    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    pub(crate) fn rnn_mut(&mut self) -> &mut Rnn {
        &mut self.rnn
    }

    /// The stack's input `[T, B, I]` and, for token input, the flattened ids.
    fn front(&self, input: SeqInput) -> Result<(Array3<f32>, Option<Vec<usize>>)> {
        let isz = self.rnn.config().input_size;
        match (&self.embedding, input) {
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

    /// Inference forward (no dropout, nothing kept) over valid steps `lens`.
    pub(crate) fn forward(&self, input: SeqInput, lens: &[usize]) -> Result<RnnOutput> {
        let (e, _) = self.front(input)?;
        self.rnn.forward(e.view(), None, Some(lens))
    }

    /// Training forward: inter-layer dropout from `rng`, and what backward needs.
    pub(crate) fn forward_train(
        &self,
        input: SeqInput,
        lens: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<(RnnOutput, EncoderCache)> {
        let (e, ids) = self.front(input)?;
        let (out, cache) = self.rnn.forward_train(e.view(), None, Some(lens), rng)?;
        Ok((out, EncoderCache { cache, ids }))
    }

    /// Backward from `dh` `[T, B, F]`: adds into `grads` (the stack's, and the embedding's for
    /// token input) and returns the gradient with respect to the stack's input `[T, B, I]`.
    pub(crate) fn backward(
        &self,
        cache: &EncoderCache,
        dh: ArrayView3<f32>,
        grads: &mut Encoder,
    ) -> Result<Array3<f32>> {
        let dx = self.rnn.backward(
            &cache.cache,
            &Upstream::output_only(dh),
            grads.rnn.params_mut(),
        )?;
        if let (Some(emb), Some(ids)) = (&self.embedding, &cache.ids) {
            let g = grads.embedding.as_mut().ok_or_else(|| {
                Error::Shape("the gradient buffer has no embedding gradient".into())
            })?;
            let (t, b, i) = dx.input.dim();
            let de2 = dx
                .input
                .view()
                .into_shape_with_order((t * b, i))
                .map_err(|e| Error::Shape(e.to_string()))?;
            emb.backward(ids, de2, &mut g.weight)?;
        }
        Ok(dx.input)
    }
}

impl Module for Encoder {
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
        if let Some(e) = &self.embedding {
            e.visit_params(&join(prefix, "embedding."), f);
        }
        self.rnn.visit_params(&join(prefix, "rnn."), f);
    }

    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
        if let Some(e) = &mut self.embedding {
            e.visit_params_mut(&join(prefix, "embedding."), f);
        }
        self.rnn.visit_params_mut(&join(prefix, "rnn."), f);
    }
}

/// Checks `lengths` against `(T, B)` and returns them (all `T` when absent).
pub(crate) fn resolve_lengths(
    lengths: Option<&[usize]>,
    steps: usize,
    batch: usize,
) -> Result<Vec<usize>> {
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

/// `[T, B, F]` as `[T·B, F]` (row `t·B + b`).
pub(crate) fn reshape2(a: Array3<f32>) -> Array2<f32> {
    let (t, b, f) = a.dim();
    a.into_shape_with_order((t * b, f)).expect("[T·B, F]")
}
