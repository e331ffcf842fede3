//! The training loop for language models: epochs of truncated-BPTT chunks, clipping, the
//! optimizer and schedule, evaluation, early stopping, the divergence guard, metrics files and
//! checkpoints that resume exactly.
//!
//! Exact resume: everything a step depends on is either in the checkpoint (weights, optimizer
//! and schedule state, the carried recurrent state, the dropout RNG's position, the data
//! position and counters) or derived from the config (each epoch's chunk plan comes from its
//! own generator seeded by `(seed, epoch)`). So a run stopped after any step and resumed ends
//! with bit-identical weights to an uninterrupted run with the same thread count.

use super::checkpoint::{Checkpoint, Progress, RngState};
use super::clock::RunClock;
use super::lm::{LanguageModel, LmDropout, LmGrads};
use super::stop::StopSignal;
use super::tbptt::{ChunkLength, batchify, chunks};
use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::optim::{
    ClipStats, Optimizer, OptimizerConfig, ParamRef, Schedule, ScheduleConfig, clip_grad_norm,
    grad_norm,
};
use crate::recurrent::RnnState;
use ndarray::ArrayD;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a language model is trained. Defaults suit a small character- or word-level model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmTrainConfig {
    /// Passes over the training stream. Default 10.
    pub epochs: usize,
    /// Parallel streams (`B`) of the training layout. Default 20 (Zaremba et al.).
    pub batch_size: usize,
    /// Parallel streams for evaluation. Default 10 (PyTorch's word_language_model).
    pub eval_batch_size: usize,
    /// Truncated-BPTT length. Default 35.
    pub bptt: usize,
    /// AWD-LSTM's randomly varied chunk length. Default false.
    pub variable_bptt: bool,
    /// Global gradient-norm clip; `None` turns clipping off. Default 5 (the LM practice).
    pub clip_norm: Option<f32>,
    /// The optimizer. Default Adam (lr 1e-3).
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule. Default constant.
    pub schedule: ScheduleConfig,
    /// Seeds dropout and the chunk plans. Default 0.
    pub seed: u64,
    /// Stop after this many epochs without validation improvement; `None` never stops early.
    /// Default `None`.
    pub patience: Option<usize>,
    /// Stop when this many updates in a row were skipped for a non-finite loss or gradient.
    /// Default 10.
    pub max_skipped_in_a_row: u64,
    /// Also write the latest checkpoint every this many steps (it is always written at the end
    /// of each epoch). Default `None`.
    pub checkpoint_every: Option<u64>,
    /// Stop (with a checkpoint) after this many optimizer steps in total; for time-boxed runs.
    /// Default `None`.
    pub max_steps: Option<u64>,
    /// Every this many optimizer steps (and once before the first), measure the gradient of
    /// the last step's loss through time and the gate statistics on the first `bptt` tokens
    /// of (at most 32 streams of) the validation text, and append them to
    /// `metrics/diagnostics.jsonl` (see [`crate::train::diagnostics`]). Default `None`: off,
    /// and costs nothing.
    pub diagnostics_every: Option<u64>,
    /// At the end, put back the weights of the best validation epoch, and score the test split
    /// with them (as PyTorch's word_language_model example does). Default true.
    pub restore_best: bool,
}

impl Default for LmTrainConfig {
    fn default() -> Self {
        LmTrainConfig {
            epochs: 10,
            batch_size: 20,
            eval_batch_size: 10,
            bptt: 35,
            variable_bptt: false,
            clip_norm: Some(5.0),
            optimizer: OptimizerConfig::default(),
            schedule: ScheduleConfig::default(),
            seed: 0,
            patience: None,
            max_skipped_in_a_row: 10,
            checkpoint_every: None,
            max_steps: None,
            diagnostics_every: None,
            restore_best: true,
        }
    }
}

/// The model's shape and the training config: what a checkpoint stores to rebuild a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmRunConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// The recurrent stack (its `input_size` is the embedding size).
    pub rnn: RnnConfig,
    /// Training.
    pub train: LmTrainConfig,
    /// Whether the decoder shares the embedding matrix (see `LanguageModel::tie`).
    #[serde(default)]
    pub tie_weights: bool,
    /// Dropout around the stack.
    #[serde(default)]
    pub dropout: LmDropout,
}

