//! What a run reports as it goes ([`StepReport`], [`EpochReport`] to a [`Reporter`], and the
//! metrics files) and when it ends ([`RunSummary`]).

use serde::Serialize;

/// One optimizer step, as reported to a [`Reporter`] and written to `metrics/steps.*`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Batches of the epoch done, this one included.
    pub chunk: usize,
    /// Batches in the epoch.
    #[serde(skip)]
    pub chunks: usize,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Mean loss of the batch.
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Whether clipping scaled the gradients.
    pub clipped: bool,
    /// Learning rate used.
    pub lr: f32,
    /// Whether the divergence guard skipped this update.
    pub skipped: bool,
    /// Elements the loss counted: tokens, sequences, valid steps or forecast values.
    pub count: usize,
}

/// One finished epoch, as reported to a [`Reporter`] and written to `metrics/epochs.*`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochReport {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training loss over the epoch (per counted element).
    pub train_loss: f64,
    /// Validation loss (per counted element).
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
    /// After every batch.
    fn step(&mut self, _report: &StepReport) {}
    /// After every epoch.
    fn epoch(&mut self, _report: &EpochReport) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// The mean loss (and accuracy, for classifiers and taggers) of a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss per counted element (cross-entropy in nats, or MSE in scaled units).
    pub loss: f64,
    /// Elements counted.
    pub count: usize,
    /// Fraction correct (classification and tagging; 0 for regression and language models).
    pub accuracy: f64,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Best validation loss and its epoch.
    pub best_val: Option<(f64, usize)>,
    /// The test split, when given and the run finished: scored with the best validation
    /// epoch's weights with `restore_best` (the default), else with the final ones.
    pub test: Option<Evaluation>,
    /// Stopped by early stopping (`patience` or `stop_below`).
    pub stopped_early: bool,
    /// Stopped before finishing, by `max_steps` or a [`StopSignal`](super::StopSignal)
    /// (resume to continue).
    pub interrupted: bool,
    /// Updates skipped by the divergence guard.
    pub skipped: u64,
    /// Fraction of steps whose gradients were clipped.
    pub clip_rate: f64,
    /// Wall seconds of training in all sittings (a resumed run adds to its checkpoint's).
    pub train_seconds: f64,
}
