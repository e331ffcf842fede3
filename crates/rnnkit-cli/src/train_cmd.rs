//! `rnnkit train`: config → data → model → trainer → run directory. With no arguments it trains
//! the bundled default (a character LSTM on the bundled Tiny Shakespeare text).
//!
//! The run directory (`runs/<name or timestamp>/`) gets the resolved `config.toml`, the text
//! pipeline (`text.json`: cleaning, tokenizer, vocabulary), `metrics/`, `checkpoints/`
//! (`latest`, `best`), `plots/`, `report.md` and a generated sample.

use crate::train_config::{TrainFile, merge_defaults};
use anyhow::{Context, Result};
use rnnkit::data::text::TextPipeline;
use rnnkit::train::lm::LanguageModel;
use rnnkit::train::trainer::{LmData, LmTrainer};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A mistake in what the user gave (config, `--set`, paths): exit code 2, not 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

/// What the command line gave.
pub struct TrainArgs {
    /// `--config FILE.toml`.
    pub config: Option<PathBuf>,
    /// `--set key=value`, in order.
    pub set: Vec<String>,
    /// `--resume RUN_DIR`.
    pub resume: Option<PathBuf>,
    /// `--quiet`.
    pub quiet: bool,
}

/// Parses a config: the user's TOML (`text`, from `source`) with `--set` overrides applied,
/// missing keys filled from the defaults, unknown keys and bad values reported with where.
pub fn parse_config(text: &str, source: &str, set: &[String]) -> Result<TrainFile> {
    let mut user: toml::Value =
        toml::from_str(text).map_err(|e| usage(format!("{source}: {}", toml_error(text, &e))))?;
    for s in set {
        apply_set(&mut user, s)?;
    }
    let defaults = toml::Value::try_from(TrainFile::default()).context("encoding the defaults")?;
    let merged = merge_defaults(defaults, user);
    match merged.try_into::<TrainFile>() {
        Ok(cfg) => Ok(cfg),
        // The same mistake fails the same way without the defaults merged in; the loader then
        // says where it is (file line or `--set`) and suggests the closest valid key.
        Err(e) => match crate::config_load::load_config::<TrainFile>(text, source, set) {
            Err(detailed) => Err(usage(format!("{detailed:#}"))),
            Ok(_) => Err(usage(format!("{source}: {}", e.message().trim()))),
        },
    }
}

/// A toml error as `line L, column C: message`.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {}", e.message().trim())
        }
        None => e.message().trim().to_string(),
    }
}

/// Applies one `--set a.b.c=value` (the value parsed as TOML, else taken as a string).
fn apply_set(root: &mut toml::Value, set: &str) -> Result<()> {
    let (key, raw) = set.split_once('=').ok_or_else(|| {
        usage(format!(
            "--set {set}: expected key=value, e.g. train.epochs=3"
        ))
    })?;
    let key = key.trim();
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed v"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(usage(format!(
            "--set {set}: `{key}` is not a dotted key like train.optimizer.lr"
        )));
    }
    let mut node = root;
    for p in &parts[..parts.len() - 1] {
        let table = node
            .as_table_mut()
            .ok_or_else(|| usage(format!("--set {set}: `{p}` is inside a value, not a table")))?;
        node = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    node.as_table_mut()
        .ok_or_else(|| usage(format!("--set {set}: the parent of `{key}` is not a table")))?
        .insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Runs the command.
pub fn run(args: TrainArgs) -> Result<()> {
    let (cfg, run_dir, resuming) = match &args.resume {
        Some(dir) => {
            let path = dir.join("config.toml");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                usage(format!(
                    "reading {}: {e} (is it a run directory?)",
                    path.display()
                ))
            })?;
            let cfg = parse_config(&text, &path.display().to_string(), &args.set)?;
            (cfg, dir.clone(), true)
        }
        None => {
            let (text, source) = match &args.config {
                Some(p) => (
                    std::fs::read_to_string(p)
                        .map_err(|e| usage(format!("reading the config {}: {e}", p.display())))?,
                    p.display().to_string(),
                ),
                None => (String::new(), "the bundled default config".to_string()),
            };
            let cfg = parse_config(&text, &source, &args.set)?;
            let name = if cfg.output.name.is_empty() {
                timestamp()
            } else {
                cfg.output.name.clone()
            };
            let dir = cfg.output.dir.join(name);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the run directory {}", dir.display()))?;
            (cfg, dir, false)
        }
    };
    let threads = if cfg.output.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cfg.output.threads
    };
    let pool = rayon_pool(threads)?;
    pool.install(|| train(&cfg, &run_dir, resuming, args.quiet, threads))
}

