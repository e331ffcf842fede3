//! `rnnkit train`: config → data → model → trainer → run directory. With no arguments it trains
//! the bundled default (a character LSTM on the bundled Tiny Shakespeare text).
//!
//! The run directory (`runs/<name or timestamp>/`) gets the resolved `config.toml`, the text
//! pipeline (`text.json`: cleaning, tokenizer, vocabulary), `metrics/`, `checkpoints/`
//! (`latest`, `best`), `plots/`, `report.md` and a generated sample.

use crate::run_config::{RunConfig, parse_any, usage};
use crate::train_config::TrainFile;
use anyhow::{Context, Result};
use rnnkit::data::stream::{ChunkLength, StreamBatches};
use rnnkit::data::text::TextPipeline;
use rnnkit::models::LanguageModel;
use rnnkit::module;
use rnnkit::train::Trainer;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
            let cfg = parse_any(&text, &path.display().to_string(), &args.set)?;
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
            let cfg = parse_any(&text, &source, &args.set)?;
            let (parent, name, _) = cfg.output();
            let name = if name.is_empty() {
                timestamp()
            } else {
                name.to_string()
            };
            let dir = parent.join(name);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the run directory {}", dir.display()))?;
            (cfg, dir, false)
        }
    };
    if !resuming {
        let resolved = format!(
            "# Rerun with: rnnkit train --config {}\n{}",
            run_dir.join("config.toml").display(),
            cfg.resolved_toml().context("writing the resolved config")?
        );
        std::fs::write(run_dir.join("config.toml"), resolved)
            .with_context(|| format!("writing {}", run_dir.join("config.toml").display()))?;
    }
    let threads = match cfg.output().2 {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let pool = rayon_pool(threads)?;
    let quiet = args.quiet;
    pool.install(|| match &cfg {
        RunConfig::Lm(c) => train(c, &run_dir, resuming, quiet, threads),
        RunConfig::Classify(c) => {
            crate::classify_train::train(c, &run_dir, resuming, quiet, threads)
        }
        RunConfig::Forecast(c) => {
            crate::forecast_train::train(c, &run_dir, resuming, quiet, threads)
        }
        RunConfig::Synthetic(c) => {
            crate::synthetic_train::train(c, &run_dir, resuming, quiet, threads)
        }
    })
}

