//! The training loop for sequence datasets — classification, tagging, forecasting — where each
//! example is its own sequence: padded batches with lengths (or fixed windows) instead of the
//! carried stream of a language model. Same contract as [`super::trainer::LmTrainer`]: clipping
//! by global norm, the optimizer and schedule, validation every epoch, early stopping with the
//! best weights kept, the divergence guard, metrics files, and checkpoints that resume exactly.
//!
//! Exact resume: each epoch's batch order comes from the data source seeded by `(seed, epoch)`
//! ([`Batches::epoch`]), and everything else a step depends on (weights, optimizer and schedule
//! state, the dropout RNG's position, the batch position, counters, the best weights) is in the
//! checkpoint.
//!
//! ```
//! use rnnkit::data::batch::{BatcherConfig, Example, PadConfig};
//! use rnnkit::train::seq_trainer::{ClassBatches, SeqTrainConfig, SeqTrainer};
//! use rnnkit::train::tasks::{InputSpec, Pooling, SequenceClassifier};
//! use rnnkit::train::trainer::Silent;
//! use rnnkit::{CellKind, RnnConfig};
//!
//! // Class = whether the sequence holds token 3.
//! let examples: Vec<Example> = (0..64u32)
//!     .map(|i| {
//!         let ids: Vec<u32> = (0..1 + i % 5).map(|t| 1 + (i * 7 + t) % 5).collect();
//!         let label = ids.contains(&3) as usize;
//!         Example::class(ids, label)
//!     })
//!     .collect();
//! let batching = BatcherConfig { batch_size: 16, ..Default::default() };
//! let train = ClassBatches::new(examples.clone(), batching.clone(), PadConfig::default()).unwrap();
//! let valid = ClassBatches::new(examples, batching, PadConfig::default()).unwrap();
//! let tokens = InputSpec::Tokens { vocab: 6, padding_idx: Some(0) };
//! let model = SequenceClassifier::new(tokens, RnnConfig::new(CellKind::Gru, 8, 16), 2,
//!     Pooling::Last, 0).unwrap();
//! let cfg = SeqTrainConfig { epochs: 3, ..Default::default() };
//! let mut trainer = SeqTrainer::new(model, cfg, None).unwrap();
//! let summary = trainer.run(&train, &valid, None, &mut Silent).unwrap();
//! assert_eq!(summary.epochs, 3);
//! assert!(summary.best_val.unwrap().0.is_finite());
//! ```

use super::checkpoint::{Checkpoint, Progress, RngState};
use super::clock::RunClock;
use super::diagnostics::{Diagnosis, diagnose_forecaster, trim_diagnoses, write_diagnosis};
use super::stop::StopSignal;
use super::tasks::{Forecaster, SeqInput, SequenceClassifier, SequenceTagger, TaskGrads};
use super::trainer::{EpochReport, Metrics, Reporter, StepReport, clip_or_measure, count_skip};
use crate::data::batch::{BatchTargets, Batcher, BatcherConfig, Example, PadConfig, PaddedBatch};
use crate::data::series::{WindowBatch, Windows};
use crate::error::{Error, Result};
use crate::optim::{Optimizer, OptimizerConfig, ParamRef, Schedule, ScheduleConfig};
use crate::recurrent::RnnState;
use ndarray::ArrayD;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The loss of one batch, summed so batches of different sizes average correctly.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// The batch's mean loss (what the gradient is of).
    pub loss: f32,
    /// Sum of the per-element losses.
    pub sum: f64,
    /// Elements counted (sequences, valid steps, or forecast values).
    pub count: usize,
    /// Correct predictions (classification and tagging; 0 for regression).
    pub correct: usize,
}

