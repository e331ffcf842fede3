//! `task = "synthetic"`: the built-in long-memory tasks (adding problem, copy memory,
//! temporal order), generated from a seed, trained and scored on a held-out draw against the
//! task's memoryless baseline.
//!
//! The model per task: the adding problem is a regression from the last step (a forecaster
//! with one output), copy memory a tagger over tokens (no padding id: token 0 is the blank),
//! temporal order a classifier over tokens. Each is a [`Task`] of its own ([`Synthetic`] over
//! a [`Kind`]); [`train`] picks it by `data.kind`.

use super::OutputPlace;
use super::{
    EvaluateOptions, Observer, Outcome, RunOutput, Scored, Splits, Task, TaskConfig, TaskKind,
};
use crate::data::Batches;
use crate::data::batch::{BatcherConfig, ClassBatches, Example, PadConfig};
use crate::data::series::WindowBatch;
use crate::data::synthetic::{
    AddingProblem, CopyMemory, RegressionSet, Splits as SyntheticSplits, TemporalOrder,
};
use crate::error::{Error, Result};
use crate::models::{
    Forecaster, InputSpec, Pooling, SequenceClassifier, SequenceTagger, TrainStep,
};
use crate::optim::{AdamConfig, OptimizerConfig};
use crate::resources::{MemoryEstimate, TrainingShape, training_estimate};
use crate::run::{ReportSummary, RunDir};
use crate::train::{RunSummary, TrainConfig};
use crate::{CellKind, RnnConfig};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// A `task = "synthetic"` config: a built-in long-memory task with a length knob. Its
/// `Default` is the adding problem at T = 100 with an LSTM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// `"synthetic"`.
    pub task: TaskKind,
    /// Which task, how long, how many examples.
    pub data: SyntheticData,
    /// The network.
    pub model: SyntheticModel,
    /// Optimization (epochs, batch_size, clip_norm, optimizer, schedule, patience, ...).
    pub train: TrainConfig,
    /// Where results go.
    pub output: RunOutput,
}

/// The built-in synthetic tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticKind {
    /// The adding problem (Hochreiter & Schmidhuber 1997): the sum of the two marked values of
    /// a sequence of (value, marker) pairs. Regression; predicting 1 scores MSE 1/6.
    #[default]
    Adding,
    /// Copy memory (Arjovsky et al. 2016): repeat 10 symbols after `length` blanks. Tagging;
    /// the memoryless baseline is 10·ln 8 / (length + 20) nats per step.
    Copy,
    /// Temporal order (Hochreiter & Schmidhuber 1997): which of X/Y came first and second
    /// among distractors. 4 classes; chance is ln 4 nats, accuracy 0.25.
    TemporalOrder,
}

/// `[data]` of a synthetic task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticData {
    /// `"adding"`, `"copy"` or `"temporal_order"`. Default adding.
    pub kind: SyntheticKind,
    /// Sequence length T (for copy: the delay between the symbols and their recall). Default
    /// 100.
    pub length: usize,
    /// Training sequences. Default 10 000.
    pub train_size: usize,
    /// Validation sequences. Default 1 000.
    pub valid_size: usize,
    /// Test sequences. Default 1 000.
    pub test_size: usize,
    /// Seed of the data (each split from its own stream). Default 0.
    pub seed: u64,
}

impl Default for SyntheticData {
    fn default() -> Self {
        SyntheticData {
            kind: SyntheticKind::Adding,
            length: 100,
            train_size: 10_000,
            valid_size: 1_000,
            test_size: 1_000,
            seed: 0,
        }
    }
}

/// `[model]` of a synthetic task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticModel {
    /// `"lstm"`, `"gru"`, `"rnn_tanh"` or `"rnn_relu"`. Default LSTM.
    pub cell: CellKind,
    /// Embedding size for the token tasks (copy, temporal order). Default 16.
    pub embedding_size: usize,
    /// Hidden units per layer. Default 64.
    pub hidden_size: usize,
    /// Stacked layers. Default 1.
    pub num_layers: usize,
    /// Dropout between stacked layers. Default 0.
    pub dropout: f32,
}

impl Default for SyntheticModel {
    fn default() -> Self {
        SyntheticModel {
            cell: CellKind::Lstm,
            embedding_size: 16,
            hidden_size: 64,
            num_layers: 1,
            dropout: 0.0,
        }
    }
}

impl SyntheticModel {
    /// The recurrent stack's config for `input_size` inputs per step.
    pub fn rnn(&self, input_size: usize) -> RnnConfig {
        RnnConfig::new(self.cell, input_size, self.hidden_size)
            .num_layers(self.num_layers)
            .dropout(self.dropout)
    }
}

