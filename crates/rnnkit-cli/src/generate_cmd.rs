//! `rnnkit generate --model RUN_DIR`: text from a trained language model, streamed to stdout as
//! it is produced, tokenized exactly as in training (the run's saved `text.json`).

use crate::train_cmd::{UsageError, parse_config};
use anyhow::{Context, Result};
use rnnkit::data::text::TextPipeline;
use rnnkit::io::TensorFile;
use rnnkit::train::generate::{Generator, SamplingConfig};
use rnnkit::train::lm::LanguageModel;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    let config_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        anyhow::Error::new(UsageError(format!(
            "{}: {e} (--model takes a run directory written by rnnkit train)",
            config_path.display()
        )))
    })?;
    let cfg = parse_config(&text, &config_path.display().to_string(), &[])?;
    let pipeline = TextPipeline::load(&dir.join("text.json"))?;
    let weights = checkpoint(dir, args.latest)?;
    // A checkpoint also holds optimizer state and the carried recurrent state: the model's
    // tensors are the rest.
    let mut tensors = TensorFile::read(&weights)?.f32;
    tensors.retain(|name, _| {
        !["optim.", "state.", "best."]
            .iter()
            .any(|p| name.starts_with(p))
    });
    let mut model = LanguageModel::from_named(cfg.model.rnn(), &tensors)
        .with_context(|| format!("loading {}", weights.display()))?;
    if cfg.model.tie_weights {
        model.tie()?;
    }
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
    generator.prime(&pipeline.encode(&args.prompt)?)?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", args.prompt)?;
    let mut failed = None;
    generator.generate(args.length, |id| {
        let piece = match pipeline.decode(&[id]) {
            Ok(p) => p,
            Err(e) => {
                failed = Some(anyhow::Error::new(e));
                return false;
            }
        };
        if let Err(e) = write!(stdout, "{piece}").and_then(|_| stdout.flush()) {
            failed = Some(e.into());
            return false;
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    writeln!(stdout)?;
    Ok(())
}

fn checkpoint(dir: &Path, latest: bool) -> Result<PathBuf> {
    let names: &[&str] = if latest {
        &["latest"]
    } else {
        &["best", "latest"]
    };
    for n in names {
        let p = dir.join("checkpoints").join(format!("{n}.safetensors"));
        if p.exists() {
            return Ok(p);
        }
    }
    Err(anyhow::Error::new(UsageError(format!(
        "{}: no checkpoint in checkpoints/; has the run saved one yet?",
        dir.display()
    ))))
}
