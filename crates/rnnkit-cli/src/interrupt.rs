//! Ctrl-C and SIGTERM during training. The first one asks the trainer to stop at the next step
//! boundary: it writes `checkpoints/latest.safetensors`, the run's report and plots are written
//! as for any run, and `--resume` continues exactly. A second one quits at once, for a run that
//! does not reach a step boundary soon enough (e.g. in a long validation pass).
//!
//! The process gets one handler (the `ctrlc` crate allows one); each training run registers
//! its [`StopSignal`] with [`stop_on_signal`], which replaces the previous one.

use rnnkit::train::stop::StopSignal;
use std::sync::{Mutex, Once};

/// The signal of the run in progress, raised by the handler.
static CURRENT: Mutex<Option<StopSignal>> = Mutex::new(None);
static INSTALL: Once = Once::new();

/// Exit status after a second Ctrl-C: 128 + SIGINT, as shells report a process killed by it.
const EXIT_INTERRUPTED: i32 = 130;

/// Routes Ctrl-C and SIGTERM to `signal` from now on.
///
/// ```ignore
/// let mut trainer = Trainer::new(model, cfg.train.clone(), Some(dir))?;
/// crate::interrupt::stop_on_signal(trainer.stop_signal());
/// trainer.run(&data, &mut reporter)?;
/// ```
pub fn stop_on_signal(signal: StopSignal) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(signal);
    INSTALL.call_once(|| {
        // Without a handler (e.g. another library installed one first) Ctrl-C kills the run as
        // before, and the periodic checkpoints still bound what is lost, so say so and go on.
        if let Err(e) = ctrlc::set_handler(on_signal) {
            eprintln!("note: Ctrl-C will not checkpoint before stopping ({e})");
        }
    });
}

fn on_signal() {
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    match current.as_ref() {
        Some(signal) if !signal.is_requested() => {
            signal.request();
            eprintln!(
                "\nstopping after this step and writing a checkpoint \
                 (press Ctrl-C again to quit at once)"
            );
        }
        _ => std::process::exit(EXIT_INTERRUPTED),
    }
}