/// Token streams of the three splits.
#[derive(Clone, Debug, Default)]
pub struct LmData {
    /// Training stream.
    pub train: Vec<u32>,
    /// Validation stream.
    pub valid: Vec<u32>,
    /// Test stream (evaluated once at the end), if any.
    pub test: Option<Vec<u32>>,
}

/// One optimizer step, as reported to a [`Reporter`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Chunk index within the epoch and the epoch's chunk count.
    pub chunk: usize,
    /// Chunks in the epoch.
    pub chunks: usize,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Mean cross-entropy of the chunk.
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Whether clipping scaled the gradients.
    pub clipped: bool,
    /// Learning rate used.
    pub lr: f32,
    /// Whether the divergence guard skipped this update.
    pub skipped: bool,
    /// Tokens in the chunk.
    pub tokens: usize,
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training cross-entropy over the epoch.
    pub train_loss: f64,
    /// Validation cross-entropy (nats per token).
    pub val_loss: f64,
    /// Learning rate after the epoch's schedule update.
    pub lr: f32,
    /// Seconds the epoch took.
    pub seconds: f64,
    /// Whether this epoch is the best so far.
    pub best: bool,
}

/// Receives progress (the CLI draws bars and logs from it).
pub trait Reporter {
    /// After every chunk.
    fn step(&mut self, _report: &StepReport) {}
    /// After every epoch.
    fn epoch(&mut self, _report: &EpochReport) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Best validation loss and its epoch.
    pub best_val: Option<(f64, usize)>,
    /// Test loss, when test data was given and the run finished: of the best validation
    /// epoch's weights with `restore_best` (the default), else of the final ones.
    pub test_loss: Option<f64>,
    /// Stopped by early stopping.
    pub stopped_early: bool,
    /// Stopped before finishing, by `max_steps` or a [`StopSignal`] (resume to continue).
    pub interrupted: bool,
    /// Updates skipped by the divergence guard.
    pub skipped: u64,
    /// Fraction of steps whose gradients were clipped.
    pub clip_rate: f64,
    /// Wall seconds of training in all sittings (a resumed run adds to its checkpoint's).
    pub train_seconds: f64,
}

/// Trains a [`LanguageModel`].
///
/// A run in a directory, stopped after 12 steps and resumed exactly:
///
/// ```
/// use rnnkit::train::lm::LanguageModel;
/// use rnnkit::train::trainer::{LmData, LmTrainConfig, LmTrainer, Silent};
/// use rnnkit::{CellKind, RnnConfig};
///
/// # fn main() -> rnnkit::Result<()> {
/// let stream: Vec<u32> = (0..600).map(|i| (i * 7 % 13) as u32).collect();
/// let data = LmData {
///     train: stream[..400].to_vec(),
///     valid: stream[400..500].to_vec(),
///     test: Some(stream[500..].to_vec()),
/// };
/// let model = LanguageModel::new(13, RnnConfig::new(CellKind::Lstm, 8, 16), 0)?;
/// let config = LmTrainConfig { epochs: 2, batch_size: 4, bptt: 10, max_steps: Some(12), ..Default::default() };
/// let dir = std::env::temp_dir().join(format!("rnnkit-doc-lm-{}", std::process::id()));
///
/// let mut trainer = LmTrainer::new(model, config, Some(dir.clone()))?;
/// let part = trainer.run(&data, &mut Silent)?;
/// assert!(part.interrupted && part.steps == 12);
///
/// // Later (another process, another day): continue from the latest checkpoint.
/// let more = LmTrainConfig { max_steps: None, ..trainer.config().train.clone() };
/// let checkpoint = dir.join("checkpoints/latest.safetensors");
/// let mut trainer = LmTrainer::resume(&checkpoint, Some(more), Some(dir.clone()))?;
/// let done = trainer.run(&data, &mut Silent)?;
/// assert_eq!((done.epochs, done.interrupted), (2, false));
/// assert!(done.test_loss.is_some_and(f64::is_finite)); // scored once, at the end
/// assert!(done.train_seconds > part.train_seconds); // wall time of both sittings
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
pub struct LmTrainer {
    /// The model being trained.
    pub model: LanguageModel,
    config: LmRunConfig,
    optimizer: Box<dyn Optimizer + Send>,
    schedule: Schedule,
    rng: ChaCha8Rng,
    progress: Progress,
    state: RnnState,
    grads: LmGrads,
    run_dir: Option<PathBuf>,
    stop: StopSignal,
    /// The best validation epoch's weights, kept for `restore_best`.
    best: Option<BTreeMap<String, ArrayD<f32>>>,
}

