//! Running the sequence trainer for a `rnnkit train` task: a fresh start or an exact resume
//! from `RUN_DIR/checkpoints/latest.safetensors`, with the progress display, timed.

use anyhow::{Context, Result};
use rnnkit::train::seq_trainer::{Batches, SeqRunSummary, SeqTrainConfig, SeqTrainer, TaskModel};
use std::path::Path;
use std::time::Instant;

/// Where a run lives and how it was started.
pub struct RunPlace<'a> {
    /// The run directory.
    pub dir: &'a Path,
    /// Continue from its latest checkpoint.
    pub resuming: bool,
    /// No progress display.
    pub quiet: bool,
}

/// The batch sources of one run.
pub struct SeqData<'a, B> {
    /// Training batches.
    pub train: &'a dyn Batches<B>,
    /// Validation batches (every epoch).
    pub valid: &'a dyn Batches<B>,
    /// Test batches (once, with the best weights), if any.
    pub test: Option<&'a dyn Batches<B>>,
}

/// A finished run: the trainer (its model holds the best weights), the summary, wall seconds.
pub struct Fitted<M: TaskModel> {
    /// The trainer.
    pub trainer: SeqTrainer<M>,
    /// How training went.
    pub summary: SeqRunSummary,
    /// Wall-clock seconds of `run`.
    pub seconds: f64,
}

/// Trains `model` (a fresh one; its weights are replaced when resuming) per `config`.
pub fn fit<M: TaskModel>(
    model: M,
    config: &SeqTrainConfig,
    place: &RunPlace,
    data: SeqData<'_, M::Batch>,
) -> Result<Fitted<M>> {
    let checkpoint = place.dir.join("checkpoints/latest.safetensors");
    let mut trainer = if place.resuming {
        SeqTrainer::resume(
            model,
            &checkpoint,
            Some(config.clone()),
            Some(place.dir.into()),
        )
        .with_context(|| format!("resuming from {}", checkpoint.display()))?
    } else {
        SeqTrainer::new(model, config.clone(), Some(place.dir.into()))?
    };
    let started = Instant::now();
    let mut reporter = crate::progress::Progress::new(config.epochs, "seq", place.quiet);
    crate::interrupt::stop_on_signal(trainer.stop_signal());
    let summary = trainer.run(data.train, data.valid, data.test, &mut reporter)?;
    Ok(Fitted {
        trainer,
        summary,
        seconds: started.elapsed().as_secs_f64(),
    })
}
