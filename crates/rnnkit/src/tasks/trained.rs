//! [`evaluate`] and [`predict`]: one driver each for what a trained run does after training,
//! for every task that implements [`Evaluate`] and [`Predict`].

use super::{Evaluate, Predict};
use crate::error::{Error, Result};
use crate::io::TensorFile;
use crate::run::{RunDir, Weights};
use serde::Serialize;
use std::path::PathBuf;

/// What [`evaluate`] scores, and with which weights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvaluateOptions {
    /// The data to score, read and prepared as the run's training data was (with its saved
    /// tokenizer or scaler). `None`: the run's own held-out data (the language model's
    /// validation text, the classifier's and the forecaster's test split).
    pub data: Option<PathBuf>,
    /// The best validation epoch's weights (default) or the latest checkpoint's.
    pub weights: Weights,
    /// Also return a fixed batch of inputs and the model's raw outputs
    /// ([`Scored::outputs`]).
    pub outputs: bool,
    /// Score the model with its recurrent stack quantized to int8 ([`crate::Rnn::quantize`]).
    pub int8: bool,
}

/// What [`evaluate`] found.
#[derive(Debug)]
pub struct Scored<M> {
    /// The metrics, with `task` and `data` (what was scored) among them.
    pub metrics: M,
    /// With [`EvaluateOptions::outputs`]: a fixed batch of inputs and the model's raw outputs
    /// on it, tagged with the task (metadata `rnnkit_task`), which `tools/torch_load_run.py`
    /// reproduces in PyTorch from `model.safetensors`. Write it with [`TensorFile::write`].
    pub outputs: Option<TensorFile>,
}

impl<M: Serialize> Scored<M> {
    /// The same evaluation with its metrics as a JSON object (keys sorted), for code that
    /// handles any task.
    ///
    /// # Errors
    /// Metrics that do not encode as JSON ([`Error::Format`]); the tasks' metrics always do.
    pub fn into_json(self) -> Result<Scored<serde_json::Value>> {
        let metrics = serde_json::to_value(self.metrics).map_err(|e| Error::Format {
            path: "metrics".into(),
            msg: format!("cannot encode: {e}"),
        })?;
        Ok(Scored {
            metrics,
            outputs: self.outputs,
        })
    }
}

/// Examples (windows, texts) of the fixed batch in [`Scored::outputs`].
pub(crate) const OUTPUT_BATCH: usize = 64;

/// Scores the trained run of task `T` in `run` (its config `config`) on `options.data`, or
/// on the run's held-out data: load the weights, read and prepare the data as training did,
/// score, and take the raw outputs when asked.
///
/// ```no_run
/// use rnnkit::run::RunDir;
/// use rnnkit::tasks::{self, EvaluateOptions, classify::Classify};
///
/// # fn main() -> rnnkit::Result<()> {
/// let run = RunDir::open("runs/names")?;
/// let config = toml::from_str(&run.read_config()?).expect("the run's resolved config");
/// let found = tasks::evaluate::<Classify>(&config, &run, &EvaluateOptions::default())?;
/// println!("test accuracy {:.3}", found.metrics.accuracy);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// A run directory missing its files or weights of another shape, data that cannot be read
/// or does not fit the model ([`Error::is_bad_input`]).
pub fn evaluate<T: Evaluate>(
    config: &T::Config,
    run: &RunDir,
    options: &EvaluateOptions,
) -> Result<Scored<T::Metrics>> {
    let mut trained = T::load(config, run, options.weights)?;
    if options.int8 {
        T::quantize(&mut trained);
    }
    let (data, source) = T::eval_data(&trained, run, options.data.as_deref())?;
    let metrics = T::score(&trained, &data, source)?;
    let outputs = if options.outputs {
        let mut file = T::outputs(&trained, &data)?;
        file.metadata
            .insert("rnnkit_task".into(), T::KIND.to_string());
        Some(file)
    } else {
        None
    };
    Ok(Scored { metrics, outputs })
}

/// Answers `query` with the trained run of task `T` in `run` (its config `config`): texts to
/// their classes, a recent history to its next values, a prompt to text.
///
/// ```no_run
/// use rnnkit::run::{RunDir, Weights};
/// use rnnkit::tasks::{self, classify::{Classify, ClassifyQuery}};
///
/// # fn main() -> rnnkit::Result<()> {
/// let run = RunDir::open("runs/names")?;
/// let config = toml::from_str(&run.read_config()?).expect("the run's resolved config");
/// let texts = vec!["Nakamura".to_string(), "Rossi".to_string()];
/// let query = ClassifyQuery { texts: &texts, top: 2 };
/// for (text, classes) in texts.iter().zip(tasks::predict::<Classify>(&config, &run, Weights::Best, query)?) {
///     println!("{text}: {classes:?}");
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`evaluate`], and a query the model cannot answer (an empty history, a bad sampling
/// setting).
pub fn predict<T: Predict>(
    config: &T::Config,
    run: &RunDir,
    weights: Weights,
    query: T::Query<'_>,
) -> Result<T::Answer> {
    predict_with::<T>(config, run, weights, false, query)
}

/// [`predict`], with the model's recurrent stack quantized to int8 when `int8`
/// ([`crate::Rnn::quantize`]: per-row int8 weights, activations quantized at each step).
///
/// # Errors
/// As [`predict`].
pub fn predict_with<T: Predict>(
    config: &T::Config,
    run: &RunDir,
    weights: Weights,
    int8: bool,
    query: T::Query<'_>,
) -> Result<T::Answer> {
    let mut trained = T::load(config, run, weights)?;
    if int8 {
        T::quantize(&mut trained);
    }
    T::predict(&trained, query)
}
