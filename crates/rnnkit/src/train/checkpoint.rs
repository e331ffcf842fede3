//! Checkpoints: everything a run needs to continue exactly where it stopped — weights under
//! PyTorch's names, optimizer state, the recurrent state carried between chunks, the RNG's
//! exact position, schedule state, data position, counters and the resolved config — in one
//! safetensors file written atomically (temp file, fsync, rename), so a crash leaves either the
//! previous checkpoint or the new one, never a torn file.
//!
//! Layout: model tensors by name (`embedding.weight`, `rnn.weight_ih_l0`, …), optimizer state
//! as `optim.<key>` 1-D tensors, the carried state (a language model's, between the chunks of
//! an epoch) as `state.h` / `state.c`; the metadata holds
//! `format` (`rnnkit-checkpoint-1`), `progress` (JSON of [`Progress`]) and `config` (the
//! resolved training config as JSON).

use crate::error::{Error, Result};
use crate::io::TensorFile;
use crate::optim::{ClipStats, ScheduleState};
use crate::recurrent::RnnState;
use ndarray::{Array1, ArrayD, Ix3};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FORMAT: &str = "rnnkit-checkpoint-1";

/// The exact position of a ChaCha8 stream (seed, stream, word position).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte seed.
    pub seed: [u8; 32],
    /// Stream id.
    pub stream: u64,
    /// Position in the stream, in 32-bit words (a decimal string: JSON numbers lose u128s).
    pub word_pos: String,
}

impl RngState {
    /// Captures `rng`'s position.
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        RngState {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// A generator at exactly the captured position.
    pub fn restore(&self) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let pos: u128 = self
            .word_pos
            .parse()
            .map_err(|_| Error::Config(format!("bad RNG position `{}`", self.word_pos)))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }
}

/// Where a run is and what it has counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The epoch in progress (0-based).
    pub epoch: usize,
    /// Chunks of that epoch already trained.
    pub chunk: usize,
    /// Optimizer steps taken (skipped steps not included).
    pub step: u64,
    /// The dropout RNG.
    pub rng: RngState,
    /// Learning-rate schedule.
    pub schedule: ScheduleState,
    /// Clipping statistics.
    pub clip: ClipStats,
    /// Best validation loss so far and its epoch.
    pub best_val: Option<(f64, usize)>,
    /// Epochs without validation improvement (early stopping).
    pub bad_epochs: usize,
    /// Updates skipped by the divergence guard, in total and in a row.
    pub skipped: u64,
    /// Consecutive skipped updates at the time of the checkpoint.
    pub skipped_in_a_row: u64,
    /// Sum of the training losses of the epoch in progress (for its mean).
    #[serde(alias = "epoch_nll")]
    pub epoch_loss_sum: f64,
    /// Elements (tokens, sequences, values) counted in the epoch in progress.
    #[serde(alias = "epoch_tokens")]
    pub epoch_count: u64,
    /// Wall seconds already spent in the epoch in progress, in all sittings (see
    /// [`RunClock`](super::clock::RunClock)); 0 in checkpoints from before it was recorded.
    #[serde(default)]
    pub epoch_seconds: f64,
    /// Wall seconds of training in all sittings up to this checkpoint.
    #[serde(default)]
    pub train_seconds: f64,
    /// The divergence rule's reference loss: the larger of the first step's loss and the
    /// model's chance loss; `None` before the first step.
    #[serde(default)]
    pub reference_loss: Option<f64>,
    /// Updates in a row whose loss was above the divergence threshold.
    #[serde(default)]
    pub above_in_a_row: u64,
}

impl Progress {
    /// The position of a new run: nothing trained, nothing counted.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use rnnkit::optim::{Schedule, ScheduleConfig};
    /// use rnnkit::train::checkpoint::Progress;
    ///
    /// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let schedule = Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap();
    /// let p = Progress::start(&rng, schedule.state());
    /// assert_eq!((p.epoch, p.step, p.train_seconds), (0, 0, 0.0));
    /// ```
    pub fn start(rng: &ChaCha8Rng, schedule: ScheduleState) -> Self {
        Progress {
            epoch: 0,
            chunk: 0,
            step: 0,
            rng: RngState::capture(rng),
            schedule,
            clip: ClipStats::default(),
            best_val: None,
            bad_epochs: 0,
            skipped: 0,
            skipped_in_a_row: 0,
            epoch_loss_sum: 0.0,
            epoch_count: 0,
            epoch_seconds: 0.0,
            train_seconds: 0.0,
            reference_loss: None,
            above_in_a_row: 0,
        }
    }
}

