//! `rnnkit export --model RUN_DIR --format onnx [--out FILE.onnx]`: a trained run's model as
//! ONNX (the library's `AnyConfig::export_onnx`), and its preprocessing as JSON beside it
//! (`FILE.preprocessing.json`).

use crate::run_config::{load_run_config, usage};
use anyhow::{Context, Result};
use rnnkit::export::{OnnxOptions, Recurrence};
use rnnkit::run::{RunDir, Weights};
use std::path::{Path, PathBuf};

/// What `rnnkit export` was given.
pub struct ExportArgs {
    /// The run directory.
    pub model: PathBuf,
    /// The format; only `onnx` today.
    pub format: String,
    /// The model file; default `RUN_DIR/model.onnx`.
    pub out: Option<PathBuf>,
    /// How recurrent layers are written.
    pub recurrence: Recurrence,
    /// Leave out the `lengths` input (every sequence `T` steps).
    pub no_lengths: bool,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
}

/// `model.onnx` → `model.preprocessing.json`, beside it.
fn preprocessing_path(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    model.with_file_name(format!("{stem}.preprocessing.json"))
}

/// Runs the command.
pub fn run(args: ExportArgs) -> Result<()> {
    if args.format != "onnx" {
        return Err(usage(format!(
            "--format {}: the formats are: onnx",
            args.format
        )));
    }
    let config = load_run_config(&args.model)?;
    let run = RunDir::open(&args.model)?;
    let options = OnnxOptions {
        recurrence: args.recurrence,
        lengths: !args.no_lengths,
    };
    let exported = config.export_onnx(&run, Weights::latest_if(args.latest), &options)?;
    let out = args.out.unwrap_or_else(|| run.join("model.onnx"));
    if out.is_dir() {
        return Err(usage(format!(
            "--out {} is a directory: give the model file's path, e.g. {}",
            out.display(),
            out.join("model.onnx").display()
        )));
    }
    exported
        .model
        .write(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    let prep = preprocessing_path(&out);
    let text = serde_json::to_string_pretty(&exported.preprocessing)?;
    rnnkit::io::write_atomic(&prep, format!("{text}\n").as_bytes())
        .with_context(|| format!("writing {}", prep.display()))?;
    let inputs = exported.model.input_names().join(", ");
    let outputs = exported.model.output_names().join(", ");
    crate::stdout::emit(&format!(
        "wrote {} (inputs: {inputs}; outputs: {outputs})\nwrote {}\n",
        out.display(),
        prep.display()
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::preprocessing_path;
    use std::path::Path;

    #[test]
    fn the_preprocessing_sits_beside_the_model() {
        assert_eq!(
            preprocessing_path(Path::new("out/lm.onnx")),
            Path::new("out/lm.preprocessing.json")
        );
    }
}