pub fn rayon_pool(threads: usize) -> Result<rayon::ThreadPool> {
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
    // Data: the last `valid_fraction` of the text is validation; the pipeline is fitted on the
    // training part only and saved, so generation tokenizes exactly as training did.
    let data_path = bundled_or_given(&cfg.data.path);
    let text = rnnkit::data::text::load::read_text(&data_path).with_context(|| {
        format!(
            "reading the training text (data.path = {})",
            cfg.data.path.display()
        )
    })?;
    // With separate validation (and test) files (PTB, WikiText-2) the whole file trains;
    // otherwise its last `valid_fraction` is validation.
    let read_split = |p: &Path, key: &str| -> Result<String> {
        rnnkit::data::text::load::read_text(&bundled_or_given(p))
            .with_context(|| format!("reading {key} = {}", p.display()))
    };
    let (valid_owned, test_owned) = match &cfg.data.valid_path {
        Some(v) => (
            Some(read_split(v, "data.valid_path")?),
            cfg.data
                .test_path
                .as_ref()
                .map(|t| read_split(t, "data.test_path"))
                .transpose()?,
        ),
        None => (None, None),
    };
    let (train_text, valid_text) = match &valid_owned {
        Some(v) => (text.as_str(), v.as_str()),
        None => {
            let f = cfg.data.valid_fraction;
            if !(f > 0.0 && f < 1.0) {
                return Err(usage(format!(
                    "data.valid_fraction must be in (0, 1), got {f}"
                )));
            }
            split_text(&text, f)
        }
    };
    let pipeline_path = run_dir.join("text.json");
    let pipeline = if resuming {
        TextPipeline::load(&pipeline_path)?
    } else {
        let p = TextPipeline::fit(&[train_text], &cfg.data.text)?;
        p.save(&pipeline_path)?;
        p
    };
    let eos = cfg.data.eos_per_line;
    let train_ids = pipeline.encode_stream(&[train_text], eos)?;
    let valid_ids = pipeline.encode_stream(&[valid_text], eos)?;
    let t = &cfg.train;
    let (eval_b, bptt) = (t.eval_batch_size, ChunkLength::Fixed(t.bptt));
    let train = stream(
        "training",
        &train_ids,
        t.batch_size,
        t.chunk_length(),
        t.seed,
    )?;
    let valid = stream("validation", &valid_ids, eval_b, bptt, 0)?;
    let test = match test_owned.as_deref() {
        Some(text) => {
            let ids = pipeline.encode_stream(&[text], eos)?;
            Some(stream("test", &ids, eval_b, bptt, 0)?)
        }
        None => None,
    };
    let vocab = pipeline.vocab().len();
    if !quiet {
        eprintln!(
            "data {}: {} tokens train / {} valid, vocabulary {vocab}; model {} {}x{} (embedding {}); \
             {threads} threads\nrun directory {}",
            data_path.display(),
            train_ids.len(),
            valid_ids.len(),
            cfg.model.cell,
            cfg.model.num_layers,
            cfg.model.hidden_size,
            cfg.model.embedding_size,
            run_dir.display()
        );
    }

    let checkpoint = run_dir.join("checkpoints/latest.safetensors");
    let mut model = LanguageModel::new(vocab, cfg.model.rnn(), cfg.train.seed)?;
    if let (Some(a), false) = (cfg.model.init_range, resuming) {
        model = uniform_init(&model, cfg, a)?;
    }
    model
        .set_dropout(cfg.model.lm_dropout)
        .context("model.lm_dropout")?;
    if cfg.model.tie_weights {
        model.tie().context("model.tie_weights")?;
    }
    let mut trainer = if resuming {
        Trainer::resume(
            model,
            &checkpoint,
            Some(cfg.train.clone()),
            Some(run_dir.to_path_buf()),
        )
        .with_context(|| format!("resuming from {}", checkpoint.display()))?
    } else {
        Trainer::new(model, cfg.train.clone(), Some(run_dir.to_path_buf()))?
    };
    let started = Instant::now();
    let mut reporter = crate::progress::Progress::new(cfg.train.epochs, "tok", quiet);
    crate::interrupt::stop_on_signal(trainer.stop_signal());
    let summary = trainer.run(&train, &valid, test.as_ref().map(|t| t as _), &mut reporter)?;
    let seconds = started.elapsed().as_secs_f64();
    crate::run_files::save_model(run_dir, module::named_tensors(trainer.model(), ""), "lm")?;
    let loss_name = "cross-entropy (nats/token)";
    let status = if summary.interrupted {
        crate::interrupt::interrupted_status(run_dir)
    } else if summary.stopped_early {
        "stopped early (no validation improvement)".into()
    } else {
        "finished".into()
    };
    let plots = crate::run_report::write_plots(
        run_dir,
        cfg.train.clip_norm.map(f64::from),
        loss_name,
        None,
    )
    .context("drawing the plots")?;
    let mut plots = plots;
    plots.extend(crate::run_report::write_diagnostics_plot(run_dir)?);
    let mut report = crate::run_report::ReportSummary {
        task: "language model".into(),
        loss_name: loss_name.into(),
        best_val: summary.best_val,
        epochs: summary.epochs,
        steps: summary.steps,
        throughput: Some(reporter.run_units() as f64 / seconds.max(1e-9)),
        throughput_unit: "tokens/s (tokens trained on in this run over its wall time)".into(),
        clip_rate: Some(summary.clip_rate),
        skipped: summary.skipped,
        training_seconds: Some(summary.train_seconds),
        ..report_base(run_dir, &status, seconds)
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
    if let Some(test) = summary.test.map(|t| t.loss) {
        report
            .test_metrics
            .push(("test loss (nats/token)".into(), format!("{test:.4}")));
        report
            .test_metrics
            .push(("test perplexity".into(), format!("{:.2}", test.exp())));
        if !quiet {
            eprintln!(
                "test loss {test:.4} nats/token, perplexity {:.2}",
                test.exp()
            );
        }
    }
    if cfg.output.sample_length > 0 {
        let sample = sample_text(
            trainer.model(),
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
        if resuming {
            eprintln!("{:.1} s of training in all sittings", summary.train_seconds);
        }
        if summary.interrupted {
            eprintln!("{status}");
        }
        print_outputs(run_dir, &None, &plots, &report_path);
    }
    Ok(())
}

/// The model with every parameter drawn from U(−a, a) (Zaremba et al.: 0.1 small, 0.05
/// medium), seeded by `train.seed`.
fn uniform_init(model: &LanguageModel, cfg: &TrainFile, a: f32) -> Result<LanguageModel> {
    use rand::{Rng, SeedableRng};
    // The range's width 2a must be finite for the sampler.
    if !(a > 0.0 && a <= f32::MAX / 2.0) {
        return Err(usage(format!(
            "model.init_range must be positive and at most {:e} (Zaremba et al. use 0.1 and \
             0.05), got {a}",
            f32::MAX / 2.0
        )));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let mut tensors = module::named_tensors(model, "");
    for t in tensors.values_mut() {
        t.mapv_inplace(|_| rng.random_range(-a..a));
    }
    Ok(LanguageModel::from_named(cfg.model.rnn(), &tensors)?)
}

/// The truncated-BPTT layout of one split's token stream, or an error naming the split when it
/// is too short for `batch` parallel streams.
fn stream(
    split: &str,
    ids: &[u32],
    batch: usize,
    length: ChunkLength,
    seed: u64,
) -> Result<StreamBatches> {
    let what = if split == "training" {
        "train.batch_size"
    } else {
        "train.eval_batch_size"
    };
    if ids.len() < 2 * batch.max(1) {
        return Err(usage(format!(
            "the {split} split has {} tokens, too few for {what} {batch} (need at least {}): \
             lower {what} or give a longer {split} text",
            ids.len(),
            2 * batch
        )));
    }
    Ok(StreamBatches::new(ids, batch, length, seed)?)
}

/// The parts of a run's report every task fills the same way.
pub fn report_base(run_dir: &Path, status: &str, seconds: f64) -> crate::run_report::ReportSummary {
    crate::run_report::ReportSummary {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config_path: Some(run_dir.join("config.toml")),
        status: status.into(),
        wall_seconds: seconds,
        ..Default::default()
    }
}

/// Prints where a finished run put its files.
pub fn print_outputs(
    run_dir: &Path,
    best_val: &Option<(f64, usize)>,
    plots: &[PathBuf],
    report: &Path,
) {
    if let Some((best, epoch)) = best_val {
        eprintln!("best validation loss {best:.4} at epoch {}", epoch + 1);
    }
    let plots = if cfg!(feature = "plot") {
        plots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        "none (this rnnkit was built without the `plot` feature)".to_string()
    };
    eprintln!(
        "weights {}\nmetrics {}\nplots {plots}\nreport {}",
        run_dir.join("model.safetensors").display(),
        run_dir.join("metrics").display(),
        report.display()
    );
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
    use rnnkit::generate::{Generator, SamplingConfig};
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
    let decoder = pipeline.stream_decoder_after(&prompt)?;
    generator.generate_text(out.sample_length, decoder, |piece| {
        if !quiet {
            eprint!("{piece}");
            let _ = std::io::stderr().flush();
        }
        text.push_str(piece);
        true
    })?;
    if !quiet {
        eprintln!("\n--------------");
    }
    Ok(text)
}

/// A relative path that does not exist from the working directory is looked up in the
/// repository the binary was built from, so the bundled data is found from anywhere.
pub fn bundled_or_given(path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let candidate = repo.join(path);
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}

/// `text` cut before its last `fraction` of characters: (training part, validation part).
pub fn split_text(text: &str, fraction: f64) -> (&str, &str) {
    let n = text.chars().count();
    let cut_char = ((n as f64) * (1.0 - fraction)) as usize;
    let cut = text
        .char_indices()
        .nth(cut_char)
        .map_or(text.len(), |(i, _)| i);
    text.split_at(cut)
}

/// `YYYY-MM-DDTHH-MM-SS` (UTC) for run directory names.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Calendar arithmetic lives in the series code; midnight prints without a time there.
    let text = rnnkit::data::series::format_timestamp(secs);
    let (date, time) = text.split_once(' ').unwrap_or((&text, "00:00:00"));
    format!("{date}T{}", time.replace(':', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_dates() {
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
