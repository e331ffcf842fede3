//! `rnnkit evaluate --model RUN_DIR [--data PATH]`: a trained run's metrics on new data, or on
//! the run's own held-out split when no data is given (the library's `tasks::evaluate`).
//!
//! With `--outputs FILE.safetensors` it also writes a fixed batch of inputs and the model's
//! raw outputs (language model: `input_ids` `[T, 1]` i64 and `logits` `[T, 1, V]`; classifier:
//! `input_ids` `[T, B]`, `lengths` `[B]` and `logits` `[B, C]`; forecaster: `inputs`
//! `[L, B, F]` and `forecasts` `[B, H, K]` in scaled units), which `tools/torch_load_run.py`
//! reproduces in PyTorch from `model.safetensors`.

use crate::run_config::load_run_config;
use anyhow::{Context, Result};
use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::EvaluateOptions;
use std::path::PathBuf;

/// What `rnnkit evaluate` was given.
pub struct EvaluateArgs {
    /// The run directory.
    pub model: PathBuf,
    /// Data to score; the run's held-out split when absent.
    pub data: Option<PathBuf>,
    /// Write a fixed batch of inputs and raw outputs here.
    pub outputs: Option<PathBuf>,
    /// Print one JSON object instead of lines.
    pub json: bool,
    /// Use the latest checkpoint instead of the best weights.
    pub latest: bool,
    /// Quantize the recurrent stack to int8 (dynamic quantization).
    pub int8: bool,
}

/// Runs the command.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let config = load_run_config(&args.model)?;
    let run = RunDir::open(&args.model)?;
    let options = EvaluateOptions {
        data: args.data.clone(),
        weights: Weights::latest_if(args.latest),
        outputs: args.outputs.is_some(),
        int8: args.int8,
    };
    let found = config.evaluate(&run, &options)?;
    if let (Some(path), Some(file)) = (&args.outputs, &found.outputs) {
        file.write(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let text = if args.json {
        format!("{}\n", found.metrics)
    } else {
        let mut text = String::new();
        print_lines(&found.metrics, "", &mut text);
        text
    };
    crate::stdout::emit(&text)?;
    if let Some(p) = &args.outputs {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// `key: value` lines into `out`, floats to 6 decimals, nested objects indented.
fn print_lines(value: &serde_json::Value, indent: &str, out: &mut String) {
    let Some(obj) = value.as_object() else {
        return;
    };
    for (k, v) in obj {
        let line = match v {
            serde_json::Value::Object(_) => {
                out.push_str(&format!("{indent}{k}:\n"));
                print_lines(v, &format!("{indent}  "), out);
                continue;
            }
            serde_json::Value::String(s) => format!("{indent}{k}: {s}"),
            serde_json::Value::Number(n) if n.is_f64() => {
                format!("{indent}{k}: {:.6}", n.as_f64().unwrap_or(f64::NAN))
            }
            other => format!("{indent}{k}: {other}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
}
