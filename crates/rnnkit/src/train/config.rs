//! How a model is trained: one config for every task.

use crate::data::stream::ChunkLength;
use crate::error::{Error, Result};
use crate::optim::{OptimizerConfig, ScheduleConfig};
use crate::precision::Precision;
use serde::{Deserialize, Serialize};

/// How a model is trained. `Default` suits a small classifier or forecaster;
/// [`TrainConfig::language_model`] a small character- or word-level language model.
///
/// ```
/// use rnnkit::train::TrainConfig;
/// let lm = TrainConfig::language_model();
/// assert_eq!((lm.batch_size, lm.bptt, lm.clip_norm), (20, 35, Some(5.0)));
/// let seq = TrainConfig { epochs: 0, ..Default::default() };
/// assert!(seq.validate().unwrap_err().to_string().contains("epochs"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training set. Default 20.
    pub epochs: usize,
    /// Examples (sequences, windows) or parallel streams per training batch, for the data
    /// sources the caller builds; kept here so a config and a checkpoint say it. Default 32.
    pub batch_size: usize,
    /// Examples (or streams) per batch when evaluating. Default 256.
    pub eval_batch_size: usize,
    /// Truncated-BPTT length (language models). Default 35.
    pub bptt: usize,
    /// AWD-LSTM's randomly varied chunk length (language models). Default false.
    pub variable_bptt: bool,
    /// Global gradient-norm clip; `None` turns clipping off. Default 1 (DESIGN §6: clipping on,
    /// 1 for regression and small classifiers; 5 is the language-model practice).
    pub clip_norm: Option<f32>,
    /// The optimizer. Default Adam (lr 1e-3).
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule. Default constant.
    pub schedule: ScheduleConfig,
    /// Seeds dropout (and a language model's chunk plans). Default 0. (The batch order of a
    /// shuffled source has its own seed, in the source.)
    pub seed: u64,
    /// Stop after this many epochs without validation improvement; `None` never stops early.
    /// Default 5.
    pub patience: Option<usize>,
    /// Stop as soon as the validation loss is below this: the task is solved (e.g. MSE 0.01
    /// on the adding problem). Default `None`.
    pub stop_below: Option<f64>,
    /// At the end, put back the weights of the best validation epoch and score the test split
    /// with them (as PyTorch's word_language_model example does). Default true.
    pub restore_best: bool,
    /// Stop when this many updates in a row were skipped for a non-finite loss or gradient.
    /// Default 10.
    pub max_skipped_in_a_row: u64,
    /// The divergence rule: stop (exit 1, the last good checkpoint kept) when the training loss
    /// stays above `diverge_factor` times the reference loss for `diverge_steps` updates in a
    /// row; the reference is the larger of the first step's loss and a uniform guess's
    /// (`ln(classes)` for a classifier or language model). An epoch whose validation loss is
    /// above it is never kept as the best. Default 4.
    pub diverge_factor: f64,
    /// See `diverge_factor`; 0 turns the rule off (non-finite losses still stop a run, see
    /// `max_skipped_in_a_row`). Default 20.
    pub diverge_steps: u64,
    /// Also write the latest checkpoint every this many steps (it is always written at the end
    /// of each epoch). Default `None`.
    pub checkpoint_every: Option<u64>,
    /// Stop (with a checkpoint) after this many optimizer steps in total; for time-boxed runs.
    /// Default `None`.
    pub max_steps: Option<u64>,
    /// Every this many optimizer steps (and once before the first), measure the gradient
    /// through time and the gate statistics on the first validation batch (at most 32
    /// sequences or streams) and append them to `metrics/diagnostics.jsonl` (see
    /// [`crate::diagnostics`]). Models without a diagnosis (taggers) skip it. Default `None`:
    /// off, and costs nothing.
    pub diagnostics_every: Option<u64>,
    /// The arithmetic of the recurrent layers' matrix products: `"f32"`, or `"bf16"` (mixed
    /// precision as PyTorch's autocast: bfloat16 operands, f32 accumulation, f32 master weights,
    /// gate math and cell state; needs AVX512-BF16, else f32 with a notice). The decoder and
    /// heads stay f32. Default `"f32"`.
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch_size: 32,
            eval_batch_size: 256,
            bptt: 35,
            variable_bptt: false,
            clip_norm: Some(1.0),
            optimizer: OptimizerConfig::default(),
            schedule: ScheduleConfig::default(),
            seed: 0,
            patience: Some(5),
            stop_below: None,
            restore_best: true,
            max_skipped_in_a_row: 10,
            diverge_factor: 4.0,
            diverge_steps: 20,
            checkpoint_every: None,
            max_steps: None,
            diagnostics_every: None,
            precision: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// The language-model defaults: 10 epochs of 20 streams (Zaremba et al.), evaluation in 10
    /// streams (PyTorch's word_language_model), BPTT 35, clipping at 5, no early stopping.
    pub fn language_model() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 20,
            eval_batch_size: 10,
            clip_norm: Some(5.0),
            patience: None,
            ..TrainConfig::default()
        }
    }

    /// The truncated-BPTT chunk length of the training stream.
    pub fn chunk_length(&self) -> ChunkLength {
        if self.variable_bptt {
            ChunkLength::Variable(self.bptt)
        } else {
            ChunkLength::Fixed(self.bptt)
        }
    }

    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.epochs == 0 || self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad(format!(
                "epochs, batch_size and eval_batch_size must be at least 1, got {}, {} and {}",
                self.epochs, self.batch_size, self.eval_batch_size
            ));
        }
        if self.bptt == 0 {
            return bad("bptt must be at least 1".into());
        }
        if let Some(c) = self.clip_norm.filter(|c| c.is_nan() || *c <= 0.0) {
            return bad(format!(
                "clip_norm must be positive (or absent to turn clipping off), got {c}"
            ));
        }
        if self.max_skipped_in_a_row == 0 {
            return bad("max_skipped_in_a_row must be at least 1".into());
        }
        if !(self.diverge_factor.is_finite() && self.diverge_factor > 1.0) {
            return bad(format!(
                "diverge_factor must be a number above 1, got {} (turn the rule off with \
                 diverge_steps = 0)",
                self.diverge_factor
            ));
        }
        if self.max_steps == Some(0) {
            return bad("max_steps must be at least 1 (or absent to train all epochs)".into());
        }
        if self.patience == Some(0) {
            return bad("patience must be at least 1 (or absent to never stop early)".into());
        }
        self.optimizer.validate()
    }

    /// The training config saved in a checkpoint's metadata, also from checkpoints written
    /// before the one trainer (a language model's `{"vocab", "rnn", "train", ...}`).
    pub(crate) fn from_checkpoint_json(json: &str) -> std::result::Result<Self, String> {
        let mut v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if let Some(train) = v.get_mut("train") {
            v = train.take();
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
}
