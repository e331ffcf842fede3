//! [`export_onnx`]: a trained run's model as ONNX, with the preprocessing a consumer needs to
//! reproduce its inputs (tokenizer and vocabulary, classes, scaler, audio features) as JSON.

use super::synthetic::{self, Kind, SyntheticConfig, SyntheticKind};
use super::{AnyConfig, Evaluate, audio, classify, forecast, lm};
use crate::error::Result;
use crate::export::{OnnxModel, OnnxOptions, ToOnnx};
use crate::module::Module;
use crate::run::{RunDir, Weights};
use crate::{RnnConfig, export};
use serde_json::{Value, json};

/// A run exported: the ONNX model and its preprocessing.
#[derive(Debug)]
pub struct Exported {
    /// The model.
    pub model: OnnxModel,
    /// What turns raw data into the model's inputs and its outputs into answers, as JSON
    /// (`format = "rnnkit-onnx-preprocessing"`); write it beside the model.
    pub preprocessing: Value,
}

/// The run's preprocessing files that a consumer needs, under these keys.
const RUN_FILES: [(&str, &str); 4] = [
    ("text", "text.json"),
    ("classes", "classes.json"),
    ("series", "series.json"),
    ("audio", "audio.json"),
];

impl AnyConfig {
    /// Exports the trained run in `run` (trained per this config) with its `weights`.
    ///
    /// ```no_run
    /// use rnnkit::export::OnnxOptions;
    /// use rnnkit::run::{RunDir, Weights};
    /// use rnnkit::tasks::{AnyConfig, TaskKind};
    ///
    /// # fn main() -> rnnkit::Result<()> {
    /// let run = RunDir::open("runs/names")?;
    /// let config = AnyConfig::default_for(TaskKind::Classify); // or the run's config.toml
    /// let exported = config.export_onnx(&run, Weights::Best, &OnnxOptions::default())?;
    /// exported.model.write("names.onnx".as_ref())?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`super::evaluate`]'s loading: a run directory missing its files, or weights of
    /// another shape.
    pub fn export_onnx(
        &self,
        run: &RunDir,
        weights: Weights,
        options: &OnnxOptions,
    ) -> Result<Exported> {
        let (model, rnn, input) = match self {
            AnyConfig::Lm(c) => {
                let t = lm::LanguageModeling::load(c, run, weights)?;
                let input = "token ids [T, B] (int64), from `text`: clean, tokenize, look up";
                (
                    t.model.to_onnx(options)?,
                    t.model.rnn().config().clone(),
                    input,
                )
            }
            AnyConfig::Classify(c) => {
                let t = classify::Classify::load(c, run, weights)?;
                let input = "token ids [T, B] (int64, padded), from `text`: clean, tokenize, \
                             look up; `logits` [B, C] index `classes`";
                (
                    t.model.to_onnx(options)?,
                    t.model.rnn().config().clone(),
                    input,
                )
            }
            AnyConfig::Forecast(c) => {
                let t = forecast::Forecast::load(c, run, weights)?;
                let input = "the last window of the series [T, B, I] (float), transformed and \
                             scaled as `series` says; `forecast` [B, horizon, targets] is in \
                             the same scaled units";
                (
                    t.model.to_onnx(options)?,
                    t.model.rnn().config().clone(),
                    input,
                )
            }
            AnyConfig::Audio(c) => {
                let t = audio::Audio::load(c, run, weights)?;
                let input = "features [T, B, I] (float) from the recording, as `audio` says \
                             (sample rate, frames, mel/MFCC, normalization); `logits` [B, C] \
                             index `classes`";
                (
                    t.model.to_onnx(options)?,
                    t.model.rnn().config().clone(),
                    input,
                )
            }
            AnyConfig::Synthetic(c) => synthetic_model(c, run, weights, options)?,
        };
        let mut model = model;
        model.set_metadata("rnnkit.task", self.kind().name());
        let mut preprocessing = json!({
            "format": "rnnkit-onnx-preprocessing",
            "version": 1,
            "task": self.kind().name(),
            "opset": export::OPSET,
            "recurrence": options.recurrence,
            "inputs": interface(&rnn, input, options),
            "outputs": model.output_names(),
        });
        for (key, file) in RUN_FILES {
            if run.join(file).exists() {
                preprocessing[key] = run.read_json::<Value>(file)?;
            }
        }
        Ok(Exported {
            model,
            preprocessing,
        })
    }
}

/// The graph's inputs in words, with the state's sizes.
fn interface(rnn: &RnnConfig, input: &str, options: &OnnxOptions) -> Value {
    let states = rnn.num_layers * rnn.num_directions();
    let mut v = json!({
        "input": input,
        "h0": format!("[{states}, B, {}] float: zeros, or the last call's h_n to continue", rnn.h_out()),
    });
    if options.lengths {
        v["lengths"] = json!("[B] int64: valid steps of each sequence, 1..=T");
    }
    if rnn.cell.has_cell_state() {
        v["c0"] = json!(format!(
            "[{states}, B, {}] float: zeros, or the last call's c_n",
            rnn.hidden_size
        ));
    }
    v["cell"] = json!(rnn.cell.as_str());
    v["num_layers"] = json!(rnn.num_layers);
    v["bidirectional"] = json!(rnn.bidirectional);
    v["hidden_size"] = json!(rnn.hidden_size);
    v["proj_size"] = json!(rnn.proj_size);
    v
}

/// A synthetic run's model: fresh from the config, its weights from the run.
fn synthetic_model(
    config: &SyntheticConfig,
    run: &RunDir,
    weights: Weights,
    options: &OnnxOptions,
) -> Result<(OnnxModel, RnnConfig, &'static str)> {
    fn load<K: Kind>(config: &SyntheticConfig, run: &RunDir, weights: Weights) -> Result<K::Model>
    where
        K::Model: Module,
    {
        let mut model = K::model(config)?;
        run.load_model(&mut model, weights)?;
        Ok(model)
    }
    Ok(match config.data.kind {
        SyntheticKind::Adding => {
            let m = load::<synthetic::Adding>(config, run, weights)?;
            let input = "[T, B, 2] float: the value and the marker of each step";
            (m.to_onnx(options)?, m.rnn().config().clone(), input)
        }
        SyntheticKind::Copy => {
            let m = load::<synthetic::Copy>(config, run, weights)?;
            let input = "token ids [T, B] (int64): the copy-memory sequence";
            (m.to_onnx(options)?, m.rnn().config().clone(), input)
        }
        SyntheticKind::TemporalOrder => {
            let m = load::<synthetic::Order>(config, run, weights)?;
            let input = "token ids [T, B] (int64): the temporal-order sequence";
            (m.to_onnx(options)?, m.rnn().config().clone(), input)
        }
    })
}
