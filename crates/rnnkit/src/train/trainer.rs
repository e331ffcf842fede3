//! The one training loop, for every model and data source: epochs of batches, clipping, the
//! optimizer and schedule, evaluation, early stopping, the divergence guard, metrics files and
//! checkpoints that resume exactly.
//!
//! Exact resume: everything a step depends on is either in the checkpoint (weights, optimizer
//! and schedule state, the recurrent state a language model carries between chunks, the dropout
//! RNG's position, the batch position and counters) or derived from the config (each epoch's
//! batches come from the source seeded by `(seed, epoch)`). So a run stopped after any step and
//! resumed ends with bit-identical weights to an uninterrupted run with the same thread count.
//!
//! Files, with a run directory: `checkpoints/latest.safetensors` (every epoch's end, every
//! `checkpoint_every` steps, and when stopped), `checkpoints/best.safetensors` (the best
//! validation epoch, written before `latest` so that a `latest` never names a best epoch whose
//! file is missing), and the metrics of [`super::metrics`].

use super::checkpoint::{Checkpoint, Progress, RngState};
use super::clock::RunClock;
use super::config::TrainConfig;
use super::metrics::Metrics;
use super::report::{EpochReport, Evaluation, Reporter, RunSummary, StepReport};
use super::stop::StopSignal;
use crate::data::Batches;
use crate::diagnostics::{trim_diagnoses, write_diagnosis};
use crate::distributed::{Communicator, sync_gradients};
use crate::error::{Error, Result};
use crate::models::TrainStep;
use crate::module::{self, Grads};
use crate::optim::{ClipStats, Optimizer, ParamRef, Schedule, clip_grad_norm, grad_norm};
use crate::recurrent::RnnState;
use ndarray::ArrayD;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Tensors by PyTorch name.
type Named = BTreeMap<String, ArrayD<f32>>;

/// A split's batches, as the trainer reads them.
pub type Split<'a, M> = &'a dyn Batches<Batch = <M as TrainStep>::Batch>;

/// Trains any [`TrainStep`] model on [`Batches`].
///
/// A language model in a run directory, stopped after 12 steps and resumed exactly:
///
/// ```
/// use rnnkit::data::stream::StreamBatches;
/// use rnnkit::models::LanguageModel;
/// use rnnkit::train::{Silent, TrainConfig, Trainer};
/// use rnnkit::{CellKind, RnnConfig};
///
/// # fn main() -> rnnkit::Result<()> {
/// let stream: Vec<u32> = (0..600).map(|i| (i * 7 % 13) as u32).collect();
/// let config = TrainConfig { epochs: 2, batch_size: 4, eval_batch_size: 4, bptt: 10,
///     max_steps: Some(12), ..TrainConfig::language_model() };
/// let train = StreamBatches::new(&stream[..400], 4, config.chunk_length(), config.seed)?;
/// let valid = StreamBatches::fixed(&stream[400..500], 4, 10)?;
/// let test = StreamBatches::fixed(&stream[500..], 4, 10)?;
/// let model = || LanguageModel::new(13, RnnConfig::new(CellKind::Lstm, 8, 16), 0);
/// let dir = std::env::temp_dir().join(format!("rnnkit-doc-lm-{}", std::process::id()));
///
/// let mut trainer = Trainer::new(model()?, config.clone(), Some(dir.clone()))?;
/// let part = trainer.run(&train, &valid, Some(&test), &mut Silent)?;
/// assert!(part.interrupted && part.steps == 12);
///
/// // Later (another process, another day): continue from the latest checkpoint.
/// let more = TrainConfig { max_steps: None, ..config };
/// let checkpoint = dir.join("checkpoints/latest.safetensors");
/// let mut trainer = Trainer::resume(model()?, &checkpoint, Some(more), Some(dir.clone()))?;
/// let done = trainer.run(&train, &valid, Some(&test), &mut Silent)?;
/// assert_eq!((done.epochs, done.interrupted), (2, false));
/// assert!(done.test.is_some_and(|t| t.loss.is_finite())); // scored once, at the end
/// assert!(done.train_seconds > part.train_seconds); // wall time of both sittings
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
pub struct Trainer<M: TrainStep> {
    model: M,
    config: TrainConfig,
    optimizer: Box<dyn Optimizer + Send>,
    schedule: Schedule,
    rng: ChaCha8Rng,
    progress: Progress,
    /// The state carried between the batches of an epoch (truncated BPTT).
    carry: Option<RnnState>,
    grads: Grads<M>,
    /// The best validation epoch's weights, kept for `restore_best`.
    best: Option<Named>,
    run_dir: Option<PathBuf>,
    stop: StopSignal,
    /// The other processes of a data-parallel run ([`crate::distributed`]), if any.
    comm: Option<Arc<dyn Communicator>>,
}

