//! Training: the one [`Trainer`] for every model and data source, its [`TrainConfig`], what it
//! reports, the metrics files it writes, and checkpoints that resume exactly.

pub mod checkpoint;
pub mod clock;
mod config;
pub mod confusion;
mod metrics;
mod report;
pub mod stop;
mod trainer;

pub use config::TrainConfig;
pub use report::{EpochReport, Evaluation, Reporter, RunSummary, Silent, StepReport};
pub use stop::StopSignal;
pub use trainer::{Split, Trainer, evaluate};
