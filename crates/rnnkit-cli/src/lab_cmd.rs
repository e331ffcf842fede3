//! `rnnkit lab vanishing`: the flags, the worker threads and the printing around
//! [`rnnkit::lab::vanishing`], which trains the arms and writes `report.md`, `results.json`
//! and the charts.

use anyhow::{Context, Result};
use rnnkit::lab::vanishing::{self, LabConfig};
use std::path::PathBuf;

/// What `rnnkit lab vanishing` was given.
pub struct VanishingArgs {
    /// About one minute instead of about ten: lengths 20 and 50, fewer examples and epochs.
    pub quick: bool,
    /// Sequence lengths to try (default 20, 50, 100, 200, 400).
    pub lengths: Vec<usize>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Worker threads; 0 means all cores.
    pub threads: usize,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// Runs the lab, printing a line per arm unless quiet.
pub fn vanishing(args: VanishingArgs) -> Result<()> {
    let config = LabConfig {
        lengths: args.lengths,
        quick: args.quick,
        budget: None,
        command: Some(std::env::args().collect::<Vec<_>>().join(" ")),
    };
    let threads = rnnkit::resources::worker_threads(args.threads).context("--threads")?;
    let pool = crate::train_cmd::rayon_pool(threads)?;
    let outcome = pool.install(|| {
        vanishing::run(&config, &args.out, |r| {
            if !args.quiet {
                eprintln!("{}", r.summary());
            }
        })
    })?;
    if !args.quiet {
        eprintln!(
            "{:.0} s in all\nreport {}",
            outcome.seconds,
            outcome.report.display()
        );
    }
    Ok(())
}