impl LmTrainer {
    /// A fresh run. With a `run_dir`, metrics go to `run_dir/metrics/` and checkpoints to
    /// `run_dir/checkpoints/{latest,best}.safetensors`. Example on [`LmTrainer`].
    pub fn new(
        model: LanguageModel,
        train: LmTrainConfig,
        run_dir: Option<PathBuf>,
    ) -> Result<Self> {
        validate(&train)?;
        model.dropout.validate()?;
        let config = LmRunConfig {
            vocab: model.vocab_size(),
            rnn: model.rnn.config().clone(),
            train,
            tie_weights: model.tie_weights,
            dropout: model.dropout,
        };
        let optimizer = config.train.optimizer.build()?;
        let schedule = Schedule::new(config.train.schedule.clone(), config.train.optimizer.lr())?;
        let rng = ChaCha8Rng::seed_from_u64(config.train.seed);
        let state = RnnState::zeros(&config.rnn, config.train.batch_size);
        let progress = Progress::start(&rng, schedule.state());
        let grads = model.zero_grads();
        Ok(LmTrainer {
            model,
            config,
            optimizer,
            schedule,
            rng,
            progress,
            state,
            grads,
            run_dir,
            stop: StopSignal::new(),
            best: None,
        })
    }

    /// Continues the run saved in `checkpoint`. `train` may change what does not affect the
    /// math already done (e.g. `epochs`, `max_steps`, `checkpoint_every`); `None` keeps the
    /// saved config. Example on [`LmTrainer`].
    pub fn resume(
        checkpoint: &Path,
        train: Option<LmTrainConfig>,
        run_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let ck = Checkpoint::load(checkpoint)?;
        let mut config: LmRunConfig = serde_json::from_str(&ck.config_json)
            .map_err(|e| Error::Config(format!("{}: config: {e}", checkpoint.display())))?;
        if let Some(t) = train {
            config.train = t;
        }
        let model = model_from(&config, &ck.model)?;
        let mut trainer = LmTrainer::new(model, config.train.clone(), run_dir)?;
        // The best epoch's weights, for restore_best at the end, are saved beside the latest.
        let best = checkpoint.with_file_name("best.safetensors");
        if config.train.restore_best && ck.progress.best_val.is_some() && best.exists() {
            trainer.best = Some(Checkpoint::load(&best)?.model);
        }
        trainer.optimizer.load_state(&ck.optimizer)?;
        trainer.schedule.load_state(&ck.progress.schedule)?;
        trainer.rng = ck.progress.rng.restore()?;
        trainer.state = ck.state;
        trainer.progress = ck.progress;
        Ok(trainer)
    }

    /// The run's config (model shape and training).
    pub fn config(&self) -> &LmRunConfig {
        &self.config
    }

