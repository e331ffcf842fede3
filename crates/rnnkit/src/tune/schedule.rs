//! What to run next: asynchronous successive halving (ASHA; Li et al., 2020), median pruning,
//! or every trial to the end — a pure function of the study's state.
//!
//! Rungs are epoch counts `r₀ < r₁ < … < r_K`: `min_epochs · ηᵏ`, the last capped at
//! `max_epochs`. ASHA never waits for a rung to fill: whenever a worker is free it promotes a
//! trial that is in the top `⌊n/η⌋` of the `n` results at its rung (highest rung first), and
//! starts a new trial when there is none. A promoted trial continues from its checkpoint.

use super::journal::{StudyState, TrialState};
use serde::{Deserialize, Serialize};

/// `[pruner]` of a study file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pruner {
    /// Asynchronous successive halving.
    Asha {
        /// Epochs of the first rung. Default 1.
        #[serde(default = "one")]
        min_epochs: usize,
        /// Epochs of the last rung (every trial's `train.epochs`).
        max_epochs: usize,
        /// η: the fraction `1/η` of a rung is promoted, and rungs are η times longer. Default 3.
        #[serde(default = "three")]
        reduction: usize,
    },
    /// Median pruning (as Optuna's MedianPruner): a trial continues past a rung while its
    /// score there is no worse than the median of the scores at that rung.
    Median {
        /// Epochs between checks (rungs are multiples of it). Default 1.
        #[serde(default = "one")]
        every_epochs: usize,
        /// Epochs of the last rung.
        max_epochs: usize,
        /// Results a rung needs before it prunes. Default 5.
        #[serde(default = "five")]
        startup_trials: usize,
    },
    /// No pruning: every trial trains `max_epochs` (its own early stopping still applies).
    None {
        /// Epochs per trial.
        max_epochs: usize,
    },
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn five() -> usize {
    5
}

/// For people: `ASHA (η = 3)`, `median (from 5 results per rung, every 2 epochs)`, `none`.
impl std::fmt::Display for Pruner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Pruner::Asha { reduction, .. } => write!(f, "ASHA (η = {reduction})"),
            Pruner::Median {
                every_epochs,
                startup_trials,
                ..
            } => write!(
                f,
                "median (from {startup_trials} results per rung, every {every_epochs} epochs)"
            ),
            Pruner::None { .. } => write!(f, "none"),
        }
    }
}

impl Pruner {
    /// The rungs' epoch counts, increasing, the last `max_epochs`.
    ///
    /// ```
    /// use rnnkit::tune::Pruner;
    /// let asha = Pruner::Asha { min_epochs: 1, max_epochs: 20, reduction: 3 };
    /// assert_eq!(asha.rungs(), vec![1, 3, 9, 20]);
    /// let median = Pruner::Median { every_epochs: 2, max_epochs: 7, startup_trials: 5 };
    /// assert_eq!(median.rungs(), vec![2, 4, 6, 7]);
    /// ```
    pub fn rungs(&self) -> Vec<usize> {
        let mut r = Vec::new();
        match *self {
            Pruner::Asha {
                min_epochs,
                max_epochs,
                reduction,
            } => {
                let mut e = min_epochs.max(1);
                while e < max_epochs {
                    r.push(e);
                    e = e.saturating_mul(reduction.max(2));
                }
            }
            Pruner::Median {
                every_epochs,
                max_epochs,
                ..
            } => {
                let step = every_epochs.max(1);
                r.extend((1..).map(|k| k * step).take_while(|&e| e < max_epochs));
            }
            Pruner::None { .. } => {}
        }
        r.push(self.max_epochs());
        r
    }

    /// Every trial's `train.epochs`.
    pub fn max_epochs(&self) -> usize {
        match *self {
            Pruner::Asha { max_epochs, .. }
            | Pruner::Median { max_epochs, .. }
            | Pruner::None { max_epochs } => max_epochs,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`crate::Error::Config`] naming the field: `max_epochs` 0, a first rung past the last,
    /// η below 2.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::Config(format!("[pruner] {m}")));
        match *self {
            _ if self.max_epochs() == 0 => bad("max_epochs must be at least 1"),
            Pruner::Asha {
                min_epochs,
                max_epochs,
                reduction,
            } => {
                if min_epochs == 0 || min_epochs > max_epochs {
                    bad("min_epochs must be in 1..=max_epochs")
                } else if reduction < 2 {
                    bad("reduction (η) must be at least 2")
                } else {
                    Ok(())
                }
            }
            Pruner::Median {
                every_epochs,
                startup_trials,
                ..
            } => {
                if every_epochs == 0 {
                    bad("every_epochs must be at least 1")
                } else if startup_trials == 0 {
                    bad("startup_trials must be at least 1")
                } else {
                    Ok(())
                }
            }
            Pruner::None { .. } => Ok(()),
        }
    }
}