impl Default for SyntheticConfig {
    /// The adding problem at T = 100: LSTM 64, Adam 1e-3, batches of 50, clipping at 1, up to
    /// 30 epochs with patience 10 (the loss sits at the baseline for several epochs before
    /// the model finds the markers).
    fn default() -> Self {
        SyntheticConfig {
            task: TaskKind::Synthetic,
            data: SyntheticData::default(),
            model: SyntheticModel::default(),
            train: TrainConfig {
                epochs: 30,
                batch_size: 50,
                eval_batch_size: 500,
                optimizer: OptimizerConfig::Adam(AdamConfig {
                    lr: 1e-3,
                    ..Default::default()
                }),
                patience: Some(10),
                ..Default::default()
            },
            output: RunOutput::default(),
        }
    }
}

impl TaskConfig for SyntheticConfig {
    const ABOUT_DEFAULT: &'static str = "the adding problem at T = 100";
    /// The data comes from the config's seed: the run's test score is all there is to score.
    const EVALUATES: bool = false;

    fn train(&self) -> &TrainConfig {
        &self.train
    }

    fn output(&self) -> OutputPlace<'_> {
        self.output.place()
    }
}

impl SyntheticConfig {
    /// The memoryless baseline of the task's test loss, and what it is.
    pub fn baseline(&self) -> (f64, &'static str) {
        match self.data.kind {
            SyntheticKind::Adding => (AddingProblem::baseline_mse(), "MSE of always predicting 1"),
            SyntheticKind::Copy => (
                self.copy_task().baseline_ce(),
                "cross-entropy of blanks, then a uniform guess",
            ),
            SyntheticKind::TemporalOrder => {
                (TemporalOrder::baseline_ce(), "cross-entropy of chance")
            }
        }
    }

    fn adding_task(&self) -> AddingProblem {
        AddingProblem {
            length: self.data.length,
            seed: self.data.seed,
            ..Default::default()
        }
    }

    fn copy_task(&self) -> CopyMemory {
        CopyMemory {
            delay: self.data.length,
            seed: self.data.seed,
            ..Default::default()
        }
    }

    fn order_task(&self) -> TemporalOrder {
        TemporalOrder {
            length: self.data.length,
            seed: self.data.seed,
            ..Default::default()
        }
    }

    /// A data error, named as the config names it.
    fn data_error(e: Error) -> Error {
        match e {
            Error::Config(m) => Error::Config(format!("[data]: {m}")),
            e => e,
        }
    }
}

/// Trains (or resumes) the synthetic task of `config` in `run`: the one `data.kind` names.
///
/// # Errors
/// As [`super::train`].
pub fn train(
    config: &SyntheticConfig,
    run: &RunDir,
    resuming: bool,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    match config.data.kind {
        SyntheticKind::Adding => super::train::<Synthetic<Adding>>(config, run, resuming, observer),
        SyntheticKind::Copy => super::train::<Synthetic<Copy>>(config, run, resuming, observer),
        SyntheticKind::TemporalOrder => {
            super::train::<Synthetic<Order>>(config, run, resuming, observer)
        }
    }
}

/// A synthetic run has no data to evaluate on: its data is generated from the config's seed,
/// and its test score is in `metrics.json` and `report.md`.
///
/// # Errors
/// Always: [`Error::Data`] naming the run directory and where its score is.
pub fn evaluate(
    _config: &SyntheticConfig,
    run: &RunDir,
    _options: &EvaluateOptions,
) -> Result<Scored<serde_json::Value>> {
    Err(Error::data(
        run.path().display().to_string(),
        "",
        "a synthetic task run; its test score is in metrics.json and report.md (the data is \
         generated from the config's seed, so there is no file to evaluate)",
    ))
}

/// One synthetic task: its data and its model.
pub trait Kind {
    /// The model that solves it.
    type Model: TrainStep;
    /// Its batch source.
    type Batches: Batches<Batch = <Self::Model as TrainStep>::Batch>;

    /// Generates the three splits.
    ///
    /// # Errors
    /// Sizes or a length the task cannot have.
    fn batches(config: &SyntheticConfig) -> Result<[Self::Batches; 3]>;

    /// A fresh model.
    ///
    /// # Errors
    /// A model config that cannot be built.
    fn model(config: &SyntheticConfig) -> Result<Self::Model>;
}

/// The adding problem: a forecaster with one output.
pub struct Adding;
/// Copy memory: a tagger over tokens.
pub struct Copy;
/// Temporal order: a classifier over tokens.
pub struct Order;

/// A generated regression set and how to batch it.
pub struct RegressionSplit {
    set: RegressionSet,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
}

impl Batches for RegressionSplit {
    type Batch = WindowBatch;

