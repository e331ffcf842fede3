//! Tasks: what turns a config into a trained, evaluated run directory.
//!
//! A task is one file here: its config (plain serde data; every key defaulted, unknown keys
//! rejected), how it prepares its data (fitting preprocessing on the training split only and
//! saving it in the run directory, or reading it back on resume), the model it builds, and what
//! it reports after training (test metrics, charts, files). [`train`] is the one driver that
//! runs any of them: prepare, build, [`Trainer`](crate::train::Trainer), save, chart, report.
//! [`registry`] lists the tasks by their config name; adding a task is a new file plus one
//! line there.
//!
//! After training, [`evaluate`] scores a run on new data or its own held-out split, and
//! [`predict`] answers new inputs with it (texts to classes, a history to its next values, a
//! prompt to text); a task takes part through [`Evaluate`] and [`Predict`], next to its
//! [`Task`] in its own file.
//!
//! Train the bundled surname classifier for one epoch into a run directory:
//!
//! ```no_run
//! use rnnkit::run::RunDir;
//! use rnnkit::tasks::{self, classify::{ClassifyConfig, Classify}};
//!
//! # fn main() -> rnnkit::Result<()> {
//! let mut config = ClassifyConfig::default();
//! config.train.epochs = 1;
//! let run = RunDir::create("runs/names")?;
//! let outcome = tasks::train::<Classify>(&config, &run, false, &mut tasks::Quiet)?;
//! println!("report: {}", outcome.report.display());
//! # Ok(())
//! # }
//! ```

pub mod audio;
pub mod audio_stream;
pub mod classify;
mod driver;
pub mod export;
pub mod forecast;
pub mod lm;
pub mod registry;
pub mod synthetic;
mod trained;

pub use driver::{Outcome, bundled_or_given, train};
pub use export::Exported;
pub use registry::{AnyConfig, ConfigVisitor, TaskKind};
pub use trained::{EvaluateOptions, Scored, evaluate, predict, predict_with};

use crate::error::Result;
use crate::io::TensorFile;
use crate::models::TrainStep;
use crate::resources::MemoryEstimate;
use crate::run::{ReportSummary, RunDir, Weights};
use crate::train::{Reporter, RunSummary, Split, StopSignal, TrainConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[output]` of the tasks that generate nothing at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunOutput {
    /// Parent of run directories. Default `runs`.
    pub dir: PathBuf,
    /// Run directory name; empty means a timestamp. Default empty.
    pub name: String,
    /// Worker threads; 0 means all cores. Default 0.
    pub threads: usize,
    /// Replace a run already in the directory (removing all its files) instead of refusing.
    /// Default false.
    pub overwrite: bool,
}

impl Default for RunOutput {
    fn default() -> Self {
        RunOutput {
            dir: PathBuf::from("runs"),
            name: String::new(),
            threads: 0,
            overwrite: false,
        }
    }
}

/// Where a run goes and on how many threads: the common keys of every task's `[output]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputPlace<'a> {
    /// The parent of run directories.
    pub dir: &'a Path,
    /// The run's name; empty means a timestamp.
    pub name: &'a str,
    /// Worker threads; 0 means all cores.
    pub threads: usize,
    /// Replace a run already there instead of refusing ([`RunDir::replace`]).
    pub overwrite: bool,
}

impl RunOutput {
    /// Its keys as an [`OutputPlace`].
    pub fn place(&self) -> OutputPlace<'_> {
        OutputPlace {
            dir: &self.dir,
            name: &self.name,
            threads: self.threads,
            overwrite: self.overwrite,
        }
    }
}

/// A task's config file: `task`, `[data]`, `[model]`, `[train]` and `[output]`.
pub trait TaskConfig:
    Serialize + DeserializeOwned + Default + Clone + PartialEq + std::fmt::Debug
{
    /// What the default config trains, in a few words (for the docs' tables).
    const ABOUT_DEFAULT: &'static str;
    /// Whether a trained run can be scored on data afterwards ([`evaluate`]). Default true; a
    /// task that generates its data from the config has its test score in the run directory
    /// and nothing else to score.
    const EVALUATES: bool = true;
    /// `[train]`.
    fn train(&self) -> &TrainConfig;
    /// `[output]`: the parent of run directories, the run's name (empty: a timestamp), the
    /// worker threads (0: all cores) and whether to replace a run already there.
    fn output(&self) -> OutputPlace<'_>;
}

/// The batch sources of a run: training, validation (every epoch) and test (once, at the end).
pub struct Splits<'a, M: TrainStep> {
    /// Training batches, drawn anew each epoch.
    pub train: Split<'a, M>,
    /// Validation batches.
    pub valid: Split<'a, M>,
    /// Test batches, if the task holds out a test split.
    pub test: Option<Split<'a, M>>,
}

/// A task with its data prepared: built by [`Task::prepare`], it holds the batch sources and
/// what the task needs after training (a tokenizer, class names, a scaler).
pub trait Task: Sized {
    /// The config's `task` value.
    const KIND: TaskKind;
    /// Whether its batches are chunks of one long stream, so that `train.bptt` and
    /// `train.variable_bptt` mean something.
    const USES_BPTT: bool = false;
    /// Its config file.
    type Config: TaskConfig;
    /// The model it trains.
    type Model: TrainStep;

