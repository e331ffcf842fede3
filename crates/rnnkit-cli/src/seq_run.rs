//! Running the sequence trainer for a `rnnkit train` task: a fresh start or an exact resume
//! from `RUN_DIR/checkpoints/latest.safetensors`, with the progress display, timed.

use anyhow::{Context, Result};
use rnnkit::data::Batches;
use rnnkit::models::TrainStep;
use rnnkit::train::{RunSummary, TrainConfig, Trainer};
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
    pub train: &'a dyn Batches<Batch = B>,
    /// Validation batches (every epoch).
    pub valid: &'a dyn Batches<Batch = B>,
    /// Test batches (once, with the best weights), if any.
    pub test: Option<&'a dyn Batches<Batch = B>>,
}

/// A finished run: the trainer (its model holds the best weights), the summary, wall seconds.
pub struct Fitted<M: TrainStep> {
    /// The trainer.
    pub trainer: Trainer<M>,
    /// How training went.
    pub summary: RunSummary,
    /// Wall-clock seconds of `run`.
    pub seconds: f64,
}

/// Trains `model` (a fresh one; its weights are replaced when resuming) per `config`.
pub fn fit<M: TrainStep>(
    model: M,
    config: &TrainConfig,
    place: &RunPlace,
    data: SeqData<'_, M::Batch>,
) -> Result<Fitted<M>> {
    // One TrainConfig serves every task; the chunking keys mean something only where batches
    // are chunks of one long stream.
    let default = TrainConfig::default();
    if config.bptt != default.bptt || config.variable_bptt {
        return Err(crate::run_config::usage(
            "train.bptt and train.variable_bptt apply to language models (task = \"lm\") only: \
             remove them from the config"
                .into(),
        ));
    }
    let checkpoint = place.dir.join("checkpoints/latest.safetensors");
    let mut trainer = if place.resuming {
        Trainer::resume(
            model,
            &checkpoint,
            Some(config.clone()),
            Some(place.dir.into()),
        )
        .with_context(|| format!("resuming from {}", checkpoint.display()))?
    } else {
        Trainer::new(model, config.clone(), Some(place.dir.into()))?
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