    fn epoch(&self, epoch: usize) -> Result<Vec<WindowBatch>> {
        self.set
            .batches(self.batch_size, self.shuffle, self.seed)?
            .epoch(epoch)
    }
}

impl Kind for Adding {
    type Model = Forecaster;
    type Batches = RegressionSplit;

    fn batches(config: &SyntheticConfig) -> Result<[RegressionSplit; 3]> {
        let d = &config.data;
        let sets = config
            .adding_task()
            .splits(d.train_size, d.valid_size, d.test_size)
            .map_err(SyntheticConfig::data_error)?;
        let t = &config.train;
        let split = |set, batch_size, shuffle, seed| RegressionSplit {
            set,
            batch_size,
            shuffle,
            seed,
        };
        let splits = [
            split(sets.train, t.batch_size, true, t.seed),
            split(sets.val, t.eval_batch_size, false, 0),
            split(sets.test, t.eval_batch_size, false, 0),
        ];
        // Refuse bad batch sizes now, not after the first epoch.
        for s in &splits {
            s.set.batches(s.batch_size, s.shuffle, s.seed)?;
        }
        Ok(splits)
    }

    fn model(config: &SyntheticConfig) -> Result<Forecaster> {
        let rnn = config.model.rnn(AddingProblem::FEATURES);
        Forecaster::new(rnn, 1, 1, config.train.seed)
    }
}

/// Token-task splits as batch sources: shuffled training batches, in-order evaluation ones.
fn token_batches(
    config: &SyntheticConfig,
    sets: SyntheticSplits<Vec<Example>>,
) -> Result<[ClassBatches; 3]> {
    let batching = BatcherConfig {
        batch_size: config.train.batch_size,
        seed: config.train.seed,
        // Every sequence has the same length: nothing to bucket.
        bucket_size: 0,
        ..Default::default()
    };
    let eval = config.train.eval_batch_size;
    Ok([
        ClassBatches::new(sets.train, batching, PadConfig::default())?,
        ClassBatches::in_order(sets.val, eval, PadConfig::default())?,
        ClassBatches::in_order(sets.test, eval, PadConfig::default())?,
    ])
}

impl Kind for Copy {
    type Model = SequenceTagger;
    type Batches = ClassBatches;

    fn batches(config: &SyntheticConfig) -> Result<[ClassBatches; 3]> {
        let d = &config.data;
        let sets = config
            .copy_task()
            .splits(d.train_size, d.valid_size, d.test_size)
            .map_err(SyntheticConfig::data_error)?;
        token_batches(config, sets)
    }

    fn model(config: &SyntheticConfig) -> Result<SequenceTagger> {
        let task = config.copy_task();
        // Token 0 is the blank, an input like any other: no padding row.
        let spec = InputSpec::Tokens {
            vocab: task.vocab_size(),
            padding_idx: None,
        };
        let m = &config.model;
        SequenceTagger::new(
            spec,
            m.rnn(m.embedding_size),
            task.num_tags(),
            config.train.seed,
        )
    }
}

impl Kind for Order {
    type Model = SequenceClassifier;
    type Batches = ClassBatches;

    fn batches(config: &SyntheticConfig) -> Result<[ClassBatches; 3]> {
        let d = &config.data;
        let sets = config
            .order_task()
            .splits(d.train_size, d.valid_size, d.test_size)
            .map_err(SyntheticConfig::data_error)?;
        token_batches(config, sets)
    }

    fn model(config: &SyntheticConfig) -> Result<SequenceClassifier> {
        let task = config.order_task();
        let spec = InputSpec::Tokens {
            vocab: task.vocab_size(),
            padding_idx: Some(TemporalOrder::PAD as usize),
        };
        let m = &config.model;
        SequenceClassifier::new(
            spec,
            m.rnn(m.embedding_size),
            TemporalOrder::NUM_CLASSES,
            Pooling::Last,
            config.train.seed,
        )
    }
}

/// The least memory a synthetic run needs: training, and with `data` the generated splits
/// (each step of each sequence at least 8 bytes: the adding problem's two floats, or a token
/// id in its example and again in its padded batch).
fn memory(config: &SyntheticConfig, data: bool) -> MemoryEstimate {
    let (d, m) = (&config.data, &config.model);
    let input = match d.kind {
        SyntheticKind::Adding => AddingProblem::FEATURES,
        SyntheticKind::Copy | SyntheticKind::TemporalOrder => m.embedding_size,
    };
    let rnn = m.rnn(input);
    let sequences = d.train_size as f64 + d.valid_size as f64 + d.test_size as f64;
    training_estimate(&TrainingShape {
        rnn: &rnn,
        other_params: 0.0,
        optimizer: &config.train.optimizer,
        batch: config.train.batch_size.min(d.train_size),
        eval_batch: (config.train.eval_batch_size).min(d.valid_size.max(d.test_size)),
        steps: d.length,
        outputs_per_step: 0,
        data_bytes: if data {
            sequences * d.length as f64 * 8.0
        } else {
            0.0
        },
    })
}

