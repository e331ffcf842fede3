//! `rnnkit train` with `task = "classify"`: labelled texts → stratified train/valid/test split
//! → text pipeline fitted on the training texts → length-bucketed padded batches →
//! embedding + recurrent stack + linear head → test accuracy, macro-F1 and a confusion matrix.
//!
//! Beside the common run files it writes `text.json` (tokenizer and vocabulary),
//! `classes.json` (class names in id order), `split.tsv` (split, class, text per line, so a peer
//! can train on exactly the same examples), `metrics.json` and `plots/confusion.png`.

use crate::run_config::usage;
use crate::seq_config::ClassifyFile;
use anyhow::{Context, Result};
use rnnkit::data::Batches;
use rnnkit::data::batch::ClassBatches;
use rnnkit::data::batch::{BatcherConfig, Example, PadConfig, stratified_split};
use rnnkit::data::text::labelled::LabelledTexts;
use rnnkit::data::text::{TableConfig, TextPipeline};
use rnnkit::models::{InputSpec, SequenceClassifier};
use rnnkit::module;
use rnnkit::train::confusion::ConfusionMatrix;
use std::io::Write;
use std::path::Path;

/// The classifier a config describes, with fresh weights.
pub fn build_model(cfg: &ClassifyFile, vocab: usize, classes: usize) -> Result<SequenceClassifier> {
    let spec = InputSpec::Tokens {
        vocab,
        padding_idx: Some(0),
    };
    Ok(SequenceClassifier::new(
        spec,
        cfg.model.rnn(),
        classes,
        cfg.model.pooling,
        cfg.train.seed,
    )?)
}

/// The table columns a config names.
pub fn table_config(cfg: &ClassifyFile) -> TableConfig {
    TableConfig {
        text_column: cfg.data.text_column.clone(),
        label_column: Some(cfg.data.label_column.clone()),
        ..Default::default()
    }
}

/// Labelled texts as examples, tokenized by `text`.
pub fn examples(text: &TextPipeline, data: &LabelledTexts, idx: &[usize]) -> Result<Vec<Example>> {
    idx.iter()
        .map(|&k| {
            let mut ids = text.encode(&data.texts[k])?;
            if ids.is_empty() {
                // An example the cleaning emptied still needs one step; `<unk>` says nothing.
                ids.push(1);
            }
            Ok(Example::class(ids, data.labels[k]))
        })
        .collect()
}

