//! `rnnkit generate --model RUN_DIR`: text from a trained language model, streamed to stdout as
//! it is produced, tokenized exactly as in training (the run's saved `text.json`).

use crate::run_config::{RunConfig, UsageError};
use anyhow::Result;
use rnnkit::generate::{Generator, SamplingConfig};
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
}

/// Runs the command.
pub fn run(args: GenerateArgs) -> Result<()> {
    let dir = &args.model;
    let cfg = match crate::run_config::load_run_config(dir)? {
        RunConfig::Lm(c) => c,
        other => {
            return Err(anyhow::Error::new(UsageError(format!(
                "{}: a {} run; generate needs a language model (task = \"lm\"); use rnnkit {}",
                dir.display(),
                other.kind(),
                if other.kind() == rnnkit::tasks::TaskKind::Forecast {
                    "forecast"
                } else {
                    "classify"
                }
            ))));
        }
    };
    let run = rnnkit::run::RunDir::open(dir)?;
    let (model, pipeline) =
        rnnkit::tasks::lm::load(&run, &cfg, rnnkit::run::Weights::latest_if(args.latest))?;
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        max_tokens: args.length.max(1),
        ..Default::default()
    };
    sampling
        .validate()
        .map_err(|e| anyhow::Error::new(UsageError(e.to_string())))?;
    let mut generator = Generator::new(&model, sampling)?;
    let prompt = pipeline.encode(&args.prompt)?;
    generator.prime(&prompt)?;
    if !crate::stdout::emit(&args.prompt)? {
        return Ok(()); // the reader has gone: `rnnkit generate … | head -c 100`
    }
    let mut failed = None;
    let mut reader_gone = false;
    // Decoding continues the prompt's text, so a byte-level BPE character split over several
    // tokens comes out whole and a word after the prompt gets its space.
    let decoder = pipeline.stream_decoder_after(&prompt)?;
    generator.generate_text(
        args.length,
        decoder,
        |piece| match crate::stdout::finished_or_failed(crate::stdout::write_now(piece)) {
            Ok(true) => true,
            Ok(false) => {
                reader_gone = true;
                false
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    if !reader_gone {
        crate::stdout::emit("\n")?;
    }
    Ok(())
}