impl<M: TrainStep> Trainer<M> {
    /// A fresh run. With a `run_dir`, metrics go to `run_dir/metrics/` and checkpoints to
    /// `run_dir/checkpoints/{latest,best}.safetensors`. Example on [`Trainer`].
    pub fn new(mut model: M, config: TrainConfig, run_dir: Option<PathBuf>) -> Result<Self> {
        config.validate()?;
        // What this CPU cannot run falls back to f32; `Precision::fallback_notice` says so.
        model.set_precision(config.precision);
        let optimizer = config.optimizer.build()?;
        let schedule = Schedule::new(config.schedule.clone(), config.optimizer.lr())?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let progress = Progress::start(&rng, schedule.state());
        let grads = Grads::zeros_like(&model);
        Ok(Trainer {
            model,
            config,
            optimizer,
            schedule,
            rng,
            progress,
            carry: None,
            grads,
            best: None,
            run_dir,
            stop: StopSignal::new(),
            comm: None,
        })
    }

    /// Continues the run saved in `checkpoint` with `model` built the same way as the saved
    /// run's (same architecture; its weights are replaced). `config` may change what does not
    /// affect the math already done (e.g. `epochs`, `max_steps`, `checkpoint_every`); `None`
    /// keeps the saved one. Example on [`Trainer`].
    pub fn resume(
        model: M,
        checkpoint: &Path,
        config: Option<TrainConfig>,
        run_dir: Option<PathBuf>,
    ) -> Result<Self> {
        let ck = Checkpoint::load(checkpoint)?;
        let config = match config {
            Some(c) => c,
            None => {
                TrainConfig::from_checkpoint_json(&ck.config_json).map_err(|e| Error::Corrupt {
                    path: checkpoint.display().to_string(),
                    msg: format!("metadata `config`: {e}"),
                })?
            }
        };
        let mut trainer = Trainer::new(model, config, run_dir)?;
        // Checkpoints written before the one trainer kept a sequence model's best weights
        // inside, under `best.`.
        let (weights, legacy_best) = split_best(ck.model);
        module::load_named(&mut trainer.model, "", &weights)?;
        if trainer.config.restore_best && ck.progress.best_val.is_some() {
            let path = checkpoint.with_file_name("best.safetensors");
            trainer.best = match legacy_best {
                Some(best) => Some(best),
                None if path.exists() => Some(Checkpoint::load(&path)?.model),
                None => {
                    return Err(Error::Format {
                        path: path.display().to_string(),
                        msg: "missing: restoring the best epoch's weights at the end needs the \
                              best checkpoint beside the latest one (copy it there, or set \
                              restore_best = false)"
                            .into(),
                    });
                }
            };
        }
        trainer.optimizer.load_state(&ck.optimizer)?;
        trainer.schedule.load_state(&ck.progress.schedule)?;
        trainer.rng = ck.progress.rng.restore()?;
        trainer.carry = ck.state;
        trainer.progress = ck.progress;
        Ok(trainer)
    }