fn rayon_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the worker threads")
}

fn train(
    cfg: &TrainFile,
    run_dir: &Path,
    resuming: bool,
    quiet: bool,
    threads: usize,
) -> Result<()> {
    let resolved = format!(
        "# Rerun with: rnnkit train --config {}\n{}",
        run_dir.join("config.toml").display(),
        crate::config_load::resolved_toml(cfg).context("writing the resolved config")?
    );
    if !resuming {
        std::fs::write(run_dir.join("config.toml"), resolved)
            .with_context(|| format!("writing {}", run_dir.join("config.toml").display()))?;
    }

    // Data: the last `valid_fraction` of the text is validation; the pipeline is fitted on the
    // training part only and saved, so generation tokenizes exactly as training did.
    let data_path = bundled_or_given(&cfg.data.path);
    let text = rnnkit::data::text::load::read_text(&data_path).with_context(|| {
        format!(
            "reading the training text (data.path = {})",
            cfg.data.path.display()
        )
    })?;
    let f = cfg.data.valid_fraction;
    if !(f > 0.0 && f < 1.0) {
        return Err(usage(format!(
            "data.valid_fraction must be in (0, 1), got {f}"
        )));
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let cut_char = ((chars.len() as f64) * (1.0 - f)) as usize;
    let cut = chars.get(cut_char).map_or(text.len(), |(i, _)| *i);
    let (train_text, valid_text) = text.split_at(cut);
    let pipeline_path = run_dir.join("text.json");
    let pipeline = if resuming {
        TextPipeline::load(&pipeline_path)?
    } else {
        let p = TextPipeline::fit(&[train_text], &cfg.data.text)?;
        p.save(&pipeline_path)?;
        p
    };
    let eos = cfg.data.eos_per_line;
    let data = LmData {
        train: pipeline.encode_stream(&[train_text], eos)?,
        valid: pipeline.encode_stream(&[valid_text], eos)?,
        test: None,
    };
    let vocab = pipeline.vocab().len();
    if !quiet {
        eprintln!(
            "data {}: {} tokens train / {} valid, vocabulary {vocab}; model {} {}x{} (embedding {}); \
             {threads} threads\nrun directory {}",
            data_path.display(),
            data.train.len(),
            data.valid.len(),
            cfg.model.cell,
            cfg.model.num_layers,
            cfg.model.hidden_size,
            cfg.model.embedding_size,
            run_dir.display()
        );
    }

    let checkpoint = run_dir.join("checkpoints/latest.safetensors");
    let mut trainer = if resuming {
        LmTrainer::resume(
            &checkpoint,
            Some(cfg.train.clone()),
            Some(run_dir.to_path_buf()),
        )
        .with_context(|| format!("resuming from {}", checkpoint.display()))?
    } else {
        let mut model = LanguageModel::new(vocab, cfg.model.rnn(), cfg.train.seed)?;
        model.dropout = cfg.model.lm_dropout;
        if cfg.model.tie_weights {
            model.tie().context("model.tie_weights")?;
        }
        LmTrainer::new(model, cfg.train.clone(), Some(run_dir.to_path_buf()))?
    };
    let started = Instant::now();
    let mut reporter = crate::progress::Progress::new(cfg.train.epochs, "tok", quiet);
    let summary = trainer.run(&data, &mut reporter)?;
    let seconds = started.elapsed().as_secs_f64();
    let loss_name = "cross-entropy (nats/token)";
    let plots =
        crate::run_report::write_plots(run_dir, cfg.train.clip_norm.map(f64::from), loss_name)
            .context("drawing the plots")?;
    let mut report = crate::run_report::ReportSummary {
        task: "language model".into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config_path: Some(run_dir.join("config.toml")),
        status: if summary.interrupted {
            "stopped at train.max_steps (continue with --resume)".into()
        } else if summary.stopped_early {
            "stopped early (no validation improvement)".into()
        } else {
            "finished".into()
        },
        loss_name: loss_name.into(),
        best_val: summary.best_val,
        epochs: summary.epochs,
        steps: summary.steps,
        wall_seconds: seconds,
        throughput: Some(
            data.train.len() as f64 * (summary.epochs.max(1)) as f64 / seconds.max(1e-9),
        ),
        throughput_unit: "tokens/s (training epochs over wall time)".into(),
        clip_rate: Some(summary.clip_rate),
        skipped: summary.skipped,
        ..Default::default()
    };
    if let Some((best, _)) = summary.best_val {
        report.test_metrics.push((
            "best validation bits/token".into(),
            format!("{:.3}", best / std::f64::consts::LN_2),
        ));
        report.test_metrics.push((
            "best validation perplexity".into(),
            format!("{:.2}", best.exp()),
        ));
    }
    if cfg.output.sample_length > 0 {
        let sample = sample_text(
            &trainer.model,
            &pipeline,
            &cfg.output,
            cfg.train.seed,
            quiet,
        )
        .context("generating the sample")?;
        std::fs::write(run_dir.join("sample.txt"), &sample)
            .with_context(|| format!("writing {}", run_dir.join("sample.txt").display()))?;
        report.samples.push((
            format!(
                "sample (prompt {:?}, temperature {})",
                cfg.output.sample_prompt, cfg.output.sample_temperature
            ),
            sample,
        ));
    }
    let report_path = crate::run_report::write_report_md(run_dir, &report)?;
    if !quiet {
        if let Some((best, epoch)) = summary.best_val {
            eprintln!(
                "best validation loss {best:.4} nats/token ({:.3} bits) at epoch {}; {} steps in {seconds:.1} s; clip rate {:.1}%",
                best / std::f64::consts::LN_2,
                epoch + 1,
                summary.steps,
                100.0 * summary.clip_rate
            );
        }
        eprintln!(
            "weights {}\nmetrics {}\nplots {}\nreport {}",
            run_dir.join("checkpoints/best.safetensors").display(),
            run_dir.join("metrics").display(),
            plots
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            report_path.display()
        );
    }
    Ok(())
}

/// Generates `output.sample_length` tokens after the prompt with the trained model, streaming
/// them to stderr as they come (unless quiet); returns prompt + generated text.
fn sample_text(
    model: &LanguageModel,
    pipeline: &TextPipeline,
    out: &crate::train_config::OutputSection,
    seed: u64,
    quiet: bool,
) -> Result<String> {
    use rnnkit::train::generate::{Generator, SamplingConfig};
    use std::io::Write;
    let config = SamplingConfig {
        temperature: out.sample_temperature,
        seed,
        max_tokens: out.sample_length,
        ..Default::default()
    };
    let mut generator = Generator::new(model, config)?;
    let prompt = pipeline.encode(&out.sample_prompt)?;
    generator.prime(&prompt)?;
    let mut text = out.sample_prompt.clone();
    if !quiet {
        eprint!("\n--- sample ---\n{text}");
    }
    let mut failed = None;
    generator.generate(out.sample_length, |id| match pipeline.decode(&[id]) {
        Ok(piece) => {
            if !quiet {
                eprint!("{piece}");
                let _ = std::io::stderr().flush();
            }
            text.push_str(&piece);
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if !quiet {
        eprintln!("\n--------------");
    }
    Ok(text)
}

/// A relative path that does not exist from the working directory is looked up in the
/// repository the binary was built from, so the bundled data is found from anywhere.
fn bundled_or_given(path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let candidate = repo.join(path);
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}

/// `YYYY-MM-DDTHH-MM-SS` (UTC) for run directory names.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_nested_keys_and_bare_strings() {
        let cfg = parse_config(
            "[model]\nhidden_size = 32\n",
            "t.toml",
            &[
                "train.epochs=2".into(),
                "data.path=other.txt".into(),
                "train.optimizer.lr=0.01".into(),
                "model.cell=\"gru\"".into(),
            ],
        )
        .unwrap();
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(cfg.data.path, PathBuf::from("other.txt"));
        assert_eq!(cfg.model.hidden_size, 32);
        assert_eq!(cfg.model.cell, rnnkit::CellKind::Gru);
        assert!((cfg.train.optimizer.lr() - 0.01).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_key_and_the_place() {
        let err = parse_config("[model]\nhiden_size = 3\n", "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml") && err.contains("hiden_size"),
            "{err}"
        );
        let err = parse_config("[model\n", "t.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let err = parse_config("", "t.toml", &["train.epochs".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn timestamps_look_like_dates() {
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