/// Trains (or resumes) the classifier of `cfg` in `run_dir`.
pub fn train(
    cfg: &ClassifyFile,
    run_dir: &Path,
    resuming: bool,
    quiet: bool,
    threads: usize,
) -> Result<()> {
    let (v, t) = (cfg.data.valid_fraction, cfg.data.test_fraction);
    if !(v > 0.0 && t >= 0.0 && v + t < 1.0) {
        return Err(usage(format!(
            "data.valid_fraction = {v} and data.test_fraction = {t}: need valid_fraction > 0, \
             test_fraction ≥ 0 and their sum below 1"
        )));
    }
    cfg.train
        .validate()
        .map_err(|e| usage(format!("[train]: {e}")))?;
    let path = crate::train_cmd::bundled_or_given(&cfg.data.path);
    let data = LabelledTexts::load(&path, &table_config(cfg), None).with_context(|| {
        format!(
            "reading the labelled texts (data.path = {})",
            cfg.data.path.display()
        )
    })?;
    if data.classes.len() < 2 {
        return Err(usage(format!(
            "{}: one class ({}) only; a classifier needs at least two",
            path.display(),
            data.classes.join("")
        )));
    }
    let parts = stratified_split(&data.labels, &[1.0 - v - t, v, t], cfg.train.seed)?;
    let (tr, va, te) = (&parts[0], &parts[1], &parts[2]);
    let text_path = run_dir.join("text.json");
    let text = if resuming {
        TextPipeline::load(&text_path)?
    } else {
        let train_texts: Vec<&str> = tr.iter().map(|&k| data.texts[k].as_str()).collect();
        let text = TextPipeline::fit(&train_texts, &cfg.data.text)?;
        text.save(&text_path)?;
        write_split(run_dir, &data, [("train", tr), ("valid", va), ("test", te)])?;
        std::fs::write(
            run_dir.join("classes.json"),
            serde_json::to_string_pretty(&data.classes)? + "\n",
        )?;
        text
    };
    let pad = PadConfig::default();
    let batching = BatcherConfig {
        batch_size: cfg.train.batch_size,
        bucket_size: cfg.data.bucket_size,
        seed: cfg.train.seed,
        ..Default::default()
    };
    let eval = cfg.train.eval_batch_size;
    let train_set = ClassBatches::new(examples(&text, &data, tr)?, batching, pad.clone())?;
    let valid_set = ClassBatches::in_order(examples(&text, &data, va)?, eval, pad.clone())?;
    let test_set = if te.is_empty() {
        None
    } else {
        Some(ClassBatches::in_order(
            examples(&text, &data, te)?,
            eval,
            pad,
        )?)
    };
    let vocab = text.vocab().len();
    let k = data.classes.len();
    if !quiet {
        eprintln!(
            "data {}: {} examples in {k} classes, train {} / valid {} / test {}, vocabulary \
             {vocab}; padding with bucketing {:.1}%\nmodel {} {}x{} (embedding {}{}, pooling {}); \
             {threads} threads\nrun directory {}",
            path.display(),
            data.len(),
            tr.len(),
            va.len(),
            te.len(),
            100.0 * train_set.padding_fraction(0),
            cfg.model.cell,
            cfg.model.num_layers,
            cfg.model.hidden_size,
            cfg.model.embedding_size,
            if cfg.model.bidirectional {
                ", bidirectional"
            } else {
                ""
            },
            format!("{:?}", cfg.model.pooling).to_lowercase(),
            run_dir.display()
        );
    }

    let model = build_model(cfg, vocab, k)?;
    let place = crate::seq_run::RunPlace {
        dir: run_dir,
        resuming,
        quiet,
    };
    let data_sets = crate::seq_run::SeqData {
        train: &train_set,
        valid: &valid_set,
        test: test_set.as_ref().map(|t| t as &dyn Batches<Batch = _>),
    };
    let crate::seq_run::Fitted {
        trainer,
        summary,
        seconds,
    } = crate::seq_run::fit(model, &cfg.train, &place, data_sets)?;
    crate::run_files::save_model(
        run_dir,
        module::named_tensors(trainer.model(), ""),
        "classify",
    )?;

    let loss_name = "cross-entropy (nats/example)";
    let mut plots = crate::run_report::write_plots(
        run_dir,
        cfg.train.clip_norm.map(f64::from),
        loss_name,
        None,
    )
    .context("drawing the plots")?;
    plots.extend(crate::run_report::write_diagnostics_plot(run_dir)?);
    let mut report = crate::run_report::ReportSummary {
        task: format!("classify ({k} classes)"),
        loss_name: loss_name.into(),
        throughput: Some(tr.len() as f64 * summary.epochs.max(1) as f64 / seconds.max(1e-9)),
        throughput_unit: "examples/s (training epochs over wall time)".into(),
        ..crate::train_cmd::report_base(run_dir, &summary_status(&summary, run_dir), seconds)
    };
    report.best_val = summary.best_val;
    report.epochs = summary.epochs;
    report.steps = summary.steps;
    report.clip_rate = cfg.train.clip_norm.map(|_| summary.clip_rate);
    report.skipped = summary.skipped;
    report.training_seconds = Some(summary.train_seconds);
    if let Some(test_set) = &test_set {
        let batches = test_set.epoch(0)?;
        let m = ConfusionMatrix::of_classifier(trainer.model(), &batches)?;
        let test_loss = summary.test.map_or(f64::NAN, |e| e.loss);
        for (name, value) in [
            ("test accuracy", format!("{:.4}", m.accuracy())),
            ("test macro-F1", format!("{:.4}", m.macro_f1())),
            ("test loss (nats)", format!("{test_loss:.4}")),
            ("test examples", m.total().to_string()),
        ] {
            report.test_metrics.push((name.into(), value));
        }
        #[cfg(feature = "plot")]
        let png = run_dir.join("plots/confusion.png");
        #[cfg(feature = "plot")]
        rnnkit::plot::ConfusionMatrixChart::new(
            format!(
                "test split: accuracy {:.3}, macro-F1 {:.3} (rows: true class, row-normalized)",
                m.accuracy(),
                m.macro_f1()
            ),
            &m.counts,
            &data.classes,
        )
        .normalize(true)
        .size(1100, 800)
        .save_png(&png)
        .context("drawing the confusion matrix")?;
        #[cfg(feature = "plot")]
        plots.push(png);
        let metrics = serde_json::json!({
            "accuracy": m.accuracy(), "macro_f1": m.macro_f1(), "test_loss": test_loss,
            "test_examples": m.total(), "best_val": summary.best_val, "epochs": summary.epochs,
            "seconds": seconds, "classes": &data.classes,
            "f1_per_class": data.classes.iter().enumerate().map(|(c, n)| (n.clone(), m.f1(c)))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "confusion": &m.counts,
        });
        std::fs::write(run_dir.join("metrics.json"), format!("{metrics:#}\n"))?;
        if !quiet {
            eprintln!(
                "test: accuracy {:.4}, macro-F1 {:.4}, loss {test_loss:.4} ({} examples)",
                m.accuracy(),
                m.macro_f1(),
                m.total()
            );
        }
    }
    let report_path = crate::run_report::write_report_md(run_dir, &report)?;
    if !quiet {
        crate::train_cmd::print_outputs(run_dir, &summary.best_val, &plots, &report_path);
    }
    Ok(())
}

