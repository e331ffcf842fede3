//! The configs of runs, read with the library's loader ([`rnnkit::config_file`]), and the
//! CLI's own bad-input error.

use anyhow::Result;
use rnnkit::run::RunDir;
use std::path::Path;

/// A config of one of the tasks.
pub type RunConfig = rnnkit::tasks::AnyConfig;

/// Reads `RUN_DIR/config.toml`, the resolved config a run saved.
pub fn load_run_config(dir: &Path) -> Result<RunConfig> {
    let run = RunDir::open(dir)?;
    Ok(rnnkit::config_file::read_run_config(&run)?)
}

/// A mistake in what the user gave (arguments, paths): exit code 2, not 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A [`UsageError`] as an `anyhow::Error`.
pub fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}
