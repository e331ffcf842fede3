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
//!
//! `rnnkit tune` runs [`Study::work`] in `--workers` processes; a program can run it itself:
//!
//! ```no_run
//! use rnnkit::train::StopSignal;
//! use rnnkit::tune::{Study, write_outputs};
//! # fn main() -> rnnkit::Result<()> {
//! let dir = std::env::temp_dir().join("rnnkit-doc-tune");
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(
//!     dir.join("base.toml"),
//!     "task = \"classify\"\n[data]\npath = \"data/names\"\n[model]\nembedding_size = 16\n",
//! )
//! .unwrap();
//! let study_file = r#"
//! base = "base.toml"
//! objective = "macro_f1"
//! [budget]
//! trials = 4
//! [sampler]
//! kind = "random"
//! [pruner]
//! kind = "asha"
//! min_epochs = 1
//! max_epochs = 4
//! reduction = 2
//! [space]
//! "model.hidden_size" = { int_log = [16, 128] }
//! "train.optimizer.lr" = { loguniform = [1e-3, 1e-2] }
//! "#;
//! let study = Study::create(&dir.join("study"), study_file, "study.toml", &dir)?;
//! let session = study.begin_session()?;
//! // One worker, on 2 threads, in this process, until the budget is spent.
//! study.work(session, 0, 2, &StopSignal::new(), &mut |line| println!("{line}"))?;
//! let out = write_outputs(&study)?;
//! let (trial, f1) = out.best.expect("a trial was scored");
//! println!("best: trial {trial}, macro-F1 {f1:.3}; rerun with {:?}", out.best_config);
//! # Ok(())
//! # }
//! ```

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