/// How the run ended, for the report.
pub fn summary_status(s: &rnnkit::train::RunSummary, run_dir: &Path) -> String {
    if s.interrupted {
        crate::interrupt::interrupted_status(run_dir)
    } else if s.stopped_early {
        "stopped early (no validation improvement)".into()
    } else {
        "finished".into()
    }
}

/// `split.tsv`: split, class and text of every example, one per line.
fn write_split(
    run_dir: &Path,
    data: &LabelledTexts,
    parts: [(&str, &Vec<usize>); 3],
) -> Result<()> {
    let path = run_dir.join("split.tsv");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?,
    );
    for (split, idx) in parts {
        for &k in idx {
            let text = data.texts[k].replace(['\t', '\n'], " ");
            writeln!(f, "{split}\t{}\t{text}", data.classes[data.labels[k]])?;
        }
    }
    f.flush()?;
    Ok(())
}

/// A trained classifier with what it needs to read new text.
pub struct LoadedClassifier {
    /// The run's config.
    pub config: ClassifyFile,
    /// Its tokenizer and vocabulary.
    pub text: TextPipeline,
    /// Class names in id order.
    pub classes: Vec<String>,
    /// The model with the run's best weights (the latest with `latest`).
    pub model: SequenceClassifier,
}

/// Loads the classifier of a `task = "classify"` run directory.
pub fn load(run_dir: &Path, config: ClassifyFile, latest: bool) -> Result<LoadedClassifier> {
    let text = TextPipeline::load(&run_dir.join("text.json"))?;
    let path = run_dir.join("classes.json");
    let classes: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("reading {}", path.display()))?;
    let mut model = build_model(&config, text.vocab().len(), classes.len())?;
    let tensors = crate::run_files::model_tensors(run_dir, latest)?;
    rnnkit::module::load_named(&mut model, "", &tensors)
        .with_context(|| format!("loading the weights of {}", run_dir.display()))?;
    Ok(LoadedClassifier {
        config,
        text,
        classes,
        model,
    })
}

impl LoadedClassifier {
    /// Class probabilities `[N, C]` of `texts`, in their order.
    pub fn probabilities(&self, texts: &[String]) -> Result<ndarray::Array2<f32>> {
        let data = LabelledTexts {
            texts: texts.to_vec(),
            labels: vec![0; texts.len()],
            classes: self.classes.clone(),
        };
        let idx: Vec<usize> = (0..texts.len()).collect();
        let batches = ClassBatches::in_order(
            examples(&self.text, &data, &idx)?,
            self.config.train.eval_batch_size,
            PadConfig::default(),
        )?;
        let mut out = ndarray::Array2::zeros((texts.len(), self.classes.len()));
        for b in batches.epoch(0)? {
            let logits = self.model.predict(
                rnnkit::models::SeqInput::Tokens(b.ids.view()),
                Some(&b.lengths),
            )?;
            for (row, &k) in logits.rows().into_iter().zip(&b.indices) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = row.iter().map(|&z| (z - max).exp()).collect();
                let sum: f32 = e.iter().sum();
                for (c, v) in e.iter().enumerate() {
                    out[[k, c]] = v / sum;
                }
            }
        }
        Ok(out)
    }
}
