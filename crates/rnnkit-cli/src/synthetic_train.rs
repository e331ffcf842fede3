//! `rnnkit train` with `task = "synthetic"`: the built-in long-memory tasks (adding problem,
//! copy memory, temporal order), generated from a seed, trained with the sequence trainer and
//! scored on a held-out draw against the task's memoryless baseline.
//!
//! The model per task: the adding problem is a regression from the last step (a forecaster
//! with one output), copy memory a tagger over tokens (no padding id: token 0 is the blank),
//! temporal order a classifier over tokens.

use crate::run_config::usage;
use crate::seq_config::{SyntheticFile, SyntheticKind};
use anyhow::{Context, Result};
use rnnkit::data::Batches;
use rnnkit::data::batch::ClassBatches;
use rnnkit::data::batch::{BatcherConfig, Example, PadConfig};
use rnnkit::data::synthetic::{AddingProblem, CopyMemory, Splits, TemporalOrder};
use rnnkit::models::TrainStep;
use rnnkit::models::{Forecaster, InputSpec, Pooling, SequenceClassifier, SequenceTagger};
use rnnkit::train::{Evaluation, RunSummary};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The baseline a synthetic task's test loss is compared with, and what it is.
pub fn baseline(cfg: &SyntheticFile) -> (f64, &'static str) {
    let d = &cfg.data;
    match d.kind {
        SyntheticKind::Adding => (AddingProblem::baseline_mse(), "MSE of always predicting 1"),
        SyntheticKind::Copy => (
            copy_task(cfg).baseline_ce(),
            "cross-entropy of blanks, then a uniform guess",
        ),
        SyntheticKind::TemporalOrder => (TemporalOrder::baseline_ce(), "cross-entropy of chance"),
    }
}

fn adding_task(cfg: &SyntheticFile) -> AddingProblem {
    AddingProblem {
        length: cfg.data.length,
        seed: cfg.data.seed,
        ..Default::default()
    }
}

fn copy_task(cfg: &SyntheticFile) -> CopyMemory {
    CopyMemory {
        delay: cfg.data.length,
        seed: cfg.data.seed,
        ..Default::default()
    }
}

fn order_task(cfg: &SyntheticFile) -> TemporalOrder {
    TemporalOrder {
        length: cfg.data.length,
        seed: cfg.data.seed,
        ..Default::default()
    }
}

/// Token-task splits as batch sources: shuffled training batches, in-order evaluation ones.
fn token_batches(
    cfg: &SyntheticFile,
    sets: Splits<Vec<Example>>,
) -> Result<(ClassBatches, ClassBatches, ClassBatches)> {
    let batching = BatcherConfig {
        batch_size: cfg.train.batch_size,
        seed: cfg.train.seed,
        // Every sequence has the same length: nothing to bucket.
        bucket_size: 0,
        ..Default::default()
    };
    let eval = cfg.train.eval_batch_size;
    Ok((
        ClassBatches::new(sets.train, batching, PadConfig::default())?,
        ClassBatches::in_order(sets.val, eval, PadConfig::default())?,
        ClassBatches::in_order(sets.test, eval, PadConfig::default())?,
    ))
}

/// Training, validation and test batch sources.
type Splits3<'a, B> = (
    &'a dyn Batches<Batch = B>,
    &'a dyn Batches<Batch = B>,
    &'a dyn Batches<Batch = B>,
);

/// What a finished synthetic run reports.
struct Outcome {
    summary: RunSummary,
    test: Evaluation,
    seconds: f64,
    examples_per_epoch: usize,
}

/// Trains `model` on the three batch sources; `None` test evaluation is an error (always given).
fn fit<M: TrainStep>(
    cfg: &SyntheticFile,
    model: M,
    run_dir: &Path,
    resuming: bool,
    quiet: bool,
    data: Splits3<'_, M::Batch>,
) -> Result<(M, Outcome)> {
    let place = crate::seq_run::RunPlace {
        dir: run_dir,
        resuming,
        quiet,
    };
    let sets = crate::seq_run::SeqData {
        train: data.0,
        valid: data.1,
        test: Some(data.2),
    };
    let crate::seq_run::Fitted {
        trainer,
        summary,
        seconds,
    } = crate::seq_run::fit(model, &cfg.train, &place, sets)?;
    // The trainer scored the test split at the end of the run (with the best weights).
    let test = match summary.test {
        Some(t) => t,
        None => trainer.evaluate(data.2)?,
    };
    Ok((
        trainer.into_model(),
        Outcome {
            summary,
            test,
            seconds,
            examples_per_epoch: cfg.data.train_size,
        },
    ))
}

