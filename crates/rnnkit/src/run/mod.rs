//! Run directories: where a training run keeps its config, checkpoints, metrics, charts,
//! weights and report ([`RunDir`]), and the report at the end of a run.
//!
//! | file in the run directory      | written by                  | from                            |
//! |--------------------------------|-----------------------------|---------------------------------|
//! | `config.toml`                  | [`config_toml`]             | the resolved config             |
//! | `plots/{loss,lr,grad_norm}.png`| [`write_plots`]             | `metrics/{steps,epochs}.csv`    |
//! | `plots/grad_vs_distance.png`   | [`write_diagnostics_plot`]  | `metrics/diagnostics.jsonl`     |
//! | `report.md`                    | [`write_report_md`]         | a [`ReportSummary`], `plots/`   |
//! | `model.safetensors`            | [`RunDir::save_model`]      | the trained model               |
//!
//! The charts are read from the files, not from the trainer's memory, so a resumed run's charts
//! cover the whole run. Built without the `plot` feature, no chart is drawn and the report links
//! none.

mod config_toml;
mod dir;
pub mod plots;
pub mod report;

pub use config_toml::{config_toml, tidy_floats};
pub use dir::{RunDir, Weights};
pub use plots::{write_diagnostics_plot, write_plots};
pub use report::{ReportSummary, write_report_md};