/// A model the sequence trainer can train: one of the task models of [`super::tasks`] with the
/// batch type it reads.
pub trait TaskModel {
    /// One batch of its data.
    type Batch;
    /// Forward and backward over one batch (training: dropout on), adding into `grads`.
    fn train_step(
        &self,
        batch: &Self::Batch,
        grads: &mut TaskGrads,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss>;
    /// The loss of one batch (evaluation: no dropout).
    fn eval_step(&self, batch: &Self::Batch) -> Result<BatchLoss>;
    /// Zeroed gradient buffers.
    fn zero_grads(&self) -> TaskGrads;
    /// Every parameter with its gradient, in the order of [`TaskModel::named_tensors`]' keys as
    /// listed by [`TaskModel::param_names`].
    fn params_and_grads<'a>(&'a mut self, grads: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])>;
    /// PyTorch names of the parameters, in the order of [`TaskModel::params_and_grads`].
    fn param_names(&self) -> Vec<String>;
    /// Every parameter under its PyTorch name (`embedding.weight`, `rnn.*`, `head.*`).
    fn named_tensors(&self) -> BTreeMap<String, ArrayD<f32>>;
    /// Replaces the parameters with same-named, same-shaped tensors.
    fn load_named(&mut self, tensors: &BTreeMap<String, ArrayD<f32>>) -> Result<()>;
    /// The recurrent stack's config (for the checkpoint's state slot).
    fn rnn_config(&self) -> &crate::RnnConfig;
    /// Gradient-through-time and gate diagnostics on `batch`, for models that have them.
    /// Default: none.
    fn diagnose(&self, _batch: &Self::Batch) -> Result<Option<Diagnosis>> {
        Ok(None)
    }
}

/// The batches of one split, epoch by epoch.
pub trait Batches<B> {
    /// The batches of epoch `epoch` in order; a shuffled source draws the order from
    /// `(seed, epoch)` so a resumed run sees the same batches.
    fn epoch(&self, epoch: usize) -> Result<Vec<B>>;
}

/// Token sequences with labels or tags, bucketed and padded by a [`Batcher`].
pub struct ClassBatches {
    examples: Vec<Example>,
    batcher: Batcher,
}

impl ClassBatches {
    /// Batches of `examples` (shuffling, bucketing and seed from `config`).
    pub fn new(examples: Vec<Example>, config: BatcherConfig, pad: PadConfig) -> Result<Self> {
        let batcher = Batcher::new(&examples, config, pad)?;
        Ok(ClassBatches { examples, batcher })
    }

    /// The same examples in a fixed order (for evaluation and prediction).
    pub fn in_order(examples: Vec<Example>, batch_size: usize, pad: PadConfig) -> Result<Self> {
        let config = BatcherConfig {
            batch_size,
            shuffle: false,
            bucket_size: 0,
            sort_within_batch: false,
            drop_last: false,
            seed: 0,
        };
        Self::new(examples, config, pad)
    }

    /// The examples.
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// Padding fraction of epoch `epoch`'s plan (what bucketing saved shows here).
    pub fn padding_fraction(&self, epoch: usize) -> f64 {
        self.batcher.plan(epoch as u64).padding_fraction()
    }
}

impl Batches<PaddedBatch> for ClassBatches {
    fn epoch(&self, epoch: usize) -> Result<Vec<PaddedBatch>> {
        self.batcher.batches(&self.examples, epoch as u64).collect()
    }
}

/// Forecasting windows, shuffled per epoch with a seed (or in order).
pub struct WindowBatches<'a> {
    windows: &'a Windows,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
}

impl<'a> WindowBatches<'a> {
    /// Batches of `batch_size` windows; `shuffle` reorders them each epoch from `(seed, epoch)`.
    pub fn new(windows: &'a Windows, batch_size: usize, shuffle: bool, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if windows.is_empty() {
            return Err(Error::Config(
                "a split has no windows: it is shorter than lookback + horizon; use a shorter \
                 lookback or horizon, or a larger split"
                    .into(),
            ));
        }
        Ok(WindowBatches {
            windows,
            batch_size,
            shuffle,
            seed,
        })
    }
}