/// A synthetic run of kind `K`: its generated splits.
pub struct Synthetic<K: Kind> {
    splits: [K::Batches; 3],
    /// Whether the loss is a squared error (the adding problem) or a cross-entropy.
    regression: bool,
    baseline: (f64, &'static str),
    train_size: usize,
    kind: PhantomData<K>,
}

impl<K: Kind> Task for Synthetic<K> {
    const KIND: TaskKind = TaskKind::Synthetic;
    type Config = SyntheticConfig;
    type Model = K::Model;

    fn prepare(config: &SyntheticConfig, _run: &RunDir, _resuming: bool) -> Result<Self> {
        // The data is generated from the config: check it fits before generating it.
        memory(config, true).check()?;
        // Generated from the config's seed: a resumed run regenerates the same data.
        Ok(Synthetic {
            splits: K::batches(config)?,
            regression: config.data.kind == SyntheticKind::Adding,
            baseline: config.baseline(),
            train_size: config.data.train_size,
            kind: PhantomData,
        })
    }

    fn describe(&self, config: &SyntheticConfig) -> String {
        let (d, m) = (&config.data, &config.model);
        format!(
            "data: {:?} task, length {}, {} train / {} valid / {} test sequences (seed {})\n\
             model {} {}x{}",
            d.kind,
            d.length,
            d.train_size,
            d.valid_size,
            d.test_size,
            d.seed,
            m.cell,
            m.num_layers,
            m.hidden_size,
        )
    }

    fn model(&self, config: &SyntheticConfig) -> Result<K::Model> {
        K::model(config)
    }

    fn memory(&self, config: &SyntheticConfig) -> MemoryEstimate {
        memory(config, false)
    }

    fn splits(&self) -> Splits<'_, K::Model> {
        let [train, valid, test] = &self.splits;
        Splits {
            train,
            valid,
            test: Some(test),
        }
    }

    fn loss_name(&self) -> String {
        if self.regression {
            "mean squared error".into()
        } else {
            "cross-entropy (nats)".into()
        }
    }

    fn baseline(&self) -> Option<(String, f64)> {
        let (value, what) = self.baseline;
        Some((format!("baseline: {what}"), value))
    }

    fn throughput(&self, summary: &RunSummary, seconds: f64, _counted: u64) -> (f64, String) {
        (
            self.train_size as f64 * summary.epochs.max(1) as f64 / seconds.max(1e-9),
            "sequences/s (training epochs over wall time)".into(),
        )
    }

    fn finish(
        &self,
        config: &SyntheticConfig,
        run: &RunDir,
        model: &K::Model,
        summary: &RunSummary,
        report: &mut ReportSummary,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let d = &config.data;
        let (base, base_what) = self.baseline;
        let regression = self.regression;
        let loss_name = self.loss_name();
        // The trainer scored the test split at the end of the run (with the best weights).
        let test = match summary.test {
            Some(t) => t,
            None => crate::train::evaluate(model, &self.splits[2])?,
        };
        report.task = format!("synthetic: {:?}, length {}", d.kind, d.length);
        report
            .test_metrics
            .push((format!("test {loss_name}"), format!("{:.5}", test.loss)));
        report
            .test_metrics
            .push((format!("baseline ({base_what})"), format!("{base:.5}")));
        report.test_metrics.push((
            "test loss / baseline".into(),
            format!("{:.4}", test.loss / base),
        ));
        if !regression {
            report
                .test_metrics
                .push(("test accuracy".into(), format!("{:.4}", test.accuracy)));
        }
        let metrics = serde_json::json!({
            "kind": d.kind, "length": d.length, "test_loss": test.loss,
            "baseline": base, "ratio_to_baseline": test.loss / base,
            "test_accuracy": (!regression).then_some(test.accuracy),
            "best_val": summary.best_val, "epochs": summary.epochs, "steps": summary.steps,
            "seconds": report.wall_seconds,
        });
        run.write_json("metrics.json", &metrics)?;
        observer.note(&format!(
            "test {loss_name} {:.5} against the baseline {base:.5} ({base_what}): {:.1}% of it{}",
            test.loss,
            100.0 * test.loss / base,
            if regression {
                String::new()
            } else {
                format!("; accuracy {:.4}", test.accuracy)
            }
        ));
        Ok(())
    }
}
