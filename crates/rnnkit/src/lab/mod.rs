//! The vanishing-gradient lab: models, measures and an experiment that exist to show how
//! recurrent training behaves, not to be deployed.
//!
//! | file | what |
//! |---|---|
//! | `truncated.rs` | [`TruncatedForecaster`]: a forecaster whose gradient reaches back `k` steps |
//! | `vanishing.rs` | [`vanishing`]: the experiment's config, arms, one arm's run and the whole run |
//! | `vanishing_report.rs` | what [`vanishing::run`] writes: `report.md` and the charts |

mod truncated;
pub mod vanishing;
mod vanishing_report;

pub use truncated::TruncatedForecaster;