impl Batches<WindowBatch> for WindowBatches<'_> {
    fn epoch(&self, epoch: usize) -> Result<Vec<WindowBatch>> {
        let mut order: Vec<usize> = (0..self.windows.len()).collect();
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(epoch as u64);
            order.shuffle(&mut rng);
        }
        order
            .chunks(self.batch_size)
            .map(|idx| self.windows.batch(idx))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The task models.

fn class_labels(batch: &PaddedBatch) -> Result<&[usize]> {
    match &batch.targets {
        BatchTargets::Classes(labels) => Ok(labels),
        BatchTargets::Tags(_) => Err(Error::Config(
            "a classifier got tagged examples (one label per token); use a tagger".into(),
        )),
    }
}

fn tag_targets(batch: &PaddedBatch) -> Result<ndarray::ArrayView2<'_, usize>> {
    match &batch.targets {
        BatchTargets::Tags(tags) => Ok(tags.view()),
        BatchTargets::Classes(_) => Err(Error::Config(
            "a tagger got examples with one label per sequence; use a classifier".into(),
        )),
    }
}

fn from_ce(o: crate::nn::loss::CrossEntropyOutput) -> BatchLoss {
    BatchLoss {
        loss: o.loss,
        sum: o.nll_sum,
        count: o.count,
        correct: o.correct,
    }
}

/// The [`TaskModel`] impl of a model over padded token batches (embedding → stack → head);
/// `$targets` picks the batch's targets (labels or tags) and says what is wrong otherwise.
macro_rules! token_task_model {
    ($model:ty, $targets:ident, $diagnose:expr) => {
        impl TaskModel for $model {
            type Batch = PaddedBatch;

            fn train_step(
                &self,
                b: &PaddedBatch,
                grads: &mut TaskGrads,
                rng: &mut dyn RngCore,
            ) -> Result<BatchLoss> {
                let input = SeqInput::Tokens(b.ids.view());
                let out = self.train_batch(input, Some(&b.lengths), $targets(b)?, grads, rng)?;
                Ok(from_ce(out))
            }

            fn eval_step(&self, b: &PaddedBatch) -> Result<BatchLoss> {
                let input = SeqInput::Tokens(b.ids.view());
                Ok(from_ce(self.evaluate(
                    input,
                    Some(&b.lengths),
                    $targets(b)?,
                )?))
            }

            fn zero_grads(&self) -> TaskGrads {
                <$model>::zero_grads(self)
            }

            fn params_and_grads<'a>(
                &'a mut self,
                grads: &'a TaskGrads,
            ) -> Vec<(&'a mut [f32], &'a [f32])> {
                <$model>::params_and_grads(self, grads)
            }

            fn param_names(&self) -> Vec<String> {
                crate::module::param_names(self, "")
            }

            fn named_tensors(&self) -> BTreeMap<String, ArrayD<f32>> {
                crate::module::named_tensors(self, "")
            }

            fn load_named(&mut self, t: &BTreeMap<String, ArrayD<f32>>) -> Result<()> {
                crate::module::load_named(self, "", t)
            }

            fn rnn_config(&self) -> &crate::RnnConfig {
                self.rnn.config()
            }

            fn diagnose(&self, batch: &PaddedBatch) -> Result<Option<Diagnosis>> {
                $diagnose(self, batch)
            }
        }
    };
}

token_task_model!(SequenceClassifier, class_labels, |m, b| {
    super::diagnostics::diagnose_classifier(m, b, DIAGNOSIS_ROWS)
});
// A tagger's loss is at every step, not at the last: the last-step gradient is no measure.
token_task_model!(SequenceTagger, tag_targets, |_, _| Ok(None));