/// The next thing for a free worker to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// Train `trial` (new or continued) up to rung `rung`.
    Train {
        /// The trial.
        trial: u64,
        /// The rung to reach.
        rung: usize,
    },
    /// Sample a new trial and train it to rung 0.
    New,
    /// Nothing now, but running jobs may make a promotion possible: ask again later.
    Wait,
    /// The study is complete.
    Done,
}

/// Oriented objective: lower is better.
fn oriented(value: f64, maximize: bool) -> f64 {
    let v = if maximize { -value } else { value };
    if v.is_nan() { f64::INFINITY } else { v }
}

/// Whether a trial can take another job: alive, not claimed, not at the last rung.
fn open(t: &TrialState, last: usize) -> bool {
    t.end.is_none() && t.claim.is_none() && t.top_rung().is_some_and(|r| r < last)
}

/// Picks the next job. `may_start` says whether the budget allows a new trial; `resumable`
/// lists claims whose workers are gone (offered first, to be continued from their checkpoints).
///
/// ```
/// use rnnkit::tune::{Job, Pruner, StudyState, next_job};
/// let asha = Pruner::Asha { min_epochs: 1, max_epochs: 9, reduction: 3 };
/// assert_eq!(next_job(&StudyState::default(), &asha, false, true, &[]), Job::New);
/// assert_eq!(next_job(&StudyState::default(), &asha, false, false, &[]), Job::Done);
/// ```
pub fn next_job(
    state: &StudyState,
    pruner: &Pruner,
    maximize: bool,
    may_start: bool,
    resumable: &[(u64, usize)],
) -> Job {
    if let Some(&(trial, rung)) = resumable.first() {
        return Job::Train { trial, rung };
    }
    let rungs = pruner.rungs();
    let last = rungs.len() - 1;
    // Promotions, highest rung first (finishing promising trials beats starting new ones).
    for rung in (0..last).rev() {
        let mut at_rung: Vec<(f64, &TrialState)> = state
            .trials
            .values()
            .filter_map(|t| {
                t.results
                    .get(&rung)
                    .map(|r| (oriented(r.value, maximize), t))
            })
            .collect();
        if at_rung.is_empty() {
            continue;
        }
        at_rung.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.trial.cmp(&b.1.trial)));
        let n = at_rung.len();
        let promote: Box<dyn Fn(usize, f64) -> bool> = match *pruner {
            Pruner::Asha { reduction, .. } => {
                let k = n / reduction.max(2);
                Box::new(move |pos, _| pos < k)
            }
            Pruner::Median { startup_trials, .. } => {
                let median = median(&at_rung.iter().map(|p| p.0).collect::<Vec<_>>());
                Box::new(move |_, v| n < startup_trials || v <= median)
            }
            Pruner::None { .. } => Box::new(|_, _| true),
        };
        if let Some((_, t)) = at_rung
            .iter()
            .enumerate()
            .find(|(pos, (v, t))| open(t, last) && t.top_rung() == Some(rung) && promote(*pos, *v))
            .map(|(_, p)| *p)
        {
            return Job::Train {
                trial: t.trial,
                rung: rung + 1,
            };
        }
    }
    if may_start {
        return Job::New;
    }
    let running = state.trials.values().any(|t| t.claim.is_some());
    if running { Job::Wait } else { Job::Done }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::INFINITY;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::journal::Event;

    fn state(results: &[(u64, usize, f64)]) -> StudyState {
        let mut s = StudyState::default();
        for &(trial, rung, value) in results {
            if !s.trials.contains_key(&trial) {
                s.apply(&Event::Trial {
                    trial,
                    params: Vec::new(),
                    seed: trial,
                    at: 0.0,
                });
            }
            s.apply(&Event::Result {
                trial,
                rung,
                epochs: 1,
                value,
                curve: Vec::new(),
                seconds: 1.0,
                at: 0.0,
            });
        }
        s
    }

    const ASHA: Pruner = Pruner::Asha {
        min_epochs: 1,
        max_epochs: 9,
        reduction: 3,
    };

    #[test]
    fn asha_promotes_the_top_third_as_results_come_in() {
        // Two results at rung 0: ⌊2/3⌋ = 0 promotions, so a new trial.
        let s = state(&[(0, 0, 2.0), (1, 0, 1.0)]);
        assert_eq!(next_job(&s, &ASHA, false, true, &[]), Job::New);
        // Three: the best (trial 1) goes up.
        let mut s = state(&[(0, 0, 2.0), (1, 0, 1.0), (2, 0, 3.0)]);
        assert_eq!(
            next_job(&s, &ASHA, false, true, &[]),
            Job::Train { trial: 1, rung: 1 }
        );
        // Claimed: not promoted twice.
        s.apply(&Event::Claim {
            trial: 1,
            rung: 1,
            session: 1,
            worker: 0,
            at: 0.0,
        });
        assert_eq!(next_job(&s, &ASHA, false, true, &[]), Job::New);
        assert_eq!(next_job(&s, &ASHA, false, false, &[]), Job::Wait);
        // Maximizing flips the order: trial 2 is the best.
        let s = state(&[(0, 0, 2.0), (1, 0, 1.0), (2, 0, 3.0)]);
        assert_eq!(
            next_job(&s, &ASHA, true, true, &[]),
            Job::Train { trial: 2, rung: 1 }
        );
    }

    #[test]
    fn higher_rungs_first_and_done_when_nothing_is_left() {
        let s = state(&[
            (0, 0, 1.0),
            (0, 1, 0.5),
            (1, 0, 2.0),
            (2, 0, 3.0),
            (3, 0, 0.9),
            (4, 1, 0.7),
            (5, 1, 0.8),
        ]);
        // Rung 1 has 3 results (0: 0.5, 4: 0.7, 5: 0.8): trial 0 goes to rung 2 first.
        assert_eq!(
            next_job(&s, &ASHA, false, false, &[]),
            Job::Train { trial: 0, rung: 2 }
        );
        let s = state(&[(0, 0, 1.0), (0, 1, 1.0), (0, 2, 1.0)]);
        assert_eq!(next_job(&s, &ASHA, false, false, &[]), Job::Done);
        assert_eq!(
            next_job(&s, &ASHA, false, false, &[(7, 1)]),
            Job::Train { trial: 7, rung: 1 }
        );
    }

    #[test]
    fn median_prunes_below_the_median_after_startup() {
        let m = Pruner::Median {
            every_epochs: 1,
            max_epochs: 3,
            startup_trials: 3,
        };
        let s = state(&[(0, 0, 1.0), (1, 0, 2.0)]);
        // Fewer than 3 results: everyone continues (trial 0 first: the best).
        assert_eq!(
            next_job(&s, &m, false, true, &[]),
            Job::Train { trial: 0, rung: 1 }
        );
        let mut s = state(&[(0, 0, 3.0), (1, 0, 1.0), (2, 0, 2.0)]);
        // Median at rung 0 is 2.0: trial 1 (1.0) and trial 2 (2.0) continue, trial 0 does not.
        for trial in [1, 2] {
            assert_eq!(
                next_job(&s, &m, false, true, &[]),
                Job::Train { trial, rung: 1 }
            );
            s.apply(&Event::Claim {
                trial,
                rung: 1,
                session: 1,
                worker: 0,
                at: 0.0,
            });
        }
        assert_eq!(next_job(&s, &m, false, true, &[]), Job::New);
    }

    #[test]
    fn rungs_and_validation() {
        assert_eq!(ASHA.rungs(), vec![1, 3, 9]);
        assert_eq!(Pruner::None { max_epochs: 4 }.rungs(), vec![4]);
        assert!(
            Pruner::Asha {
                min_epochs: 5,
                max_epochs: 3,
                reduction: 3
            }
            .validate()
            .is_err()
        );
        assert!(Pruner::None { max_epochs: 0 }.validate().is_err());
    }
}
