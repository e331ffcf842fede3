//! Hyperparameter search: a study samples configs from a [`SearchSpace`], trains each as an
//! ordinary run directory, and promotes the promising ones rung by rung (asynchronous
//! successive halving), continuing a promoted trial from its checkpoint rather than
//! retraining it: the trainer resumes exactly, so a trial promoted at epoch 3 and trained to
//! 9 ends with the weights of one trained straight to 9.
//!
//! - [`StudySpec`]: the study file (base config, objective, budget, sampler, pruner, space).
//! - [`SearchSpace`]: config keys as distributions, with conditions.
//! - [`SamplerKind`]: random, grid, TPE.
//! - [`Pruner`] and [`next_job`]: ASHA, median pruning, or none.
//! - [`Journal`]: the study's append-only, file-locked event log; any number of workers, in
//!   any number of processes, share one study through it.
//! - [`Study`]: the directory, and [`Study::work`], one worker's loop.
//! - [`write_outputs`]: `trials.csv`, `trials.jsonl`, `best/config.toml`, `report.md`.

mod journal;
mod output;
mod sampler;
mod schedule;
mod space;
mod spec;
mod study;
mod trial;

pub use journal::{Claim, Event, Journal, RungResult, StudyState, TrialEnd, TrialState};
pub use output::{
    StudyOutputs, TrialStatus, best_trial, count_status, importance, trial_status, write_outputs,
};
pub use sampler::{Observation, Sampler, SamplerKind};
pub use schedule::{Job, Pruner, next_job};
pub use space::{Dist, Param, Params, SearchSpace};
pub use spec::{Budget, Direction, StudySpec};
pub use study::{Study, WorkerSummary};
