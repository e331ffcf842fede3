//! Sampling text from a trained [`LanguageModel`], one token at a time, with the recurrent state
//! carried between tokens (PyTorch word_language_model's `generate.py`, plus top-k and nucleus
//! filtering).
//!
//! One step, for the last token `x` and the carried state (batch 1):
//!
//! ```text
//! e = E[x]                        [1, D]   embedding row
//! h, state' = rnn.step(e, state)  [1, P]   P = the stack's output size
//! z = h Wᵀ + b                    [1, V]   logits (W = E when the weights are tied)
//! p = softmax(z / temperature)    [V]      restricted to top-k, then top-p; <pad> excluded
//! ```
//!
//! The next token is drawn from `p` with a [`ChaCha8Rng`] seeded from
//! [`SamplingConfig::seed`], so a seed reproduces a sample exactly; temperature 0 takes the
//! argmax instead (greedy decoding, ties to the lowest id). The drawn token is fed back at once,
//! so after every call the state is the one after the prompt and every token produced so far.
//!
//! # Starting without a prompt
//! The training stream ([`crate::data::text::TextPipeline::encode_stream`]) ends every line with
//! `<eos>` and never contains `<bos>`, so the `<bos>` embedding is untrained while `<eos>` is
//! what the model has learnt to see before the start of a line. An empty prompt therefore feeds
//! `<eos>` ([`EOS_ID`]) when the vocabulary has it. A model with fewer than 4 tokens (not built
//! by a text pipeline) starts from the zero state with a zero stack output, so the first
//! distribution is `softmax(b / temperature)`.
//!
//! ```
//! use rnnkit::generate::{Generator, SamplingConfig};
//! use rnnkit::models::LanguageModel;
//! use rnnkit::{CellKind, RnnConfig};
//! let lm = LanguageModel::new(20, RnnConfig::new(CellKind::Lstm, 8, 16), 0).unwrap();
//! let cfg = SamplingConfig { seed: 7, ..SamplingConfig::default() };
//! let mut g = Generator::new(&lm, cfg.clone()).unwrap();
//! g.prime(&[5, 6, 7]).unwrap();
//! let mut out = Vec::new();
//! g.generate(10, |t| {
//!     out.push(t);
//!     true
//! })
//! .unwrap();
//! assert_eq!(out.len(), 10);
//! assert!(out.iter().all(|&t| t != 0 && t < 20));
//! // The same seed and prompt give the same tokens.
//! let mut again = Generator::new(&lm, cfg).unwrap();
//! again.prime(&[5, 6, 7]).unwrap();
//! let same: Vec<u32> = (0..10).map(|_| again.next_token().unwrap()).collect();
//! assert_eq!(same, out);
//! ```

use crate::data::text::pipeline::StreamDecoder;
use crate::data::text::vocab::{EOS_ID, PAD_ID};
use crate::error::{Error, Result};
use crate::models::LanguageModel;
use crate::recurrent::RnnState;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How tokens are drawn. Filters apply in the order temperature, top-k, top-p (that of Hugging
/// Face `generate`), and `<pad>` is never drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Divides the logits before the softmax: below 1 sharpens, above 1 flattens. Must be
    /// finite and positive, or exactly 0 for greedy decoding (argmax at every step).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (at least 1; 1 is greedy). `None`: all.
    pub top_k: Option<usize>,
    /// Nucleus sampling (Holtzman et al. 2020): keep the smallest set of most likely tokens
    /// whose probability sums to at least `p`, in `(0, 1]`. `None`: all.
    pub top_p: Option<f32>,
    /// Seed of the sampling RNG.
    pub seed: u64,
    /// Tokens [`Generator::run`] produces at most (at least 1).
    pub max_tokens: usize,
    /// Stop after producing `<eos>` (it is still passed on), e.g. to sample one line.
    pub stop_at_eos: bool,
}