    /// Position and counters.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The flag that stops [`run`](Self::run) at the next step boundary with a checkpoint;
    /// raise it from another thread (e.g. a Ctrl-C handler).
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// A checkpoint of the current position.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let mut progress = self.progress.clone();
        progress.rng = RngState::capture(&self.rng);
        progress.schedule = self.schedule.state();
        Ok(Checkpoint {
            model: self.model.named_tensors(),
            optimizer: self.optimizer.state(),
            state: self.state.clone(),
            progress,
            config_json: serde_json::to_string(&self.config)
                .map_err(|e| Error::Config(format!("cannot encode the config: {e}")))?,
        })
    }

    fn save(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.run_dir {
            let dir = dir.join("checkpoints");
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                path: dir.display().to_string(),
                source,
            })?;
            self.checkpoint()?
                .save(&dir.join(format!("{name}.safetensors")))?;
        }
        Ok(())
    }

    /// Mean cross-entropy (nats per token) of `stream` laid out in `eval_batch_size` streams.
    pub fn evaluate(&self, stream: &[u32]) -> Result<f64> {
        let b = self.config.train.eval_batch_size;
        let data = batchify(stream, b)?;
        let plan = chunks(
            data.nrows(),
            ChunkLength::Fixed(self.config.train.bptt),
            &mut ChaCha8Rng::seed_from_u64(0),
        )?;
        let mut state = RnnState::zeros(&self.config.rnn, b);
        let (mut nll, mut count) = (0.0f64, 0usize);
        for c in plan {
            let x = data.slice(ndarray::s![c.start..c.start + c.len, ..]);
            let y = data.slice(ndarray::s![c.start + 1..c.start + c.len + 1, ..]);
            let out = self.model.eval_chunk(x, y, &mut state)?;
            nll += out.nll_sum;
            count += out.count;
        }
        Ok(nll / count.max(1) as f64)
    }

    /// Trains until `epochs` are done, early stopping triggers, `max_steps` is reached or the
    /// [`stop_signal`](Self::stop_signal) is raised. Example on [`LmTrainer`].
    pub fn run(&mut self, data: &LmData, reporter: &mut dyn Reporter) -> Result<RunSummary> {
        let cfg = self.config.train.clone();
        let train = batchify(&data.train, cfg.batch_size)?;
        // Splits too short for the evaluation layout fail now, not after the first epoch.
        let splits = [
            ("validation", Some(&data.valid)),
            ("test", data.test.as_ref()),
        ];
        for (split, stream) in splits {
            if let Some(stream) = stream
                && stream.len() < 2 * cfg.eval_batch_size.max(1)
            {
                return Err(Error::Config(format!(
                    "the {split} split has {} tokens, too few for eval_batch_size {} (need at \
                     least {}): lower train.eval_batch_size or give a longer {split} text",
                    stream.len(),
                    cfg.eval_batch_size,
                    2 * cfg.eval_batch_size
                )));
            }
        }
        let mut metrics = Metrics::open(self.run_dir.as_deref(), &self.progress)?;
        let mut clock = RunClock::resume(&self.progress);
        let names = self.model.param_names();
        let length = if cfg.variable_bptt {
            ChunkLength::Variable(cfg.bptt)
        } else {
            ChunkLength::Fixed(cfg.bptt)
        };
        let mut stopped_early = false;
        // The diagnostics' probe: the first `bptt` tokens of the validation streams.
        let probe = match (cfg.diagnostics_every, &self.run_dir) {
            (Some(k), Some(dir)) if k > 0 => {
                super::diagnostics::trim_diagnoses(dir, self.progress.step)?;
                let rows = batchify(&data.valid, cfg.eval_batch_size.clamp(1, 32))?;
                let t = cfg.bptt.min(rows.nrows().saturating_sub(1));
                (t > 0).then(|| {
                    let x = rows.slice(ndarray::s![..t, ..]).to_owned();
                    let y: Vec<u32> = rows.row(t).to_vec();
                    (x, y)
                })
            }
            _ => None,
        };
        let diagnose = |model: &LanguageModel, dir: &Path, step: u64, epoch: usize| -> Result<()> {
            if let Some((x, y)) = &probe {
                let d = model.diagnose(x.view(), y)?;
                super::diagnostics::write_diagnosis(dir, step, epoch, &d)?;
            }
            Ok(())
        };
        if let Some(dir) = &self.run_dir
            && self.progress.step == 0
        {
            diagnose(&self.model, dir, 0, self.progress.epoch)?;
        }
        while self.progress.epoch < cfg.epochs {
            let epoch = self.progress.epoch;
            clock.start_epoch();
            // Each epoch's plan has its own generator, so a resumed run redraws the same plan.
            let mut plan_rng = ChaCha8Rng::seed_from_u64(
                cfg.seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(epoch as u64 + 1),
            );
            let plan = chunks(train.nrows(), length, &mut plan_rng)?;
            if self.progress.chunk == 0 {
                self.state = RnnState::zeros(&self.config.rnn, cfg.batch_size);
            }
            while self.progress.chunk < plan.len() {
                if cfg.max_steps.is_some_and(|m| self.progress.step >= m)
                    || self.stop.is_requested()
                {
                    clock.stamp(&mut self.progress);
                    self.save("latest")?;
                    return Ok(self.summary(None, false, true));
                }
                let c = plan[self.progress.chunk];
                let x = train.slice(ndarray::s![c.start..c.start + c.len, ..]);
                let y = train.slice(ndarray::s![c.start + 1..c.start + c.len + 1, ..]);
                self.grads.fill_zero();
                let out = self.model.train_chunk(
                    x,
                    y,
                    &mut self.state,
                    &mut self.grads,
                    &mut self.rng,
                )?;
                let (norm, clipped) = clip_or_measure(
                    self.grads.slices_mut(),
                    cfg.clip_norm,
                    &mut self.progress.clip,
                )?;
                let lr = self.schedule.lr();
                let skipped = !out.loss.is_finite() || !norm.is_finite();
                if skipped {
                    // The divergence guard: no update from a non-finite loss or gradient.
                    if let Some(e) = count_skip(
                        &mut self.progress,
                        cfg.max_skipped_in_a_row,
                        epoch,
                        lr,
                        cfg.clip_norm,
                    ) {
                        clock.stamp(&mut self.progress);
                        self.save("latest")?;
                        return Err(e);
                    }
                } else {
                    self.progress.skipped_in_a_row = 0;
                    let pairs = self.model.params_and_grads(&self.grads);
                    let mut refs: Vec<ParamRef> = names
                        .iter()
                        .zip(pairs)
                        .map(|(n, (p, g))| ParamRef::new(n, p, g))
                        .collect();
                    self.optimizer.step(&mut refs, lr)?;
                    self.schedule.on_step();
                    self.progress.step += 1;
                    self.progress.epoch_nll += out.nll_sum;
                    self.progress.epoch_tokens += out.count as u64;
                }
                self.progress.chunk += 1;
                let report = StepReport {
                    epoch,
                    chunk: self.progress.chunk,
                    chunks: plan.len(),
                    step: self.progress.step,
                    loss: out.loss,
                    grad_norm: norm,
                    clipped,
                    lr,
                    skipped,
                    tokens: out.count,
                };
                metrics.step(&report)?;
                reporter.step(&report);
                if let (Some(dir), Some(k)) = (&self.run_dir, cfg.diagnostics_every)
                    && !skipped
                    && k > 0
                    && self.progress.step.is_multiple_of(k)
                {
                    diagnose(&self.model, dir, self.progress.step, epoch)?;
                }
                if cfg
                    .checkpoint_every
                    .is_some_and(|k| k > 0 && self.progress.step.is_multiple_of(k) && !skipped)
                {
                    clock.stamp(&mut self.progress);
                    self.save("latest")?;
                }
            }
            let val_loss = self.evaluate(&data.valid)?;
            self.schedule.on_epoch_end(Some(val_loss))?;
            let best = self.progress.best_val.is_none_or(|(b, _)| val_loss < b);
            if best {
                self.progress.best_val = Some((val_loss, epoch));
                self.progress.bad_epochs = 0;
                if cfg.restore_best {
                    self.best = Some(self.model.named_tensors());
                }
            } else {
                self.progress.bad_epochs += 1;
            }
            let report = EpochReport {
                epoch,
                train_loss: self.progress.epoch_nll / self.progress.epoch_tokens.max(1) as f64,
                val_loss,
                lr: self.schedule.lr(),
                seconds: clock.end_epoch(),
                best,
            };
            self.progress.epoch += 1;
            self.progress.chunk = 0;
            self.progress.epoch_nll = 0.0;
            self.progress.epoch_tokens = 0;
            clock.stamp(&mut self.progress);
            self.save("latest")?;
            if best {
                self.save("best")?;
            }
            metrics.epoch(&report)?;
            reporter.epoch(&report);
            if cfg.patience.is_some_and(|p| self.progress.bad_epochs >= p) {
                stopped_early = true;
                break;
            }
        }
        if cfg.restore_best
            && let Some(best) = self.best.take()
        {
            self.model = model_from(&self.config, &best)?;
        }
        let test = match &data.test {
            Some(t) => Some(self.evaluate(t)?),
            None => None,
        };
        clock.stamp(&mut self.progress);
        Ok(self.summary(test, stopped_early, false))
    }

    fn summary(
        &self,
        test_loss: Option<f64>,
        stopped_early: bool,
        interrupted: bool,
    ) -> RunSummary {
        RunSummary {
            epochs: self.progress.epoch,
            steps: self.progress.step,
            best_val: self.progress.best_val,
            test_loss,
            stopped_early,
            interrupted,
            skipped: self.progress.skipped,
            clip_rate: self.progress.clip.clip_rate(),
            train_seconds: self.progress.train_seconds,
        }
    }
}

