//! `rnnkit evaluate --model RUN_DIR [--data PATH]`: a trained run's metrics on new data, or on
//! the run's own held-out split when no data is given, prepared with the run's saved tokenizer
//! or scaler.
//!
//! With `--outputs FILE.safetensors` it also writes a fixed batch of inputs and the model's
//! raw outputs (language model: `input_ids` `[T, 1]` i64 and `logits` `[T, 1, V]`; classifier:
//! `input_ids` `[T, B]`, `lengths` `[B]` and `logits` `[B, C]`; forecaster: `inputs`
//! `[L, B, F]` and `forecasts` `[B, H, K]` in scaled units), which `tools/torch_load_run.py`
//! reproduces in PyTorch from `model.safetensors`.

use crate::run_config::{RunConfig, load_run_config, usage};
use anyhow::{Context, Result};
use ndarray::{Array2, ArrayD, Axis};
use rnnkit::data::Batches;
use rnnkit::data::batch::ClassBatches;
use rnnkit::data::stream::StreamBatches;
use rnnkit::data::text::labelled::LabelledTexts;
use rnnkit::io::TensorFile;
use rnnkit::run::{RunDir, Weights};
use rnnkit::tasks::classify::LoadedClassifier;
use rnnkit::train::confusion::{ConfusionMatrix, argmax};
use serde_json::json;
use std::path::{Path, PathBuf};

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
}

/// Examples (tokens, windows) written with `--outputs`.
const OUTPUT_BATCH: usize = 64;
/// Tokens of a language model's `--outputs`.
const OUTPUT_TOKENS: usize = 256;