    /// Reads and prepares the data. A fresh run (`resuming` false) fits its preprocessing on
    /// the training split and saves it in `run`; a resumed one reads what was saved, so the
    /// model sees exactly the inputs it was trained on.
    ///
    /// # Errors
    /// Unreadable data, a config the data does not fit ([`crate::Error::Config`]).
    fn prepare(config: &Self::Config, run: &RunDir, resuming: bool) -> Result<Self>;

    /// The data and the model in one or two lines, for the start of a run.
    fn describe(&self, config: &Self::Config) -> String;

    /// A model with fresh weights (resuming replaces them from the checkpoint).
    ///
    /// # Errors
    /// A model config that cannot be built.
    fn model(&self, config: &Self::Config) -> Result<Self::Model>;

    /// The least memory training will need beyond the data already loaded (see
    /// [`crate::resources`]); the driver refuses a run that does not fit before building the
    /// model.
    fn memory(&self, config: &Self::Config) -> MemoryEstimate;

    /// The batch sources.
    fn splits(&self) -> Splits<'_, Self::Model>;

    /// What the loss measures, e.g. `cross-entropy (nats/token)`.
    fn loss_name(&self) -> String;

    /// A reference loss for the loss chart (label, value), e.g. a memoryless baseline.
    fn baseline(&self) -> Option<(String, f64)> {
        None
    }

    /// Throughput for the report: (per second, unit), from the run's summary, its wall
    /// seconds in this sitting and the elements it trained on in this sitting.
    fn throughput(&self, summary: &RunSummary, seconds: f64, counted: u64) -> (f64, String);

    /// Metrics of `model` on the validation split, by name (`accuracy`, `macro_f1`, `rmse`,
    /// `mae`), for tuning objectives other than the validation loss. None by default.
    ///
    /// # Errors
    /// A batch the model cannot score.
    fn valid_metrics(&self, _model: &Self::Model) -> Result<Vec<(String, f64)>> {
        Ok(Vec::new())
    }

    /// After training, with the weights the run ends with (the best ones when
    /// `restore_best`): test metrics into `report`, task charts and files into `run`, lines
    /// worth showing to `observer`.
    ///
    /// # Errors
    /// A chart or file that cannot be written.
    fn finish(
        &self,
        config: &Self::Config,
        run: &RunDir,
        model: &Self::Model,
        summary: &RunSummary,
        report: &mut ReportSummary,
        observer: &mut dyn Observer,
    ) -> Result<()>;
}

/// A task whose trained runs can be scored on data: the per-task parts of [`evaluate`].
pub trait Evaluate: Task {
    /// A trained run loaded back: its model with what it needs to read new data (tokenizer,
    /// class names, scaler) and its config.
    type Trained;
    /// Data prepared for the model as the training data was.
    type Data;
    /// What scoring reports; serializes to the JSON object `rnnkit evaluate --json` prints.
    type Metrics: Serialize;

    /// Loads the `which` weights of the run in `run`, trained per `config`.
    ///
    /// # Errors
    /// A missing or unreadable run file, weights of another shape.
    fn load(config: &Self::Config, run: &RunDir, which: Weights) -> Result<Self::Trained>;

    /// The data at `path`, or the run's own held-out data when `None`, prepared for the
    /// model; with a few words saying what it is (the file, `the run's test split`).
    ///
    /// # Errors
    /// Data that cannot be read or does not fit the model ([`crate::Error::is_bad_input`]).
    fn eval_data(
        trained: &Self::Trained,
        run: &RunDir,
        path: Option<&Path>,
    ) -> Result<(Self::Data, String)>;

    /// Scores the model on `data`, which `source` describes.
    ///
    /// # Errors
    /// Data the model cannot score.
    fn score(trained: &Self::Trained, data: &Self::Data, source: String) -> Result<Self::Metrics>;

    /// A fixed batch of `data`'s inputs and the model's raw outputs on it, under the names
    /// `tools/torch_load_run.py` reads.
    ///
    /// # Errors
    /// Data the model cannot run on.
    fn outputs(trained: &Self::Trained, data: &Self::Data) -> Result<TensorFile>;

    /// Quantizes the loaded model's recurrent stack to int8 for inference
    /// ([`crate::Rnn::quantize`]); returns the kernel's name.
    fn quantize(trained: &mut Self::Trained) -> &'static str;
}

/// A task whose trained model answers new inputs: the per-task part of [`predict`].
pub trait Predict: Evaluate {
    /// What it is asked: texts, a recent history, a prompt.
    type Query<'q>;
    /// What it answers.
    type Answer;

    /// Answers `query` with `trained`.
    ///
    /// # Errors
    /// A query the model cannot answer.
    fn predict(trained: &Self::Trained, query: Self::Query<'_>) -> Result<Self::Answer>;
}

/// Follows a task run: the trainer's steps and epochs ([`Reporter`]), plus what a command
/// line shows. Every method does nothing by default.
pub trait Observer: Reporter {
    /// Training starts; raising `stop` ends it at the next step with a checkpoint.
    fn started(&mut self, _stop: &StopSignal) {}
    /// A line worth showing: the data and model, test results.
    fn note(&mut self, _line: &str) {}
    /// Generated text as it comes (the language model's sample).
    fn text(&mut self, _piece: &str) {}
}

/// An observer that shows nothing.
pub struct Quiet;
impl Reporter for Quiet {}
impl Observer for Quiet {}