/// Trains (or resumes) the synthetic task of `cfg` in `run_dir`.
pub fn train(
    cfg: &SyntheticFile,
    run_dir: &Path,
    resuming: bool,
    quiet: bool,
    threads: usize,
) -> Result<()> {
    cfg.train
        .validate()
        .map_err(|e| usage(format!("[train]: {e}")))?;
    let d = &cfg.data;
    let (train_n, val_n, test_n) = (d.train_size, d.valid_size, d.test_size);
    let m = &cfg.model;
    if !quiet {
        eprintln!(
            "data: {:?} task, length {}, {train_n} train / {val_n} valid / {test_n} test \
             sequences (seed {})\nmodel {} {}x{}; {threads} threads\nrun directory {}",
            d.kind,
            d.length,
            d.seed,
            m.cell,
            m.num_layers,
            m.hidden_size,
            run_dir.display()
        );
    }
    let bad = |e: rnnkit::Error| usage(format!("[data]: {e}"));
    let (outcome, tensors) = match d.kind {
        SyntheticKind::Adding => {
            let sets = adding_task(cfg)
                .splits(train_n, val_n, test_n)
                .map_err(bad)?;
            let train = sets
                .train
                .batches(cfg.train.batch_size, true, cfg.train.seed)?;
            let val = sets.val.batches(cfg.train.eval_batch_size, false, 0)?;
            let test = sets.test.batches(cfg.train.eval_batch_size, false, 0)?;
            let model = Forecaster::new(m.rnn(AddingProblem::FEATURES), 1, 1, cfg.train.seed)?;
            let (model, o) = fit(cfg, model, run_dir, resuming, quiet, (&train, &val, &test))?;
            (o, rnnkit::module::named_tensors(&model, ""))
        }
        SyntheticKind::Copy => {
            let task = copy_task(cfg);
            let sets = task.splits(train_n, val_n, test_n).map_err(bad)?;
            let (train, val, test) = token_batches(cfg, sets)?;
            // Token 0 is the blank, an input like any other: no padding row.
            let spec = InputSpec::Tokens {
                vocab: task.vocab_size(),
                padding_idx: None,
            };
            let model = SequenceTagger::new(
                spec,
                m.rnn(m.embedding_size),
                task.num_tags(),
                cfg.train.seed,
            )?;
            let (model, o) = fit(cfg, model, run_dir, resuming, quiet, (&train, &val, &test))?;
            (o, rnnkit::module::named_tensors(&model, ""))
        }
        SyntheticKind::TemporalOrder => {
            let task = order_task(cfg);
            let sets = task.splits(train_n, val_n, test_n).map_err(bad)?;
            let (train, val, test) = token_batches(cfg, sets)?;
            let spec = InputSpec::Tokens {
                vocab: task.vocab_size(),
                padding_idx: Some(TemporalOrder::PAD as usize),
            };
            let model = SequenceClassifier::new(
                spec,
                m.rnn(m.embedding_size),
                TemporalOrder::NUM_CLASSES,
                Pooling::Last,
                cfg.train.seed,
            )?;
            let (model, o) = fit(cfg, model, run_dir, resuming, quiet, (&train, &val, &test))?;
            (o, rnnkit::module::named_tensors(&model, ""))
        }
    };
    crate::run_files::save_model(run_dir, tensors, "synthetic")?;
    report(cfg, run_dir, &outcome, quiet)
}

fn report(cfg: &SyntheticFile, run_dir: &Path, o: &Outcome, quiet: bool) -> Result<()> {
    let (base, base_what) = baseline(cfg);
    let regression = cfg.data.kind == SyntheticKind::Adding;
    let loss_name = if regression {
        "mean squared error"
    } else {
        "cross-entropy (nats)"
    };
    let mut plots: Vec<PathBuf> = crate::run_report::write_plots(
        run_dir,
        cfg.train.clip_norm.map(f64::from),
        loss_name,
        Some((&format!("baseline: {base_what}"), base)),
    )
    .context("drawing the plots")?;
    plots.extend(crate::run_report::write_diagnostics_plot(run_dir)?);
    let s = &o.summary;
    let mut report = crate::run_report::ReportSummary {
        task: format!("synthetic: {:?}, length {}", cfg.data.kind, cfg.data.length),
        loss_name: loss_name.into(),
        throughput: Some(o.examples_per_epoch as f64 * s.epochs.max(1) as f64 / o.seconds),
        throughput_unit: "sequences/s (training epochs over wall time)".into(),
        best_val: s.best_val,
        epochs: s.epochs,
        steps: s.steps,
        clip_rate: cfg.train.clip_norm.map(|_| s.clip_rate),
        skipped: s.skipped,
        ..crate::train_cmd::report_base(
            run_dir,
            &crate::classify_train::summary_status(s, run_dir),
            o.seconds,
        )
    };
    report
        .test_metrics
        .push((format!("test {loss_name}"), format!("{:.5}", o.test.loss)));
    report
        .test_metrics
        .push((format!("baseline ({base_what})"), format!("{base:.5}")));
    report.test_metrics.push((
        "test loss / baseline".into(),
        format!("{:.4}", o.test.loss / base),
    ));
    if !regression {
        report
            .test_metrics
            .push(("test accuracy".into(), format!("{:.4}", o.test.accuracy)));
    }
    let metrics = json!({
        "kind": cfg.data.kind, "length": cfg.data.length, "test_loss": o.test.loss,
        "baseline": base, "ratio_to_baseline": o.test.loss / base,
        "test_accuracy": (!regression).then_some(o.test.accuracy),
        "best_val": s.best_val, "epochs": s.epochs, "steps": s.steps, "seconds": o.seconds,
    });
    std::fs::write(run_dir.join("metrics.json"), format!("{metrics:#}\n"))?;
    let report_path = crate::run_report::write_report_md(run_dir, &report)?;
    if !quiet {
        eprintln!(
            "test {loss_name} {:.5} against the baseline {base:.5} ({base_what}): {:.1}% of it{}",
            o.test.loss,
            100.0 * o.test.loss / base,
            if regression {
                String::new()
            } else {
                format!("; accuracy {:.4}", o.test.accuracy)
            }
        );
        crate::train_cmd::print_outputs(run_dir, &s.best_val, &plots, &report_path);
    }
    Ok(())
}