/// Clips the gradients by global norm (recording the statistics in `stats`), or with
/// `clip_norm = None` only measures the norm. Returns the pre-clip norm and whether it clipped.
pub(crate) fn clip_or_measure(
    mut slices: Vec<&mut [f32]>,
    clip_norm: Option<f32>,
    stats: &mut ClipStats,
) -> Result<(f32, bool)> {
    match clip_norm {
        Some(max) => {
            let r = clip_grad_norm(&mut slices, max)?;
            stats.record(&r);
            Ok((r.pre_clip_norm, r.clipped))
        }
        None => {
            let views: Vec<&[f32]> = slices.iter().map(|s| &**s).collect();
            Ok((grad_norm(&views), false))
        }
    }
}

/// The divergence guard's count of a skipped update (non-finite loss or gradient): the error
/// that stops the run when too many came in a row, with what to try.
pub(crate) fn count_skip(
    progress: &mut Progress,
    max_in_a_row: u64,
    epoch: usize,
    lr: f32,
    clip_norm: Option<f32>,
) -> Option<Error> {
    progress.skipped += 1;
    progress.skipped_in_a_row += 1;
    (progress.skipped_in_a_row >= max_in_a_row).then(|| {
        Error::Diverged(format!(
            "{} updates in a row had a non-finite loss or gradient (epoch {epoch}, step {}); \
             try a lower learning rate (now {lr}), gradient clipping (clip_norm, now \
             {clip_norm:?}), or smaller initial weights or inputs",
            progress.skipped_in_a_row, progress.step
        ))
    })
}