/// `[B, H·K]` step-major targets as the forecaster's `[B, H, K]`.
fn forecast_targets(f: &Forecaster, b: &WindowBatch) -> Result<ndarray::Array3<f32>> {
    let (batch, hk) = b.targets.dim();
    if hk != f.horizon * f.targets {
        return Err(Error::Shape(format!(
            "windows have {hk} target values each, the model forecasts horizon {} × {} targets",
            f.horizon, f.targets
        )));
    }
    Ok(b.targets
        .clone()
        .into_shape_with_order((batch, f.horizon, f.targets))
        .expect("[B, H, K]"))
}

impl TaskModel for Forecaster {
    type Batch = WindowBatch;

    fn train_step(
        &self,
        b: &WindowBatch,
        grads: &mut TaskGrads,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLoss> {
        let y = forecast_targets(self, b)?;
        let out = self.train_batch(b.inputs.view(), None, y.view(), grads, rng)?;
        Ok(BatchLoss {
            loss: out.loss,
            sum: out.sum,
            count: out.count,
            correct: 0,
        })
    }

    fn eval_step(&self, b: &WindowBatch) -> Result<BatchLoss> {
        let y = forecast_targets(self, b)?;
        let out = self.evaluate(b.inputs.view(), None, y.view())?;
        Ok(BatchLoss {
            loss: out.loss,
            sum: out.sum,
            count: out.count,
            correct: 0,
        })
    }

    fn zero_grads(&self) -> TaskGrads {
        Forecaster::zero_grads(self)
    }

    fn params_and_grads<'a>(&'a mut self, grads: &'a TaskGrads) -> Vec<(&'a mut [f32], &'a [f32])> {
        Forecaster::params_and_grads(self, grads)
    }

    fn param_names(&self) -> Vec<String> {
        crate::module::param_names(self, "")
    }

    fn named_tensors(&self) -> BTreeMap<String, ArrayD<f32>> {
        crate::module::named_tensors(self, "")
    }

    fn load_named(&mut self, t: &BTreeMap<String, ArrayD<f32>>) -> Result<()> {
        crate::module::load_named(self, "", t)
    }

    fn rnn_config(&self) -> &crate::RnnConfig {
        self.rnn.config()
    }

    fn diagnose(&self, batch: &WindowBatch) -> Result<Option<Diagnosis>> {
        Ok(Some(diagnose_forecaster(self, batch, DIAGNOSIS_ROWS)?))
    }
}

/// Sequences in a training-time diagnosis.
const DIAGNOSIS_ROWS: usize = 32;

// ---------------------------------------------------------------------------------------------
// The loop.

/// How a sequence model is trained. Defaults suit a small classifier or forecaster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeqTrainConfig {
    /// Passes over the training set. Default 20.
    pub epochs: usize,
    /// Examples per training batch, for the data sources the caller builds
    /// ([`ClassBatches`], [`WindowBatches`]); kept here so a config and a checkpoint say it.
    /// Default 32.
    pub batch_size: usize,
    /// Examples per batch when evaluating (no gradients, so larger is faster). Default 256.
    pub eval_batch_size: usize,
    /// Global gradient-norm clip; `None` turns clipping off. Default 1 (DESIGN §6: clipping on,
    /// 1 for regression and small classifiers).
    pub clip_norm: Option<f32>,
    /// The optimizer. Default Adam (lr 1e-3), the practice for small tasks.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule. Default constant.
    pub schedule: ScheduleConfig,
    /// Seeds dropout. Default 0. (The batch order has its own seed, in the data source.)
    pub seed: u64,
    /// Stop after this many epochs without validation improvement. Default 5.
    pub patience: Option<usize>,
    /// Stop as soon as the validation loss is below this: the task is solved (e.g. MSE 0.01
    /// on the adding problem). Default `None`.
    pub stop_below: Option<f64>,
    /// At the end, put back the weights of the best validation epoch. Default true.
    pub restore_best: bool,
    /// Stop when this many updates in a row were skipped for a non-finite loss or gradient.
    /// Default 10.
    pub max_skipped_in_a_row: u64,
    /// Also write the latest checkpoint every this many steps (always at each epoch's end).
    /// Default `None`.
    pub checkpoint_every: Option<u64>,
    /// Stop (with a checkpoint) after this many optimizer steps in total. Default `None`.
    pub max_steps: Option<u64>,
    /// Every this many optimizer steps (and once before the first), measure the gradient
    /// through time and the gate statistics on the first validation batch (at most 32
    /// sequences) and append them to `metrics/diagnostics.jsonl` (see
    /// [`crate::train::diagnostics`]). Models without a diagnosis (classifiers, taggers) skip
    /// it. Default `None`: off, and costs nothing.
    pub diagnostics_every: Option<u64>,
}

