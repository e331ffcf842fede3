//! The `rnnkit train` configs of the sequence tasks: `task = "classify"` (a label per text,
//! e.g. a surname's language) and `task = "forecast"` (the next values of a time series).
//! Same four sections as the language model's; each default is a bundled run that works.
//!
//! ```toml
//! task = "forecast"
//! [data]
//! path = "data/sunspots/sunspots.csv"
//! target_columns = ["SUNACTIVITY"]
//! timestamp_column = "YEAR"
//! lookback = 24
//! [model]
//! hidden_size = 64
//! ```

use crate::train_config::Task;
use rnnkit::data::series::{MissingPolicy, SeriesConfig, SplitSpec, Transform};
use rnnkit::data::text::TextConfig;
use rnnkit::models::Pooling;
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::train::TrainConfig;
use rnnkit::{CellKind, RnnConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[output]` of the sequence tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunOutput {
    /// Parent of run directories. Default `runs`.
    pub dir: PathBuf,
    /// Run directory name; empty means a timestamp. Default empty.
    pub name: String,
    /// Worker threads; 0 means all cores. Default 0.
    pub threads: usize,
}

impl Default for RunOutput {
    fn default() -> Self {
        RunOutput {
            dir: PathBuf::from("runs"),
            name: String::new(),
            threads: 0,
        }
    }
}

/// A `task = "classify"` config. Its `Default` classifies the bundled surnames by language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyFile {
    /// `"classify"`.
    pub task: Task,
    /// The labelled texts and how they are split and tokenized.
    pub data: ClassifyData,
    /// The network.
    pub model: ClassifyModel,
    /// Optimization (epochs, batch_size, clip_norm, optimizer, schedule, patience, ...).
    pub train: TrainConfig,
    /// Where results go.
    pub output: RunOutput,
}

/// `[data]` of a classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyData {
    /// A directory of `CLASS.txt` files (one example per line; the class is the file name), or
    /// a CSV/TSV file with a header and `text_column` and `label_column`. Default: the bundled
    /// `data/names` (surnames of 18 languages).
    pub path: PathBuf,
    /// The text column of a CSV/TSV file. Default `"text"`.
    pub text_column: String,
    /// The label column of a CSV/TSV file. Default `"label"`.
    pub label_column: String,
    /// Fraction held out for validation, stratified by class. Default 0.1.
    pub valid_fraction: f64,
    /// Fraction held out for the final test, stratified by class. Default 0.1.
    pub test_fraction: f64,
    /// Cleaning, tokenizer and vocabulary (fitted on the training part). Default characters.
    pub text: TextConfig,
    /// Length-bucketed batches: pools of this many batches are sorted by length before being
    /// cut, so batches pad little; 0 turns it off. Default 100.
    pub bucket_size: usize,
}

impl Default for ClassifyData {
    fn default() -> Self {
        ClassifyData {
            path: PathBuf::from("data/names"),
            text_column: "text".into(),
            label_column: "label".into(),
            valid_fraction: 0.1,
            test_fraction: 0.1,
            text: TextConfig::default(),
            bucket_size: 100,
        }
    }
}

/// `[model]` of a classifier: embedding → recurrent stack → pooling → linear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyModel {
    /// `"lstm"`, `"gru"`, `"rnn_tanh"` or `"rnn_relu"`. Default LSTM.
    pub cell: CellKind,
    /// Embedding size. Default 64.
    pub embedding_size: usize,
    /// Hidden units per layer (per direction). Default 128.
    pub hidden_size: usize,
    /// Stacked layers. Default 1.
    pub num_layers: usize,
    /// Read the sequence in both directions. Default false.
    pub bidirectional: bool,
    /// Dropout between stacked layers. Default 0.
    pub dropout: f32,
    /// How the outputs over time become one vector: `"last"` (the last valid step; each
    /// direction's final state), `"mean"` or `"max"`. Default last.
    pub pooling: Pooling,
}

impl Default for ClassifyModel {
    fn default() -> Self {
        ClassifyModel {
            cell: CellKind::Lstm,
            embedding_size: 64,
            hidden_size: 128,
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            pooling: Pooling::Last,
        }
    }
}

impl ClassifyModel {
    /// The recurrent stack's config.
    pub fn rnn(&self) -> RnnConfig {
        RnnConfig::new(self.cell, self.embedding_size, self.hidden_size)
            .num_layers(self.num_layers)
            .bidirectional(self.bidirectional)
            .dropout(self.dropout)
    }
}

impl Default for ClassifyFile {
    /// The bundled surname classifier: characters → 64-wide embedding → LSTM 128 → 18
    /// languages; Adam 2e-3, batches of 64, 30 epochs with patience 5 (about 10 s per run on
    /// two cores, test accuracy about 0.81).
    fn default() -> Self {
        ClassifyFile {
            task: Task::Classify,
            data: ClassifyData::default(),
            model: ClassifyModel::default(),
            train: TrainConfig {
                epochs: 30,
                batch_size: 64,
                eval_batch_size: 512,
                optimizer: OptimizerConfig::Adam(AdamConfig {
                    lr: 2e-3,
                    ..Default::default()
                }),
                patience: Some(5),
                ..Default::default()
            },
            output: RunOutput::default(),
        }
    }
}

/// A `task = "forecast"` config. Its `Default` forecasts the bundled weekly Mauna Loa CO2
/// series a quarter ahead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastFile {
    /// `"forecast"`.
    pub task: Task,
    /// The series: CSV file, columns, missing values, transform, scaling, windows, split.
    pub data: SeriesConfig,
    /// The network.
    pub model: ForecastModel,
    /// Optimization (epochs, batch_size, clip_norm, optimizer, schedule, patience, ...).
    pub train: TrainConfig,
    /// Where results go.
    pub output: RunOutput,
}

/// `[model]` of a forecaster: recurrent stack → last state → linear to horizon × targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastModel {
    /// `"lstm"`, `"gru"`, `"rnn_tanh"` or `"rnn_relu"`. Default LSTM.
    pub cell: CellKind,
    /// Hidden units per layer. Default 64.
    pub hidden_size: usize,
    /// Stacked layers. Default 1.
    pub num_layers: usize,
    /// Dropout between stacked layers. Default 0.
    pub dropout: f32,
}

impl Default for ForecastModel {
    fn default() -> Self {
        ForecastModel {
            cell: CellKind::Lstm,
            hidden_size: 64,
            num_layers: 1,
            dropout: 0.0,
        }
    }
}

impl ForecastModel {
    /// The recurrent stack's config for `input_size` features per step.
    pub fn rnn(&self, input_size: usize) -> RnnConfig {
        RnnConfig::new(self.cell, input_size, self.hidden_size)
            .num_layers(self.num_layers)
            .dropout(self.dropout)
    }
}

impl Default for ForecastFile {
    /// The bundled CO2 forecast: 13 weeks ahead from 104 weeks of first differences (missing
    /// weeks interpolated), a 70/15/15 chronological split, LSTM 64, Adam 3e-3, batches of
    /// 32, up to 60 epochs with patience 30.
    fn default() -> Self {
        ForecastFile {
            task: Task::Forecast,
            data: SeriesConfig {
                path: PathBuf::from("data/co2/co2.csv"),
                target_columns: vec!["co2".into()],
                timestamp_column: Some("date".into()),
                missing: MissingPolicy::Interpolate,
                transform: Transform::Diff,
                lookback: 104,
                horizon: 13,
                split: SplitSpec::Fractions {
                    train: 0.7,
                    val: 0.15,
                },
                season: Some(52),
                ..SeriesConfig::default()
            },
            model: ForecastModel::default(),
            train: TrainConfig {
                epochs: 60,
                batch_size: 32,
                optimizer: OptimizerConfig::Adam(AdamConfig {
                    lr: 3e-3,
                    ..Default::default()
                }),
                patience: Some(30),
                ..Default::default()
            },
            output: RunOutput::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let c = ClassifyFile::default();
        let back: ClassifyFile = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let f = ForecastFile::default();
        let text = toml::to_string(&f).unwrap();
        let back: ForecastFile = toml::from_str(&text).unwrap();
        assert_eq!(back, f);
        assert!(text.contains("lookback = 104"), "{text}");
    }
}

/// A `task = "synthetic"` config: a built-in long-memory task with a length knob. Its
/// `Default` is the adding problem at T = 100 with an LSTM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticFile {
    /// `"synthetic"`.
    pub task: Task,
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

impl Default for SyntheticFile {
    /// The adding problem at T = 100: LSTM 64, Adam 1e-3, batches of 50, clipping at 1, up to
    /// 30 epochs with patience 10 (the loss sits at the baseline for several epochs before
    /// the model finds the markers).
    fn default() -> Self {
        SyntheticFile {
            task: Task::Synthetic,
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
