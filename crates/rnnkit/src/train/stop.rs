//! A request to stop a training run cleanly: the trainer finishes the step it is in, writes
//! `checkpoints/latest.safetensors` and returns, so `--resume` continues exactly where it
//! stopped. The CLI raises it on Ctrl-C or SIGTERM; a program embedding the trainers can raise
//! it from any thread (a time budget, a UI button).
//!
//! Without it, stopping a long run meant killing the process and losing every step since the
//! last periodic checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared flag asking a run to stop at the next step boundary. Clones share the flag.
///
/// ```
/// use rnnkit::train::stop::StopSignal;
///
/// let signal = StopSignal::new();
/// let for_the_handler = signal.clone();
/// assert!(!signal.is_requested());
/// for_the_handler.request();
/// assert!(signal.is_requested());
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal nobody has raised yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop after the step it is in.
    pub fn request(&self) {
        // Relaxed is enough: the flag carries no data, and the trainer reads it every step.
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
