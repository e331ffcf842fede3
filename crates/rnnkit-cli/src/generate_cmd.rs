//! `rnnkit generate --model RUN_DIR`: text from a trained language model, streamed to stdout as
//! it is produced, tokenized exactly as in training (the run's saved `text.json`).

use crate::run_config::usage;
use anyhow::Result;
use rnnkit::generate::SamplingConfig;
use rnnkit::run::Weights;
use rnnkit::tasks::TaskKind;
use rnnkit::tasks::lm::{LanguageModeling, LmConfig, Prompt};
use std::path::PathBuf;

/// What the command line gave.
pub struct GenerateArgs {
    /// The run directory.
    pub model: PathBuf,
    /// Text to start from.
    pub prompt: String,
    /// Tokens to generate.
    pub length: usize,
    /// Softmax temperature (0: greedy).
    pub temperature: f32,
    /// Keep only the k most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens with this much probability.
    pub top_p: Option<f32>,
    /// Sampling seed.
    pub seed: u64,
    /// `latest` instead of `best` weights.
    pub latest: bool,
    /// Quantize the recurrent stack to int8 (dynamic quantization).
    pub int8: bool,
}

/// Runs the command.
pub fn run(args: GenerateArgs) -> Result<()> {
    let dir = &args.model;
    let (cfg, run) = crate::predict_cmd::open_run::<LmConfig>(dir, |kind| {
        usage(format!(
            "{}: a {kind} run; generate needs a language model (task = \"lm\"); use rnnkit {}",
            dir.display(),
            if kind == TaskKind::Forecast {
                "forecast"
            } else {
                "classify"
            }
        ))
    })?;
    let mut failed = None;
    let mut reader_gone = false;
    let mut on_text =
        |piece: &str| match crate::stdout::finished_or_failed(crate::stdout::write_now(piece)) {
            Ok(true) => true,
            Ok(false) => {
                reader_gone = true; // `rnnkit generate … | head -c 100`
                false
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        };
    let prompt = Prompt {
        text: &args.prompt,
        length: args.length,
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
            ..Default::default()
        },
        on_text: &mut on_text,
    };
    rnnkit::tasks::predict_with::<LanguageModeling>(
        &cfg,
        &run,
        Weights::latest_if(args.latest),
        args.int8,
        prompt,
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !reader_gone {
        crate::stdout::emit("\n")?;
    }
    Ok(())
}
