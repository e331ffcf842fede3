//! Wall time of a training run across sittings.
//!
//! A long run (WikiText-2, PTB medium) is stopped and resumed, often on another day, so the
//! process's own clock says only how long this sitting took. The checkpoint carries the time
//! already spent — in all, and in the epoch in progress — and [`RunClock`] adds this sitting's
//! time to it. Work redone after a crash (steps after the last checkpoint) is counted once:
//! the clock restarts from the checkpoint's figure, not from the crash.

use super::checkpoint::Progress;
use std::time::Instant;

/// Seconds of training so far, this sitting added to what the checkpoint recorded.
///
/// ```
/// use rand::SeedableRng;
/// use rnnkit::optim::{Schedule, ScheduleConfig};
/// use rnnkit::train::checkpoint::Progress;
/// use rnnkit::train::clock::RunClock;
///
/// let rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let schedule = Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap();
/// // A checkpoint taken 600 s into a run, 45 s into its epoch:
/// let mut p = Progress { train_seconds: 600.0, epoch_seconds: 45.0, ..Progress::start(&rng, schedule.state()) };
/// let mut clock = RunClock::resume(&p);
/// clock.start_epoch();
/// // ... train some steps, then before writing a checkpoint:
/// clock.stamp(&mut p);
/// assert!(p.train_seconds >= 600.0 && p.epoch_seconds >= 45.0);
/// assert!(clock.end_epoch() >= 45.0); // the whole epoch, both sittings
/// ```
#[derive(Debug)]
pub struct RunClock {
    sitting: Instant,
    before: f64,
    epoch: Instant,
    epoch_before: f64,
}

impl RunClock {
    /// Starts this sitting's clock from the times recorded in `progress` (zero for a new run).
    pub fn resume(progress: &Progress) -> Self {
        let now = Instant::now();
        RunClock {
            sitting: now,
            before: progress.train_seconds,
            epoch: now,
            epoch_before: progress.epoch_seconds,
        }
    }

    /// Marks the start of an epoch's work in this sitting. The first epoch of a resumed sitting
    /// keeps the seconds its checkpoint had already spent in it.
    pub fn start_epoch(&mut self) {
        self.epoch = Instant::now();
    }

    /// Seconds of training in all sittings so far.
    pub fn total(&self) -> f64 {
        self.before + self.sitting.elapsed().as_secs_f64()
    }

    /// Seconds spent in the epoch in progress, in all sittings.
    pub fn epoch_seconds(&self) -> f64 {
        self.epoch_before + self.epoch.elapsed().as_secs_f64()
    }

    /// Ends the epoch: returns its seconds and starts the next one's count at zero.
    pub fn end_epoch(&mut self) -> f64 {
        let s = self.epoch_seconds();
        self.epoch_before = 0.0;
        self.epoch = Instant::now();
        s
    }

    /// Writes the times into `progress`, to be saved with it.
    pub fn stamp(&self, progress: &mut Progress) {
        progress.train_seconds = self.total();
        progress.epoch_seconds = self.epoch_seconds();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Schedule, ScheduleConfig};
    use rand::SeedableRng;

    fn progress(train: f64, epoch: f64) -> Progress {
        let schedule = Schedule::new(ScheduleConfig::Constant {}, 1.0).unwrap();
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        Progress {
            epoch_seconds: epoch,
            train_seconds: train,
            ..Progress::start(&rng, schedule.state())
        }
    }

    #[test]
    fn a_resumed_clock_adds_to_the_checkpoints_times() {
        let mut p = progress(1000.0, 40.0);
        let mut clock = RunClock::resume(&p);
        clock.start_epoch();
        std::thread::sleep(std::time::Duration::from_millis(20));
        clock.stamp(&mut p);
        assert!(p.train_seconds >= 1000.02 && p.train_seconds < 1001.0);
        assert!(p.epoch_seconds >= 40.02 && p.epoch_seconds < 41.0);
        let e = clock.end_epoch();
        assert!((40.02..41.0).contains(&e));
        // The next epoch starts from zero, not from the checkpoint's partial epoch.
        clock.start_epoch();
        clock.stamp(&mut p);
        assert!(p.epoch_seconds < 0.5, "{}", p.epoch_seconds);
        assert!(p.train_seconds >= 1000.02);
    }

    #[test]
    fn checkpoints_without_times_read_as_zero() {
        let p = progress(5.0, 2.0);
        let mut v = serde_json::to_value(&p).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("train_seconds");
        o.remove("epoch_seconds");
        let back: Progress = serde_json::from_value(v).unwrap();
        assert_eq!((back.train_seconds, back.epoch_seconds), (0.0, 0.0));
    }
}
