//! `rnnkit inspect RUN_DIR|FILE.safetensors`: what a saved model is — its config, and every
//! parameter with its shape and count. Checkpoint bookkeeping (optimizer state, the carried
//! state, best-so-far copies) is summarized, not listed.

use anyhow::{Context, Result};
use rnnkit::io::TensorFile;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Runs the command, printing to stdout.
pub fn run(target: &Path) -> Result<()> {
    let (file, config) = resolve(target)?;
    let tf = TensorFile::read(&file).with_context(|| format!("inspect {}", target.display()))?;
    tf.ensure_finite(&file)?;
    let mut out = String::new();
    writeln!(out, "file {}", file.display())?;
    if let Some(cfg) = &config {
        writeln!(out, "config {}", cfg.display())?;
    }
    let mut meta: Vec<_> = tf.metadata.iter().collect();
    meta.sort();
    for (k, v) in meta {
        // Long JSON blobs (progress, config) are summarized; the config is its own file.
        if v.len() > 120 {
            writeln!(out, "  meta {k}: {} bytes of JSON", v.len())?;
        } else {
            writeln!(out, "  meta {k} = {v}")?;
        }
    }
    let is_bookkeeping =
        |n: &str| n.starts_with("optim.") || n.starts_with("state.") || n.starts_with("best.");
    let (mut total, mut skipped) = (0usize, 0usize);
    writeln!(out, "\n{:<40} {:>18} {:>12}", "parameter", "shape", "count")?;
    for (name, t) in &tf.f32 {
        if is_bookkeeping(name) {
            skipped += 1;
            continue;
        }
        let shape = format!("{:?}", t.shape());
        writeln!(out, "{name:<40} {shape:>18} {:>12}", t.len())?;
        total += t.len();
    }
    writeln!(out, "{:<40} {:>18} {:>12}", "total", "", total)?;
    if skipped > 0 {
        writeln!(
            out,
            "({skipped} checkpoint tensors not listed: optimizer state, carried state, best weights)"
        )?;
    }
    crate::stdout::emit(&out)?;
    Ok(())
}

/// A run directory → its best (or latest) checkpoint and its config; a file → itself.
fn resolve(target: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    if target.is_dir() {
        let config = target.join("config.toml");
        for name in ["best", "latest"] {
            let f = target
                .join("checkpoints")
                .join(format!("{name}.safetensors"));
            if f.exists() {
                return Ok((f, config.exists().then_some(config)));
            }
        }
        // Pointing at a directory that holds no run is a usage mistake (exit 2).
        return Err(crate::run_config::usage(format!(
            "{}: no checkpoints/best.safetensors or checkpoints/latest.safetensors; is it a run \
             directory?",
            target.display()
        )));
    }
    Ok((target.to_path_buf(), None))
}