    /// Trains data-parallel with the processes of `comm` ([`crate::distributed`]): each takes
    /// its share of every training batch ([`TrainStep::shard_batch`]), and the gradients are
    /// summed into the global batch's before clipping and the optimizer step. Every process
    /// must run the same trainer on the same data; give only rank 0 a run directory.
    pub fn with_communicator(mut self, comm: Arc<dyn Communicator>) -> Self {
        self.comm = Some(comm);
        self
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The trained model.
    pub fn into_model(self) -> M {
        self.model
    }

    /// The training config.
    pub fn config(&self) -> &TrainConfig {
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
            model: module::named_tensors(&self.model, ""),
            optimizer: self.optimizer.state(),
            state: self.carry.clone(),
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

    /// Mean loss (and accuracy) of the model over `data` (its epoch-0 batches).
    pub fn evaluate(&self, data: Split<'_, M>) -> Result<Evaluation> {
        evaluate(&self.model, data)
    }

    /// Trains until `epochs` are done, early stopping triggers, `max_steps` is reached or the
    /// [`stop_signal`](Self::stop_signal) is raised; then evaluates `test` (with the best
    /// weights, when `restore_best`). Example on [`Trainer`].
    pub fn run(
        &mut self,
        train: Split<'_, M>,
        valid: Split<'_, M>,
        test: Option<Split<'_, M>>,
        reporter: &mut dyn Reporter,
    ) -> Result<RunSummary> {
        let cfg = self.config.clone();
        // Without validation batches every epoch would score 0, and early stopping and
        // restore_best would quietly keep the first epoch's weights.
        let valid_batches = valid.epoch(0)?;
        if valid_batches.is_empty() {
            return Err(Error::Config(
                "the validation split has no examples: give more data or a larger validation \
                 fraction"
                    .into(),
            ));
        }
        let mut metrics = Metrics::open(self.run_dir.as_deref(), &self.progress)?;
        let mut clock = RunClock::resume(&self.progress);
        let mut stopped_early = false;
        // The diagnostics' probe: the first validation batch, the same every time.
        let probe = match (cfg.diagnostics_every, &self.run_dir) {
            (Some(k), Some(dir)) if k > 0 => {
                trim_diagnoses(dir, self.progress.step)?;
                valid_batches.into_iter().next()
            }
            _ => None,
        };
        let diagnose = |model: &M, step: u64, epoch: usize| -> Result<()> {
            if let (Some(p), Some(dir)) = (&probe, &self.run_dir)
                && let Some(d) = model.diagnose(p)?
            {
                write_diagnosis(dir, step, epoch, &d)?;
            }
            Ok(())
        };
        if self.progress.step == 0 {
            diagnose(&self.model, 0, self.progress.epoch)?;
        }
        while self.progress.epoch < cfg.epochs {
            let epoch = self.progress.epoch;
            // A stop asked for at an epoch's end (a tuner's rung) leaves before the next
            // epoch's batches are drawn.
            if self.progress.chunk == 0 && self.stop.is_requested() {
                clock.stamp(&mut self.progress);
                self.save("latest")?;
                return Ok(self.summary(None, false, true));
            }
            clock.start_epoch();
            let mut batches = train.epoch(epoch)?;
            if batches.is_empty() {
                return Err(Error::Config("the training split has no batches".into()));
            }
            if let Some(comm) = &self.comm
                && comm.size() > 1
            {
                batches = batches
                    .iter()
                    .map(|b| M::shard_batch(b, comm.rank(), comm.size()))
                    .collect::<Result<_>>()?;
            }
            if self.progress.chunk == 0 {
                self.carry = None;
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
                let mut out = self.model.train_batch(
                    batch,
                    &mut self.carry,
                    &mut self.grads,
                    &mut self.rng,
                )?;
                if let Some(comm) = &self.comm {
                    out = sync_gradients(comm.as_ref(), &mut self.grads.slices_mut(), out)?;
                }
                let (norm, clipped) = clip_or_measure(
                    self.grads.slices_mut(),
                    cfg.clip_norm,
                    &mut self.progress.clip,
                )?;
                let lr = self.schedule.lr();
                let skipped = !out.loss.is_finite() || !norm.is_finite();
                if skipped {
                    // The divergence guard: no update from a non-finite loss or gradient.
                    if let Some(e) = count_skip(&mut self.progress, &cfg, epoch, lr) {
                        clock.stamp(&mut self.progress);
                        self.save("latest")?;
                        return Err(e);
                    }
                } else {
                    self.progress.skipped_in_a_row = 0;
                    let chance = self.model.chance_loss();
                    if let Some(e) = check_divergence(
                        &mut self.progress,
                        chance,
                        out.loss as f64,
                        &cfg,
                        epoch,
                        lr,
                    ) {
                        // The weights that led here are not written: `latest` keeps the last
                        // good checkpoint.
                        return Err(e);
                    }
                    let mut pairs = module::params_with_grads(&mut self.model, &self.grads);
                    let mut refs: Vec<ParamRef> = pairs
                        .iter_mut()
                        .map(|(n, p, g)| ParamRef::new(n, p, g))
                        .collect();
                    self.optimizer.step(&mut refs, lr)?;
                    self.schedule.on_step();
                    self.progress.step += 1;
                    self.progress.epoch_loss_sum += out.sum;
                    self.progress.epoch_count += out.count as u64;
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
                    count: out.count,
                };
                metrics.step(&report)?;
                reporter.step(&report);
                if cfg
                    .diagnostics_every
                    .is_some_and(|k| k > 0 && self.progress.step.is_multiple_of(k) && !skipped)
                {
                    diagnose(&self.model, self.progress.step, epoch)?;
                }
                // No periodic checkpoint while the loss is above the divergence threshold:
                // `latest` should hold weights worth resuming from.
                if cfg
                    .checkpoint_every
                    .is_some_and(|k| k > 0 && self.progress.step.is_multiple_of(k) && !skipped)
                    && self.progress.above_in_a_row == 0
                {
                    clock.stamp(&mut self.progress);
                    self.save("latest")?;
                }
            }
            let val = evaluate(&self.model, valid)?;
            self.schedule.on_epoch_end(Some(val.loss))?;
            // A diverged epoch (a non-finite validation loss, or one above the divergence
            // threshold) is never the best, even when it is the first.
            let acceptable = val.loss.is_finite()
                && (cfg.diverge_steps == 0 || !above_threshold(&self.progress, val.loss, &cfg));
            let best = acceptable && self.progress.best_val.is_none_or(|(b, _)| val.loss < b);
            if best {
                self.progress.best_val = Some((val.loss, epoch));
                self.progress.bad_epochs = 0;
                if cfg.restore_best {
                    self.best = Some(module::named_tensors(&self.model, ""));
                }
            } else {
                self.progress.bad_epochs += 1;
            }
            let report = EpochReport {
                epoch,
                train_loss: self.progress.epoch_loss_sum / self.progress.epoch_count.max(1) as f64,
                val_loss: val.loss,
                lr: self.schedule.lr(),
                seconds: clock.end_epoch(),
                best,
            };
            self.progress.epoch += 1;
            self.progress.chunk = 0;
            self.progress.epoch_loss_sum = 0.0;
            self.progress.epoch_count = 0;
            clock.stamp(&mut self.progress);
            if best {
                self.save("best")?;
            }
            self.save("latest")?;
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
            && let Some(best) = self.best.take()
        {
            module::load_named(&mut self.model, "", &best)?;
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
    ) -> RunSummary {
        RunSummary {
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

/// Mean loss and accuracy of `model` over `data`'s epoch-0 batches, a carried state starting
/// from zeros.
pub fn evaluate<M: TrainStep>(model: &M, data: Split<'_, M>) -> Result<Evaluation> {
    let (mut sum, mut count, mut correct) = (0.0f64, 0usize, 0usize);
    let mut carry = None;
    for b in data.epoch(0)? {
        let out = model.eval_batch(&b, &mut carry)?;
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

/// Clips the gradients by global norm (recording the statistics in `stats`), or with
/// `clip_norm = None` only measures the norm. Returns the pre-clip norm and whether it clipped.
fn clip_or_measure(
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

/// Whether `loss` is above the divergence threshold (`diverge_factor` times the reference
/// loss); false before the reference is known.
fn above_threshold(progress: &Progress, loss: f64, cfg: &TrainConfig) -> bool {
    progress
        .reference_loss
        .is_some_and(|r| loss > cfg.diverge_factor * r)
}

/// The divergence rule's count of one finite training loss (`chance` is the model's
/// [`chance_loss`](TrainStep::chance_loss)): the error that stops the run when the loss has
/// stayed above the threshold for `diverge_steps` updates in a row.
fn check_divergence(
    progress: &mut Progress,
    chance: Option<f64>,
    loss: f64,
    cfg: &TrainConfig,
    epoch: usize,
    lr: f32,
) -> Option<Error> {
    if cfg.diverge_steps == 0 {
        return None;
    }
    let reference = *progress
        .reference_loss
        .get_or_insert(loss.max(chance.unwrap_or(0.0)));
    if !above_threshold(progress, loss, cfg) {
        progress.above_in_a_row = 0;
        return None;
    }
    progress.above_in_a_row += 1;
    (progress.above_in_a_row >= cfg.diverge_steps).then(|| {
        Error::Diverged(format!(
            "the training loss stayed above {} × {reference:.4} (the loss at the start, or a \
             uniform guess's) for {} updates in a row, now {loss:.4e} (epoch {epoch}, step \
             {}); these weights were not saved. Try a lower learning rate (now {lr}) or gradient clipping \
             (clip_norm, now {}); train.diverge_factor and train.diverge_steps tune this rule",
            cfg.diverge_factor,
            progress.above_in_a_row,
            progress.step,
            clip_words(cfg.clip_norm)
        ))
    })
}

/// The divergence guard's count of a skipped update (non-finite loss or gradient): the error
/// that stops the run when too many came in a row, with what to try.
fn count_skip(progress: &mut Progress, cfg: &TrainConfig, epoch: usize, lr: f32) -> Option<Error> {
    progress.skipped += 1;
    progress.skipped_in_a_row += 1;
    (progress.skipped_in_a_row >= cfg.max_skipped_in_a_row).then(|| {
        Error::Diverged(format!(
            "{} updates in a row had a non-finite loss or gradient (epoch {epoch}, step {}); \
             try a lower learning rate (now {lr}), gradient clipping (clip_norm, now {}), or \
             smaller initial weights or inputs",
            progress.skipped_in_a_row,
            progress.step,
            clip_words(cfg.clip_norm)
        ))
    })
}

/// The clipping threshold as a message says it: the number, or `off`.
fn clip_words(clip_norm: Option<f32>) -> String {
    clip_norm.map_or("off".into(), |c| c.to_string())
}

/// Splits a legacy checkpoint's `best.`-prefixed tensors from the model's.
fn split_best(all: Named) -> (Named, Option<Named>) {
    let (mut model, mut best) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in all {
        match k.strip_prefix("best.") {
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