fn validate(cfg: &LmTrainConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    if cfg.batch_size == 0 || cfg.eval_batch_size == 0 {
        return bad("batch_size and eval_batch_size must be at least 1".into());
    }
    if cfg.bptt == 0 {
        return bad("bptt must be at least 1".into());
    }
    if cfg.clip_norm.is_some_and(|c| c.is_nan() || c <= 0.0) {
        return bad(format!(
            "clip_norm must be positive, got {:?}",
            cfg.clip_norm
        ));
    }
    if cfg.max_skipped_in_a_row == 0 {
        return bad("max_skipped_in_a_row must be at least 1".into());
    }
    cfg.optimizer.validate()
}

/// The model a run's config describes, over `tensors` (by PyTorch name).
fn model_from(
    config: &LmRunConfig,
    tensors: &BTreeMap<String, ArrayD<f32>>,
) -> Result<LanguageModel> {
    let mut model = LanguageModel::from_named(config.rnn.clone(), tensors)?;
    if config.tie_weights {
        model.tie()?;
    }
    model.dropout = config.dropout;
    Ok(model)
}

/// Per-step and per-epoch metrics as CSV and JSON lines, appended (a resumed run continues the
/// same files).
///
/// Opening trims lines written after the position the run restarts from (`at`): a run killed
/// after its last checkpoint wrote lines for steps it will redo, and without trimming those
/// steps would appear twice. A fresh run (`at` at the start) starts the files over.
pub(crate) struct Metrics {
    files: Option<[std::fs::File; 4]>,
}