impl Default for SeqTrainConfig {
    fn default() -> Self {
        SeqTrainConfig {
            epochs: 20,
            batch_size: 32,
            eval_batch_size: 256,
            clip_norm: Some(1.0),
            optimizer: OptimizerConfig::default(),
            schedule: ScheduleConfig::default(),
            seed: 0,
            patience: Some(5),
            stop_below: None,
            restore_best: true,
            max_skipped_in_a_row: 10,
            checkpoint_every: None,
            max_steps: None,
            diagnostics_every: None,
        }
    }
}

impl SeqTrainConfig {
    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 || self.eval_batch_size == 0 {
            return Err(Error::Config(format!(
                "epochs, batch_size and eval_batch_size must be at least 1, got {}, {} and {}",
                self.epochs, self.batch_size, self.eval_batch_size
            )));
        }
        if self.clip_norm.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return Err(Error::Config(format!(
                "clip_norm must be positive, got {:?}",
                self.clip_norm
            )));
        }
        if self.max_skipped_in_a_row == 0 {
            return Err(Error::Config(
                "max_skipped_in_a_row must be at least 1".into(),
            ));
        }
        if self.patience == Some(0) {
            return Err(Error::Config(
                "patience must be at least 1 (or absent to never stop early)".into(),
            ));
        }
        self.optimizer.validate()
    }
}

/// The mean loss (and accuracy, for classifiers) of a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss per counted element (cross-entropy in nats, or MSE in scaled units).
    pub loss: f64,
    /// Elements counted.
    pub count: usize,
    /// Fraction correct (classification and tagging; 0 for regression).
    pub accuracy: f64,
}

/// How a sequence run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqRunSummary {
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Best validation loss and its epoch.
    pub best_val: Option<(f64, usize)>,
    /// The final model on the test split, when given and the run finished.
    pub test: Option<Evaluation>,
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

/// Trains a [`TaskModel`] on [`Batches`].
pub struct SeqTrainer<M: TaskModel> {
    /// The model being trained.
    pub model: M,
    config: SeqTrainConfig,
    optimizer: Box<dyn Optimizer + Send>,
    schedule: Schedule,
    rng: ChaCha8Rng,
    progress: Progress,
    grads: TaskGrads,
    best: Option<BTreeMap<String, ArrayD<f32>>>,
    run_dir: Option<PathBuf>,
    stop: StopSignal,
}

impl<M: TaskModel> SeqTrainer<M> {
    /// A fresh run. With a `run_dir`, metrics go to `run_dir/metrics/` and checkpoints to
    /// `run_dir/checkpoints/{latest,best}.safetensors`. Example in the [module docs](self).
    pub fn new(model: M, config: SeqTrainConfig, run_dir: Option<PathBuf>) -> Result<Self> {
        config.validate()?;
        let optimizer = config.optimizer.build()?;
        let schedule = Schedule::new(config.schedule.clone(), config.optimizer.lr())?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let progress = Progress::start(&rng, schedule.state());
        let grads = model.zero_grads();
        Ok(SeqTrainer {
            model,
            config,
            optimizer,
            schedule,
            rng,
            progress,
            grads,
            best: None,
            run_dir,
            stop: StopSignal::new(),
        })
    }