/// A checkpoint in memory.
///
/// Reading where a run stands, e.g. before resuming it:
///
/// ```
/// use rnnkit::models::LanguageModel;
/// use rnnkit::train::checkpoint::Checkpoint;
/// use rnnkit::train::{TrainConfig, Trainer};
/// use rnnkit::{CellKind, RnnConfig};
///
/// # fn main() -> rnnkit::Result<()> {
/// let model = LanguageModel::new(10, RnnConfig::new(CellKind::Gru, 4, 8), 0)?;
/// let trainer = Trainer::new(model, TrainConfig::language_model(), None)?;
/// let path = std::env::temp_dir().join(format!("rnnkit-doc-ck-{}.safetensors", std::process::id()));
/// trainer.checkpoint()?.save(&path)?;
///
/// let ck = Checkpoint::load(&path)?;
/// assert_eq!((ck.progress.epoch, ck.progress.step), (0, 0));
/// assert!(ck.model.contains_key("rnn.weight_hh_l0")); // PyTorch's names
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Model parameters by PyTorch name.
    pub model: BTreeMap<String, ArrayD<f32>>,
    /// Optimizer state (`Optimizer::state`).
    pub optimizer: BTreeMap<String, Vec<f32>>,
    /// The recurrent state carried into the next chunk (a language model's; `None` for models
    /// over independent sequences, and at the start of an epoch).
    pub state: Option<RnnState>,
    /// Position and counters.
    pub progress: Progress,
    /// The resolved training config, as JSON.
    pub config_json: String,
}

impl Checkpoint {
    /// Writes the checkpoint atomically (example on [`Checkpoint`]), with a checksum of every
    /// tensor (see [`TensorFile::from_bytes`]).
    ///
    /// # Errors
    /// [`Error::Diverged`] when a weight, the optimizer state or the carried state is NaN or
    /// infinite: such a checkpoint is never written, so the file at `path` keeps the last good
    /// one. [`Error::Io`] when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut f32s = self.model.clone();
        for (k, v) in &self.optimizer {
            f32s.insert(format!("optim.{k}"), Array1::from(v.clone()).into_dyn());
        }
        if let Some(state) = &self.state {
            f32s.insert("state.h".into(), state.h.clone().into_dyn());
            if let Some(c) = &state.c {
                f32s.insert("state.c".into(), c.clone().into_dyn());
            }
        }
        if let Some((name, n)) = crate::io::first_non_finite(&f32s) {
            return Err(Error::Diverged(format!(
                "`{name}` holds {n} non-finite value(s) (NaN or infinity), so {} was not \
                 written and keeps its last good contents; try a lower learning rate or \
                 gradient clipping (train.clip_norm)",
                path.display()
            )));
        }
        let progress = serde_json::to_string(&self.progress)
            .map_err(|e| Error::Config(format!("cannot encode progress: {e}")))?;
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("progress".to_string(), progress),
            ("config".to_string(), self.config_json.clone()),
        ]);
        TensorFile {
            f32: f32s,
            i64: BTreeMap::new(),
            metadata,
        }
        .write(path)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`] (example on [`Checkpoint`]).
    ///
    /// # Errors
    /// [`Error::Read`] when it cannot be read; [`Error::Corrupt`] naming the file when it is
    /// truncated, a tensor's checksum does not match, a tensor is not finite, or its metadata
    /// is not an rnnkit checkpoint's.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::read(path, source))?;
        Self::from_bytes(&bytes, path)
    }

    /// Reads a checkpoint from the bytes of a file [`Checkpoint::save`] wrote; `path` names it
    /// in errors.
    ///
    /// # Errors
    /// As [`Checkpoint::load`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::Corrupt {
            path: path.display().to_string(),
            msg,
        };
        let file = TensorFile::from_bytes(bytes, path)?;
        file.ensure_finite(path)?;
        match file.metadata.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            other => {
                return Err(bad(format!(
                    "not an rnnkit checkpoint (format {other:?}, expected {FORMAT:?})"
                )));
            }
        }
        let progress: Progress = serde_json::from_str(
            file.metadata
                .get("progress")
                .ok_or_else(|| bad("metadata `progress` is missing".into()))?,
        )
        .map_err(|e| bad(format!("metadata `progress`: {e}")))?;
        let config_json = file
            .metadata
            .get("config")
            .cloned()
            .ok_or_else(|| bad("metadata `config` is missing".into()))?;
        let mut model = BTreeMap::new();
        let mut optimizer = BTreeMap::new();
        let (mut h, mut c) = (None, None);
        for (name, t) in file.f32 {
            if let Some(key) = name.strip_prefix("optim.") {
                optimizer.insert(key.to_string(), t.iter().copied().collect());
            } else if name == "state.h" || name == "state.c" {
                let t3 = t
                    .into_dimensionality::<Ix3>()
                    .map_err(|_| bad(format!("`{name}` must be [L·D, B, H]")))?;
                if name == "state.h" {
                    h = Some(t3);
                } else {
                    c = Some(t3);
                }
            } else {
                model.insert(name, t);
            }
        }
        let state = match (h, c) {
            (Some(h), c) => Some(RnnState { h, c }),
            (None, None) => None,
            (None, Some(_)) => return Err(bad("`state.c` without `state.h`".into())),
        };
        Ok(Checkpoint {
            model,
            optimizer,
            state,
            progress,
            config_json,
        })
    }
}