/// Whether a metrics line (CSV after its header, or JSON) comes before position `at`: step lines
/// up to `(epoch, chunk)`, epoch lines of the finished epochs.
fn keep_line(line: &str, csv: bool, steps: bool, at: &Progress) -> bool {
    let (epoch, chunk) = if csv {
        let mut f = line.split(',');
        let e = f.next().and_then(|v| v.parse::<usize>().ok());
        let c = f.next().and_then(|v| v.parse::<usize>().ok());
        (e, c)
    } else {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => return false,
        };
        let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
        (get("epoch"), get("chunk"))
    };
    match (epoch, steps) {
        (Some(e), true) => e < at.epoch || (e == at.epoch && chunk.is_some_and(|c| c <= at.chunk)),
        (Some(e), false) => e < at.epoch,
        (None, _) => false,
    }
}

impl Metrics {
    pub(crate) fn open(run_dir: Option<&Path>, at: &Progress) -> Result<Self> {
        let Some(dir) = run_dir else {
            return Ok(Metrics { files: None });
        };
        let dir = dir.join("metrics");
        fn io(p: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
            move |source| Error::Io {
                path: p.display().to_string(),
                source,
            }
        }
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let open = |name: &str, header: &str| -> Result<std::fs::File> {
            let path = dir.join(name);
            if path.exists() {
                let (csv, steps) = (name.ends_with(".csv"), name.starts_with("steps"));
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                let mut kept = String::new();
                for (i, line) in text.lines().enumerate() {
                    if (csv && i == 0) || keep_line(line, csv, steps, at) {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
                if kept.len() != text.len() {
                    crate::io::write_atomic(&path, kept.as_bytes())?;
                }
            }
            let fresh = !path.exists();
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io(&path))?;
            if fresh && !header.is_empty() {
                writeln!(f, "{header}").map_err(io(&path))?;
            }
            Ok(f)
        };
        Ok(Metrics {
            files: Some([
                open(
                    "steps.csv",
                    "epoch,chunk,step,loss,grad_norm,clipped,lr,skipped,tokens",
                )?,
                open("steps.jsonl", "")?,
                open("epochs.csv", "epoch,train_loss,val_loss,lr,seconds,best")?,
                open("epochs.jsonl", "")?,
            ]),
        })
    }

    pub(crate) fn step(&mut self, r: &StepReport) -> Result<()> {
        let Some(files) = &mut self.files else {
            return Ok(());
        };
        let csv = format!(
            "{},{},{},{},{},{},{},{},{}",
            r.epoch, r.chunk, r.step, r.loss, r.grad_norm, r.clipped, r.lr, r.skipped, r.tokens
        );
        let json = serde_json::json!({
            "epoch": r.epoch, "chunk": r.chunk, "step": r.step, "loss": r.loss,
            "grad_norm": r.grad_norm, "clipped": r.clipped, "lr": r.lr, "skipped": r.skipped,
            "tokens": r.tokens,
        });
        write_lines(files, 0, &csv, &json.to_string())
    }

    pub(crate) fn epoch(&mut self, r: &EpochReport) -> Result<()> {
        let Some(files) = &mut self.files else {
            return Ok(());
        };
        let csv = format!(
            "{},{},{},{},{},{}",
            r.epoch, r.train_loss, r.val_loss, r.lr, r.seconds, r.best
        );
        let json = serde_json::json!({
            "epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss, "lr": r.lr,
            "seconds": r.seconds, "best": r.best,
        });
        write_lines(files, 2, &csv, &json.to_string())
    }
}

fn write_lines(files: &mut [std::fs::File; 4], first: usize, csv: &str, json: &str) -> Result<()> {
    let err = |source| Error::Io {
        path: "metrics".into(),
        source,
    };
    writeln!(files[first], "{csv}").map_err(err)?;
    writeln!(files[first + 1], "{json}").map_err(err)
}