impl Default for SamplingConfig {
    /// Temperature 0.8 (a little sharper than the model, which keeps text coherent without the
    /// loops of greedy decoding), no top-k or top-p filter, seed 0, 200 tokens (a paragraph),
    /// and `stop_at_eos` off (a word model trained on lines emits `<eos>` at every line end;
    /// the caller prints it as a newline and goes on, as `generate.py` does).
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.8,
            top_k: None,
            top_p: None,
            seed: 0,
            max_tokens: 200,
            stop_at_eos: false,
        }
    }
}

impl SamplingConfig {
    /// Checks every field's range; the error names the field.
    ///
    /// ```
    /// use rnnkit::generate::SamplingConfig;
    /// assert!(SamplingConfig::default().validate().is_ok());
    /// let bad = SamplingConfig { top_p: Some(1.5), ..SamplingConfig::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("top_p"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::Config(format!(
                "sampling.temperature must be a finite number > 0, or 0 for greedy decoding; \
                 got {t}"
            )));
        }
        if self.top_k == Some(0) {
            return Err(Error::Config(
                "sampling.top_k must be at least 1 (1 is greedy), or left out to keep all tokens"
                    .into(),
            ));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(Error::Config(format!(
                "sampling.top_p must be in (0, 1], or left out to keep all tokens; got {p}"
            )));
        }
        if self.max_tokens == 0 {
            return Err(Error::Config(
                "sampling.max_tokens must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Streams tokens out of a [`LanguageModel`] (batch 1, state carried). See the
/// [module docs](self) for an example.
#[derive(Debug)]
pub struct Generator<'a> {
    model: &'a LanguageModel,
    config: SamplingConfig,
    rng: ChaCha8Rng,
    /// `[L, 1, P]` (and `c`): the state after every token fed so far.
    state: RnnState,
    /// `[V]` logits for the next token; `None` until primed.
    logits: Option<Array1<f32>>,
}

impl<'a> Generator<'a> {
    /// A generator over `model`, not yet primed. Errors: an invalid config, a bidirectional
    /// stack (its reverse direction would read tokens not yet drawn), or a vocabulary with
    /// nothing but `<pad>`.
    pub fn new(model: &'a LanguageModel, config: SamplingConfig) -> Result<Self> {
        config.validate()?;
        if model.rnn().config().bidirectional {
            return Err(Error::Config(
                "sampling needs a unidirectional model: a reverse direction reads tokens not yet \
                 drawn"
                    .into(),
            ));
        }
        if model.vocab_size() < 2 {
            return Err(Error::Config(format!(
                "sampling needs a vocabulary with a token besides <pad>; the model has {}",
                model.vocab_size()
            )));
        }
        Ok(Generator {
            model,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            state: RnnState::zeros(model.rnn().config(), 1),
            logits: None,
        })
    }

    /// The sampling settings.
    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// The recurrent state after every token fed so far (prompt and generated), batch 1.
    pub fn state(&self) -> &RnnState {
        &self.state
    }

    /// The logits `[V]` the next token is drawn from (before temperature and filtering);
    /// `None` before the generator is primed.
    pub fn logits(&self) -> Option<ArrayView1<'_, f32>> {
        self.logits.as_ref().map(|l| l.view())
    }

    /// Feeds `prompt_ids` through the model in one pass, carrying the state; calling it again
    /// continues from where the last call (or the last generated token) left off. An empty
    /// prompt on a fresh generator starts as the [module docs](self#starting-without-a-prompt)
    /// say, and is a no-op otherwise. An id outside the vocabulary is an error naming it.
    ///
    /// ```
    /// use rnnkit::generate::{Generator, SamplingConfig};
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let lm = LanguageModel::new(10, RnnConfig::new(CellKind::Gru, 4, 6), 0).unwrap();
    /// let mut whole = Generator::new(&lm, SamplingConfig::default()).unwrap();
    /// whole.prime(&[4, 5, 6]).unwrap();
    /// let mut pieces = Generator::new(&lm, SamplingConfig::default()).unwrap();
    /// pieces.prime(&[4]).unwrap();
    /// pieces.prime(&[5, 6]).unwrap();
    /// let diff = (&whole.state().h - &pieces.state().h).mapv(f32::abs);
    /// assert!(diff.iter().all(|&d| d < 1e-6));
    /// assert!(whole.prime(&[10]).unwrap_err().to_string().contains("10"));
    /// ```
    pub fn prime(&mut self, prompt_ids: &[u32]) -> Result<()> {
        if !prompt_ids.is_empty() {
            return self.feed(prompt_ids);
        }
        if self.logits.is_some() {
            return Ok(());
        }
        if (EOS_ID as usize) < self.model.vocab_size() {
            return self.feed(&[EOS_ID]);
        }
        // No start token to feed: the stack has produced nothing yet, i.e. a zero output.
        let zero = Array2::<f32>::zeros((1, self.model.rnn().config().output_size()));
        self.logits = Some(self.decode(zero.view())?);
        Ok(())
    }

    /// Draws the next token, feeds it back, and returns it. Primes with an empty prompt first
    /// if [`Generator::prime`] was not called.
    pub fn next_token(&mut self) -> Result<u32> {
        if self.logits.is_none() {
            self.prime(&[])?;
        }
        let logits = self.logits.as_ref().expect("primed above");
        let token = sample(logits.view(), &self.config, &mut self.rng)?;
        self.feed(&[token])?;
        Ok(token)
    }

    /// Draws up to `n` tokens, handing each to `on_token` as soon as it is drawn (so a caller
    /// can print text as it is produced); stops early when `on_token` returns `false`, or after
    /// `<eos>` with [`SamplingConfig::stop_at_eos`]. Returns how many tokens were drawn.
    ///
    /// ```
    /// use rnnkit::generate::{Generator, SamplingConfig};
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let lm = LanguageModel::new(12, RnnConfig::new(CellKind::Lstm, 4, 8), 3).unwrap();
    /// let mut g = Generator::new(&lm, SamplingConfig::default()).unwrap();
    /// let mut seen = 0;
    /// let drawn = g.generate(50, |_| { seen += 1; seen < 5 }).unwrap();
    /// assert_eq!((drawn, seen), (5, 5));
    /// ```
    pub fn generate(&mut self, n: usize, mut on_token: impl FnMut(u32) -> bool) -> Result<usize> {
        for drawn in 1..=n {
            let token = self.next_token()?;
            let go_on = on_token(token);
            if !go_on || (self.config.stop_at_eos && token == EOS_ID) {
                return Ok(drawn);
            }
        }
        Ok(n)
    }

    /// [`Generator::generate`] handing out text instead of ids. Each drawn id goes through
    /// `text`, a [`StreamDecoder`] (from [`TextPipeline::stream_decoder_after`] with the
    /// prompt's ids, so that the first word gets its space); `on_text` gets each non-empty piece
    /// as it completes, and at the end whatever `text` still holds (an unfinished character).
    /// The pieces join up to the decoded continuation exactly, byte-level BPE included. Stops
    /// early when `on_text` returns `false` (nothing more is handed out then) or after `<eos>`
    /// with [`SamplingConfig::stop_at_eos`]. Returns how many tokens were drawn.
    ///
    /// Errors: those of [`Generator::generate`] and of [`StreamDecoder::push`] (an id the
    /// pipeline's vocabulary lacks: the model and pipeline do not belong together).
    ///
    /// [`TextPipeline::stream_decoder_after`]: crate::data::text::TextPipeline::stream_decoder_after
    ///
    /// ```
    /// use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
    /// use rnnkit::generate::{Generator, SamplingConfig};
    /// use rnnkit::models::LanguageModel;
    /// use rnnkit::{CellKind, RnnConfig};
    /// let text = TextPipeline::fit(&["abc abd"], &TextConfig::default()).unwrap();
    /// let lm = LanguageModel::new(text.vocab().len(), RnnConfig::new(CellKind::Gru, 4, 8), 1)
    ///     .unwrap();
    /// let mut g = Generator::new(&lm, SamplingConfig::default()).unwrap();
    /// let prompt = text.encode("ab").unwrap();
    /// g.prime(&prompt).unwrap();
    /// let mut out = String::new();
    /// let stream = text.stream_decoder_after(&prompt).unwrap();
    /// let drawn = g.generate_text(20, stream, |piece| { out.push_str(piece); true }).unwrap();
    /// assert!(drawn >= 1 && !out.is_empty());
    /// ```
    pub fn generate_text(
        &mut self,
        n: usize,
        mut text: StreamDecoder<'_>,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<usize> {
        let mut failed = None;
        let mut stopped = false;
        let drawn = self.generate(n, |id| match text.push(id) {
            Ok(piece) => {
                stopped = !piece.is_empty() && !on_text(&piece);
                !stopped
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let rest = text.finish()?;
        if !stopped && !rest.is_empty() {
            on_text(&rest);
        }
        Ok(drawn)
    }

    /// [`Generator::generate`] with `n` = [`SamplingConfig::max_tokens`].
    pub fn run(&mut self, on_token: impl FnMut(u32) -> bool) -> Result<usize> {
        self.generate(self.config.max_tokens, on_token)
    }

    /// Runs `ids` through embedding and stack from the carried state; keeps the new state and
    /// the logits after the last id.
    fn feed(&mut self, ids: &[u32]) -> Result<()> {
        let rows: Vec<usize> = ids.iter().map(|&t| t as usize).collect();
        let emb = self.model.embedding().forward(&rows)?; // [T, D]
        let h = if let [_] = ids {
            self.model.rnn().step(emb.view(), &mut self.state)? // [1, P]
        } else {
            // The whole prompt in one pass: the stack's packed kernels pay off over many steps.
            let steps = emb.nrows();
            let x = emb.insert_axis(Axis(1)); // [T, 1, D]
            let out = self
                .model
                .rnn()
                .forward(x.view(), Some(&self.state), None)?;
            self.state = out.state;
            out.output.index_axis(Axis(0), steps - 1).to_owned() // [1, P]
        };
        self.logits = Some(self.decode(h.view())?);
        Ok(())
    }

    /// `h Wᵀ + b` for one row `h` `[1, P]`: logits `[V]`.
    fn decode(&self, h: ArrayView2<f32>) -> Result<Array1<f32>> {
        let m = self.model;
        let bias = m.decoder().bias().map(|b| b.view());
        let z = crate::nn::linear::forward(h, m.decoder_weight(), bias)?; // [1, V]
        Ok(z.index_axis_move(Axis(0), 0))
    }
}

/// Draws one token id from `logits` `[V]` as `config` says (temperature, top-k, top-p; `<pad>`
/// never), using `rng`. Logits that are NaN or +∞ are an error (a diverged model).
///
/// ```
/// use ndarray::array;
/// use rand::SeedableRng;
/// use rnnkit::generate::{sample, SamplingConfig};
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let greedy = SamplingConfig { temperature: 0.0, ..SamplingConfig::default() };
/// // <pad> (id 0) has the largest logit but is never drawn.
/// assert_eq!(sample(array![9.0, 1.0, 3.0, 2.0].view(), &greedy, &mut rng).unwrap(), 2);
/// ```
pub fn sample(logits: ArrayView1<f32>, config: &SamplingConfig, rng: &mut impl Rng) -> Result<u32> {
    config.validate()?;
    if logits.iter().any(|z| z.is_nan() || *z == f32::INFINITY) {
        return Err(Error::Params(
            "the model's logits are NaN or infinite (diverged weights?): load another checkpoint"
                .into(),
        ));
    }
    let first = PAD_ID as usize + 1;
    if logits.len() <= first {
        return Err(Error::Shape(format!(
            "{} logits leave no token besides <pad> to draw",
            logits.len()
        )));
    }
    // Candidates: every id but <pad>, in id order.
    let ids = first..logits.len();
    let greedy = config.temperature == 0.0 || config.top_k == Some(1);
    if greedy {
        // Argmax; the first maximum wins, as in torch.argmax.
        let best = ids
            .reduce(|a, b| if logits[b] > logits[a] { b } else { a })
            .expect("at least one candidate");
        return Ok(best as u32);
    }
    let inv_t = 1.0 / config.temperature as f64;
    let mut cand: Vec<(usize, f64)> = ids.map(|i| (i, logits[i] as f64 * inv_t)).collect();
    if config.top_k.is_some() || config.top_p.is_some() {
        // Most likely first; the stable sort keeps equal logits in id order.
        cand.sort_by(|a, b| b.1.total_cmp(&a.1));
        if let Some(k) = config.top_k {
            cand.truncate(k);
        }
    }
    // Softmax over what is left, shifted by its maximum so exp cannot overflow.
    let max = cand.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return Err(Error::Params(
            "every candidate token has logit −∞: nothing can be drawn".into(),
        ));
    }
    for c in &mut cand {
        c.1 = (c.1 - max).exp();
    }
    let total: f64 = cand.iter().map(|c| c.1).sum();
    if let Some(p) = config.top_p {
        // The smallest prefix (most likely first) holding at least p of the mass; never empty.
        let need = p as f64 * total;
        let mut mass = 0.0;
        let mut keep = cand.len();
        for (n, c) in cand.iter().enumerate() {
            mass += c.1;
            if mass >= need {
                keep = n + 1;
                break;
            }
        }
        cand.truncate(keep);
    }
    let total: f64 = cand.iter().map(|c| c.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(id, w) in &cand {
        if u < w {
            return Ok(id as u32);
        }
        u -= w;
    }
    // Rounding can leave u a hair above the last weight: the last drawable candidate owns that
    // sliver (one with weight 0, from a logit of −∞, must stay undrawable).
    let last = cand
        .iter()
        .rev()
        .find(|c| c.1 > 0.0)
        .expect("the maximum has weight 1");
    Ok(last.0 as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    #[test]
    fn ties_go_to_the_lowest_id_in_every_greedy_mode() {
        let z = array![0.0f32, 1.0, 5.0, 5.0, 2.0];
        let greedy = SamplingConfig {
            temperature: 0.0,
            ..SamplingConfig::default()
        };
        let k1 = SamplingConfig {
            top_k: Some(1),
            ..SamplingConfig::default()
        };
        let p0 = SamplingConfig {
            top_p: Some(1e-7),
            ..SamplingConfig::default()
        };
        for c in [greedy, k1, p0] {
            for _ in 0..20 {
                assert_eq!(sample(z.view(), &c, &mut rng()).unwrap(), 2, "{c:?}");
            }
        }
    }

    #[test]
    fn tokens_with_logit_minus_infinity_are_never_drawn() {
        let z = array![0.0f32, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
        let mut r = rng();
        for _ in 0..200 {
            assert_eq!(
                sample(z.view(), &SamplingConfig::default(), &mut r).unwrap(),
                2
            );
        }
        let none = array![0.0f32, f32::NEG_INFINITY];
        assert!(sample(none.view(), &SamplingConfig::default(), &mut r).is_err());
    }

    #[test]
    fn nan_or_infinite_logits_are_errors_not_panics() {
        let c = SamplingConfig::default();
        for bad in [f32::NAN, f32::INFINITY] {
            let z = array![0.0f32, 1.0, bad];
            assert!(sample(z.view(), &c, &mut rng()).is_err());
        }
        assert!(sample(array![1.0f32].view(), &c, &mut rng()).is_err());
    }

    #[test]
    fn top_k_larger_than_the_vocabulary_keeps_everything() {
        let z = array![0.0f32, 0.0, 0.0];
        let c = SamplingConfig {
            top_k: Some(50),
            ..SamplingConfig::default()
        };
        let mut r = rng();
        let mut seen = [false; 3];
        for _ in 0..100 {
            seen[sample(z.view(), &c, &mut r).unwrap() as usize] = true;
        }
        assert_eq!(seen, [false, true, true]);
    }
}