    /// Continues the run saved in `checkpoint` with `model` built the same way as the saved
    /// run's (same shapes; its weights are replaced). `config` may change what does not affect
    /// the math already done (e.g. `epochs`, `max_steps`); `None` keeps the saved one.
    /// Example in the [module docs](self).
    pub fn resume(
        model: M,
        checkpoint: &Path,
        config: Option<SeqTrainConfig>,
        run_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let ck = Checkpoint::load(checkpoint)?;
        let saved: SeqTrainConfig = serde_json::from_str(&ck.config_json)
            .map_err(|e| Error::Config(format!("{}: config: {e}", checkpoint.display())))?;
        let mut trainer = SeqTrainer::new(model, config.unwrap_or(saved), run_dir)?;
        let (model_tensors, best) = split_best(ck.model);
        trainer.model.load_named(&model_tensors)?;
        trainer.best = best;
        trainer.optimizer.load_state(&ck.optimizer)?;
        trainer.schedule.load_state(&ck.progress.schedule)?;
        trainer.rng = ck.progress.rng.restore()?;
        trainer.progress = ck.progress;
        Ok(trainer)
    }

    /// The training config.
    pub fn config(&self) -> &SeqTrainConfig {
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

    /// A checkpoint of the current position (the best weights so far ride along under
    /// `best.`, so early stopping survives a resume).
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let mut progress = self.progress.clone();
        progress.rng = RngState::capture(&self.rng);
        progress.schedule = self.schedule.state();
        let mut model = self.model.named_tensors();
        if let Some(best) = &self.best {
            for (k, v) in best {
                model.insert(format!("{BEST}{k}"), v.clone());
            }
        }
        Ok(Checkpoint {
            model,
            optimizer: self.optimizer.state(),
            state: RnnState::zeros(self.model.rnn_config(), 1),
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

    /// Mean loss and accuracy of the model over `data` (its epoch-0 batches).
    pub fn evaluate(&self, data: &dyn Batches<M::Batch>) -> Result<Evaluation> {
        evaluate(&self.model, data)
    }

    /// Trains until `epochs` are done, early stopping triggers, `max_steps` is reached or the
    /// [`stop_signal`](Self::stop_signal) is raised; then evaluates `test` (with the best
    /// weights, when `restore_best`). Example in the [module docs](self).
    pub fn run(
        &mut self,
        train: &dyn Batches<M::Batch>,
        valid: &dyn Batches<M::Batch>,
        test: Option<&dyn Batches<M::Batch>>,
        reporter: &mut dyn Reporter,
    ) -> Result<SeqRunSummary> {
        let cfg = self.config.clone();
        // Without validation examples every epoch would score 0 and early stopping and
        // restore_best would quietly keep the first epoch's weights.
        if valid.epoch(0)?.is_empty() {
            return Err(Error::Config(
                "the validation split has no examples: give more data or a larger validation \
                 fraction"
                    .into(),
            ));
        }
        let mut metrics = Metrics::open(self.run_dir.as_deref(), &self.progress)?;
        let mut clock = RunClock::resume(&self.progress);
        let names = self.model.param_names();
        let mut stopped_early = false;
        // The probe batch of the diagnostics: the same every time, from the validation split.
        let probe = match (cfg.diagnostics_every, &self.run_dir) {
            (Some(k), Some(dir)) if k > 0 => {
                trim_diagnoses(dir, self.progress.step)?;
                valid.epoch(0)?.into_iter().next()
            }
            _ => None,
        };
        if let (Some(p), Some(dir)) = (&probe, &self.run_dir)
            && self.progress.step == 0
            && let Some(d) = self.model.diagnose(p)?
        {
            write_diagnosis(dir, 0, self.progress.epoch, &d)?;
        }
        while self.progress.epoch < cfg.epochs {
            let epoch = self.progress.epoch;
            clock.start_epoch();
            let batches = train.epoch(epoch)?;
            if batches.is_empty() {
                return Err(Error::Config("the training split has no batches".into()));
            }
            while self.progress.chunk < batches.len() {
                if cfg.max_steps.is_some_and(|m| self.progress.step >= m)
                    || self.stop.is_requested()
                {
                    clock.stamp(&mut self.progress);
                    self.save("latest")?;
                    return Ok(self.summary(None, false, true));
                }
                let batch = &batches[self.progress.chunk];
                self.grads.fill_zero();
                let out = self
                    .model
                    .train_step(batch, &mut self.grads, &mut self.rng)?;
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
                    self.progress.epoch_nll += out.sum;
                    self.progress.epoch_tokens += out.count as u64;
                }
                self.progress.chunk += 1;
                let report = StepReport {
                    epoch,
                    chunk: self.progress.chunk,
                    chunks: batches.len(),
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
                if let (Some(p), Some(dir), Some(k)) =
                    (&probe, &self.run_dir, cfg.diagnostics_every)
                    && !skipped
                    && self.progress.step.is_multiple_of(k)
                    && let Some(d) = self.model.diagnose(p)?
                {
                    write_diagnosis(dir, self.progress.step, epoch, &d)?;
                }
                if cfg
                    .checkpoint_every
                    .is_some_and(|k| k > 0 && self.progress.step.is_multiple_of(k) && !skipped)
                {
                    clock.stamp(&mut self.progress);
                    self.save("latest")?;
                }
            }
            let val = evaluate(&self.model, valid)?;
            self.schedule.on_epoch_end(Some(val.loss))?;
            let best = self.progress.best_val.is_none_or(|(b, _)| val.loss < b);
            if best {
                self.progress.best_val = Some((val.loss, epoch));
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
                val_loss: val.loss,
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
            if cfg.patience.is_some_and(|p| self.progress.bad_epochs >= p)
                || cfg.stop_below.is_some_and(|target| val.loss < target)
            {
                stopped_early = true;
                break;
            }
        }
        if cfg.restore_best
            && let Some(best) = &self.best
        {
            self.model.load_named(best)?;
        }
        let test = match test {
            Some(t) => Some(evaluate(&self.model, t)?),
            None => None,
        };
        clock.stamp(&mut self.progress);
        Ok(self.summary(test, stopped_early, false))
    }

    fn summary(
        &self,
        test: Option<Evaluation>,
        stopped_early: bool,
        interrupted: bool,
    ) -> SeqRunSummary {
        SeqRunSummary {
            epochs: self.progress.epoch,
            steps: self.progress.step,
            best_val: self.progress.best_val,
            test,
            stopped_early,
            interrupted,
            skipped: self.progress.skipped,
            clip_rate: self.progress.clip.clip_rate(),
            train_seconds: self.progress.train_seconds,
        }
    }
}

/// Tensors by PyTorch name.
type Named = BTreeMap<String, ArrayD<f32>>;

/// Prefix of the best-so-far weights inside a checkpoint.
const BEST: &str = "best.";

fn split_best(all: Named) -> (Named, Option<Named>) {
    let (mut model, mut best) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in all {
        match k.strip_prefix(BEST) {
            Some(rest) => {
                best.insert(rest.to_string(), v);
            }
            None => {
                model.insert(k, v);
            }
        }
    }
    (model, (!best.is_empty()).then_some(best))
}

fn evaluate<M: TaskModel>(model: &M, data: &dyn Batches<M::Batch>) -> Result<Evaluation> {
    let (mut sum, mut count, mut correct) = (0.0f64, 0usize, 0usize);
    for b in data.epoch(0)? {
        let out = model.eval_step(&b)?;
        sum += out.sum;
        count += out.count;
        correct += out.correct;
    }
    Ok(Evaluation {
        loss: sum / count.max(1) as f64,
        count,
        accuracy: correct as f64 / count.max(1) as f64,
    })
}