/// Runs the command.
pub fn run(args: EvaluateArgs) -> Result<()> {
    let metrics = match load_run_config(&args.model)? {
        RunConfig::Lm(cfg) => evaluate_lm(&args, &cfg)?,
        RunConfig::Classify(cfg) => evaluate_classifier(&args, cfg)?,
        RunConfig::Forecast(cfg) => evaluate_forecaster(&args, cfg)?,
        RunConfig::Synthetic(_) => {
            return Err(usage(format!(
                "{}: a synthetic task run; its test score is in metrics.json and report.md \
                 (the data is generated from the config's seed, so there is no file to evaluate)",
                args.model.display()
            )));
        }
    };
    let text = if args.json {
        format!("{metrics}\n")
    } else {
        let mut text = String::new();
        print_lines(&metrics, "", &mut text);
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

fn evaluate_lm(
    args: &EvaluateArgs,
    cfg: &rnnkit::tasks::lm::LmConfig,
) -> Result<serde_json::Value> {
    let run = RunDir::open(&args.model)?;
    let (model, pipeline) = rnnkit::tasks::lm::load(&run, cfg, Weights::latest_if(args.latest))?;
    let (text, source) = match &args.data {
        Some(p) => (
            rnnkit::data::text::load::read_text(p)?,
            p.display().to_string(),
        ),
        None => rnnkit::tasks::lm::validation_text(cfg)?,
    };
    let stream = pipeline.encode_stream(&[text.as_str()], cfg.data.eos_per_line)?;
    if stream.len() < 2 {
        return Err(usage(format!("{source}: fewer than two tokens to score")));
    }
    if let Some(out) = &args.outputs {
        let n = stream.len().min(OUTPUT_TOKENS);
        let x = Array2::from_shape_vec((n, 1), stream[..n].to_vec()).expect("n × 1");
        let logits = model.logits(x.view(), None)?;
        let mut file = TensorFile::default();
        file.i64
            .insert("input_ids".into(), x.mapv(i64::from).into_dyn());
        file.f32.insert("logits".into(), logits.into_dyn());
        write_outputs(file, "lm", out)?;
    }
    // The training run's evaluation layout; a stream too short for `eval_batch_size` columns
    // of at least two tokens is scored in fewer columns rather than refused.
    let columns = cfg.train.eval_batch_size.min(stream.len() / 2).max(1);
    let batches = StreamBatches::fixed(&stream, columns, cfg.train.bptt)?;
    let loss = rnnkit::train::evaluate(&model, &batches)?.loss;
    Ok(json!({
        "task": "lm", "data": source, "tokens": stream.len(),
        "loss_nats_per_token": loss, "bits_per_token": loss / std::f64::consts::LN_2,
        "perplexity": loss.exp(),
    }))
}

fn evaluate_classifier(
    args: &EvaluateArgs,
    cfg: rnnkit::tasks::classify::ClassifyConfig,
) -> Result<serde_json::Value> {
    let table = cfg.table();
    let loaded = LoadedClassifier::load(
        &RunDir::open(&args.model)?,
        cfg,
        Weights::latest_if(args.latest),
    )?;
    let (data, source) = match &args.data {
        Some(p) => (
            LabelledTexts::load(p, &table, Some(&loaded.classes))?,
            p.display().to_string(),
        ),
        None => (
            test_split(&args.model, &loaded.classes)?,
            "the run's test split".into(),
        ),
    };
    let probs = loaded.probabilities(&data.texts)?;
    let mut m = ConfusionMatrix::new(loaded.classes.len());
    let mut nll = 0.0f64;
    for (row, &y) in probs.rows().into_iter().zip(&data.labels) {
        m.add(y, argmax(row.iter().copied()));
        nll -= f64::from(row[y].max(f32::MIN_POSITIVE)).ln();
    }
    if let Some(out) = &args.outputs {
        let n = data.len().min(OUTPUT_BATCH);
        let idx: Vec<usize> = (0..n).collect();
        let batches = ClassBatches::in_order(
            rnnkit::tasks::classify::examples(&loaded.text, &data, &idx)?,
            OUTPUT_BATCH,
            rnnkit::data::batch::PadConfig::default(),
        )?;
        let b = batches.epoch(0)?.remove(0);
        let logits = loaded.model.predict(
            rnnkit::models::SeqInput::Tokens(b.ids.view()),
            Some(&b.lengths),
        )?;
        let mut file = TensorFile::default();
        file.i64
            .insert("input_ids".into(), b.ids.mapv(i64::from).into_dyn());
        let lengths: Vec<i64> = b.lengths.iter().map(|&l| l as i64).collect();
        file.i64.insert(
            "lengths".into(),
            ArrayD::from_shape_vec(vec![lengths.len()], lengths)?,
        );
        file.f32.insert("logits".into(), logits.into_dyn());
        write_outputs(file, "classify", out)?;
    }
    Ok(json!({
        "task": "classify", "data": source, "examples": data.len(),
        "accuracy": m.accuracy(), "macro_f1": m.macro_f1(),
        "loss_nats_per_example": nll / data.len().max(1) as f64,
        "f1_per_class": loaded.classes.iter().enumerate().map(|(c, n)| (n.clone(), m.f1(c)))
            .collect::<std::collections::BTreeMap<_, _>>(),
    }))
}

/// The `test` lines of the run's `split.tsv`.
fn test_split(dir: &Path, classes: &[String]) -> Result<LabelledTexts> {
    let path = dir.join("split.tsv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let docs: Vec<rnnkit::data::text::Document> = text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let mut f = line.splitn(3, '\t');
            match (f.next(), f.next(), f.next()) {
                (Some("test"), Some(label), Some(t)) => Some(rnnkit::data::text::Document {
                    text: t.to_string(),
                    label: Some(label.to_string()),
                    path: path.display().to_string(),
                    line: Some(i + 1),
                }),
                _ => None,
            }
        })
        .collect();
    if docs.is_empty() {
        return Err(usage(format!(
            "{}: no test examples (data.test_fraction was 0?); give --data",
            path.display()
        )));
    }
    Ok(LabelledTexts::from_documents(
        docs,
        Some(classes),
        &path.display().to_string(),
    )?)
}

fn evaluate_forecaster(
    args: &EvaluateArgs,
    cfg: rnnkit::tasks::forecast::ForecastConfig,
) -> Result<serde_json::Value> {
    let mut series = cfg.data.clone();
    series.path = rnnkit::tasks::bundled_or_given(&cfg.data.path);
    let batch = cfg.train.eval_batch_size;
    let loaded = rnnkit::tasks::forecast::LoadedForecaster::load(
        &RunDir::open(&args.model)?,
        &cfg,
        Weights::latest_if(args.latest),
    )?;
    let (data, source) = match &args.data {
        Some(p) => (loaded.prepare(p)?, p.display().to_string()),
        None => (
            rnnkit::data::series::SeriesData::load(&series)?,
            format!("the test split of {}", series.path.display()),
        ),
    };
    let windows = &data.test;
    let s = rnnkit::tasks::forecast::score_windows(&loaded.model, &data, windows, batch)?;
    if let Some(out) = &args.outputs {
        let n = windows.len().min(OUTPUT_BATCH);
        let idx: Vec<usize> = (0..n).collect();
        let b = windows.batch(&idx)?;
        let pred = loaded.model.predict(b.inputs.view(), None)?;
        let mut file = TensorFile::default();
        file.f32.insert("inputs".into(), b.inputs.into_dyn());
        file.f32.insert("forecasts".into(), pred.into_dyn());
        write_outputs(file, "forecast", out)?;
    }
    let h = s.forecast.len_of(Axis(1));
    Ok(json!({
        "task": "forecast", "data": source, "windows": windows.len(), "horizon": h,
        "rmse": s.model.rmse, "mae": s.model.mae,
        "naive_rmse": s.baselines.naive.rmse, "naive_mae": s.baselines.naive.mae,
        "seasonal_naive_rmse": s.baselines.seasonal_naive.map(|b| b.rmse),
        "seasonal_naive_mae": s.baselines.seasonal_naive.map(|b| b.mae),
    }))
}

fn write_outputs(mut file: TensorFile, task: &str, path: &Path) -> Result<()> {
    file.metadata.insert("rnnkit_task".into(), task.into());
    file.write(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
