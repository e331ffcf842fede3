//! `task = "lm"`: a next-token language model over a text. The text pipeline (cleaning,
//! tokenizer, vocabulary) is fitted on the training part only and saved as `text.json`, so
//! generation tokenizes exactly as training did; the token stream trains with truncated BPTT;
//! the report adds perplexity and a generated sample (`sample.txt`). Afterwards a run is
//! scored on a text or its validation text ([`Evaluate`]) and continues a prompt ([`Predict`],
//! `rnnkit generate`).
//!
//! ```toml
//! task = "lm"
//! [data]
//! path = "data/tinyshakespeare/input.txt"
//! [model]
//! hidden_size = 256
//! [train]
//! epochs = 8
//! ```

use super::OutputPlace;
use super::{
    Evaluate, EvaluateOptions, Observer, Outcome, Predict, Scored, Splits, Task, TaskConfig,
    TaskKind, bundled_or_given,
};
use crate::data::stream::{ChunkLength, StreamBatches};
use crate::data::text::TextConfig;
use crate::data::text::TextPipeline;
use crate::error::{Error, Result, ResultExt};
use crate::generate::{Generator, SamplingConfig};
use crate::io::TensorFile;
use crate::models::{LanguageModel, LmDropout};
use crate::module;
use crate::optim::{AdamConfig, OptimizerConfig};
use crate::resources::{MemoryEstimate, TrainingShape, training_estimate};
use crate::run::{ReportSummary, RunDir, Weights};
use crate::train::{RunSummary, TrainConfig};
use crate::{CellKind, RnnConfig};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole `task = "lm"` config. Its `Default` is the bundled run: a character-level LSTM on
/// the bundled Tiny Shakespeare text, sized to train in about five minutes on two cores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmConfig {
    /// The task. Default `"lm"`.
    pub task: TaskKind,
    /// Where the data comes from and how it is prepared.
    pub data: DataSection,
    /// The network.
    pub model: ModelSection,
    /// Optimization: rnnkit's `TrainConfig` (epochs, batch_size, bptt, clip_norm,
    /// optimizer, schedule, seed, patience, ...).
    pub train: TrainConfig,
    /// Where results go, and what is shown at the end.
    pub output: OutputSection,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// The text file. Default: the bundled `data/tinyshakespeare/input.txt`.
    pub path: PathBuf,
    /// The last fraction of the text is validation, unless `valid_path` is given. Default 0.1
    /// (char-rnn's split).
    pub valid_fraction: f64,
    /// A separate validation text (PTB's `ptb.valid.txt`); then all of `path` trains. Default
    /// none.
    pub valid_path: Option<PathBuf>,
    /// A separate test text, scored with the best weights at the end (needs `valid_path`).
    /// Default none.
    pub test_path: Option<PathBuf>,
    /// Append `<eos>` at each line end (word-level corpora such as WikiText-2). Default false.
    pub eos_per_line: bool,
    /// Cleaning, tokenizer and vocabulary. Default: characters, no cleaning.
    pub text: TextConfig,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            path: PathBuf::from("data/tinyshakespeare/input.txt"),
            valid_fraction: 0.1,
            valid_path: None,
            test_path: None,
            eos_per_line: false,
            text: TextConfig::default(),
        }
    }
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// `"lstm"`, `"gru"`, `"rnn_tanh"` or `"rnn_relu"`. Default LSTM.
    pub cell: CellKind,
    /// Embedding size. Default 64 (plenty for 65 characters).
    pub embedding_size: usize,
    /// Hidden units per layer. Default 256: trains in about five minutes on two cores.
    pub hidden_size: usize,
    /// Stacked layers. Default 2.
    pub num_layers: usize,
    /// Dropout between stacked layers. Default 0.2.
    pub dropout: f32,
    /// Share the embedding and decoder matrices (needs `embedding_size` = `hidden_size`).
    /// Default false.
    pub tie_weights: bool,
    /// Regularization around the stack (word, input, output, weight_hh dropout). Default none.
    pub lm_dropout: LmDropout,
    /// Draw every parameter from U(−init_range, init_range) (Zaremba et al.: 0.1 for the small
    /// model, 0.05 for the medium one). Default none: PyTorch's initialization.
    pub init_range: Option<f32>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            cell: CellKind::Lstm,
            embedding_size: 64,
            hidden_size: 256,
            num_layers: 2,
            dropout: 0.2,
            tie_weights: false,
            lm_dropout: LmDropout::default(),
            init_range: None,
        }
    }
}

impl ModelSection {
    /// The recurrent stack's config.
    pub fn rnn(&self) -> RnnConfig {
        RnnConfig::new(self.cell, self.embedding_size, self.hidden_size)
            .num_layers(self.num_layers)
            .dropout(self.dropout)
    }
}

/// `[output]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Parent of run directories. Default `runs`.
    pub dir: PathBuf,
    /// Run directory name; empty means a timestamp (`2026-11-24T12-30-00`). Default empty.
    pub name: String,
    /// Worker threads; 0 means all cores. Default 0.
    pub threads: usize,
    /// Replace a run already in the directory (removing all its files) instead of refusing.
    /// Default false.
    pub overwrite: bool,
    /// Characters (tokens) of the sample generated at the end; 0 for none. Default 400.
    pub sample_length: usize,
    /// The sample's prompt. Default `"ROMEO:"`.
    pub sample_prompt: String,
    /// The sample's temperature. Default 0.8.
    pub sample_temperature: f32,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            dir: PathBuf::from("runs"),
            name: String::new(),
            threads: 0,
            overwrite: false,
            sample_length: 400,
            sample_prompt: "ROMEO:".into(),
            sample_temperature: 0.8,
        }
    }
}

impl Default for LmConfig {
    /// The bundled run: the sections' defaults, with training settings that suit a character
    /// model (Adam 2e-3, batch 64, 100-step BPTT, clipping at 5, 8 epochs, patience 3).
    fn default() -> Self {
        LmConfig {
            task: TaskKind::Lm,
            data: DataSection::default(),
            model: ModelSection::default(),
            output: OutputSection::default(),
            train: TrainConfig {
                epochs: 8,
                batch_size: 64,
                eval_batch_size: 64,
                bptt: 100,
                clip_norm: Some(5.0),
                optimizer: OptimizerConfig::Adam(AdamConfig {
                    lr: 2e-3,
                    ..Default::default()
                }),
                patience: Some(3),
                ..Default::default()
            },
        }
    }
}

impl TaskConfig for LmConfig {
    const ABOUT_DEFAULT: &'static str = "a character LSTM on the bundled Tiny Shakespeare";

    fn train(&self) -> &TrainConfig {
        &self.train
    }

    fn output(&self) -> OutputPlace<'_> {
        OutputPlace {
            dir: &self.output.dir,
            name: &self.output.name,
            threads: self.output.threads,
            overwrite: self.output.overwrite,
        }
    }
}

/// Trains (or resumes) a language model per `config` in `run`.
///
/// # Errors
/// As [`super::train`].
pub fn train(
    config: &LmConfig,
    run: &RunDir,
    resuming: bool,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    super::train::<LanguageModeling>(config, run, resuming, observer)
}

/// Scores the language model of `run` (see [`super::evaluate`]).
///
/// # Errors
/// As [`super::evaluate`].
pub fn evaluate(
    config: &LmConfig,
    run: &RunDir,
    options: &EvaluateOptions,
) -> Result<Scored<LmMetrics>> {
    super::evaluate::<LanguageModeling>(config, run, options)
}

/// A language-model run's data: the fitted pipeline and the three token streams.
pub struct LanguageModeling {
    pipeline: TextPipeline,
    data_path: PathBuf,
    counts: (usize, usize),
    train: StreamBatches,
    valid: StreamBatches,
    test: Option<StreamBatches>,
}

impl LanguageModeling {
    /// The text pipeline fitted on the training text.
    pub fn pipeline(&self) -> &TextPipeline {
        &self.pipeline
    }
}

/// Reads a text of the config (`key` names it in errors).
fn read(path: &Path, key: &str) -> Result<String> {
    crate::data::text::load::read_text(&bundled_or_given(path))
        .with_context(|| format!("reading {key} = {}", path.display()))
}

/// The validation text of `config` when no data is given: `data.valid_path`, else the last
/// `valid_fraction` of `data.path`. Returns (text, what it is).
///
/// # Errors
/// An unreadable file, a fraction outside (0, 1).
pub fn validation_text(config: &LmConfig) -> Result<(String, String)> {
    let d = &config.data;
    match &d.valid_path {
        Some(v) => Ok((
            read(v, "data.valid_path")?,
            format!("the validation file {}", bundled_or_given(v).display()),
        )),
        None => {
            let all = read(&d.path, "data.path")?;
            let (_, valid) = split_text(&all, valid_fraction(d)?);
            Ok((
                valid.to_string(),
                format!(
                    "the validation part of {}",
                    bundled_or_given(&d.path).display()
                ),
            ))
        }
    }
}

fn valid_fraction(d: &DataSection) -> Result<f64> {
    let f = d.valid_fraction;
    if f > 0.0 && f < 1.0 {
        Ok(f)
    } else {
        Err(Error::Config(format!(
            "data.valid_fraction must be in (0, 1), got {f}"
        )))
    }
}

impl Task for LanguageModeling {
    const KIND: TaskKind = TaskKind::Lm;
    const USES_BPTT: bool = true;
    type Config = LmConfig;
    type Model = LanguageModel;

    fn prepare(config: &LmConfig, run: &RunDir, resuming: bool) -> Result<Self> {
        let d = &config.data;
        let data_path = bundled_or_given(&d.path);
        let text = read(&d.path, "data.path")?;
        // With separate validation (and test) files (PTB, WikiText-2) the whole file trains;
        // otherwise its last `valid_fraction` is validation.
        let (valid_owned, test_owned) = match &d.valid_path {
            Some(v) => (
                Some(read(v, "data.valid_path")?),
                d.test_path
                    .as_ref()
                    .map(|t| read(t, "data.test_path"))
                    .transpose()?,
            ),
            None => (None, None),
        };
        let (train_text, valid_text) = match &valid_owned {
            Some(v) => (text.as_str(), v.as_str()),
            None => split_text(&text, valid_fraction(d)?),
        };
        let pipeline_path = run.join("text.json");
        let pipeline = if resuming {
            TextPipeline::load(&pipeline_path)?
        } else {
            let p = TextPipeline::fit(&[train_text], &d.text)?;
            p.save(&pipeline_path)?;
            p
        };
        let eos = d.eos_per_line;
        let train_ids = pipeline.encode_stream(&[train_text], eos)?;
        let valid_ids = pipeline.encode_stream(&[valid_text], eos)?;
        let t = &config.train;
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
        Ok(LanguageModeling {
            pipeline,
            data_path,
            counts: (train_ids.len(), valid_ids.len()),
            train,
            valid,
            test,
        })
    }

    fn describe(&self, config: &LmConfig) -> String {
        let m = &config.model;
        format!(
            "data {}: {} tokens train / {} valid, vocabulary {}; model {} {}x{} (embedding {})",
            self.data_path.display(),
            self.counts.0,
            self.counts.1,
            self.pipeline.vocab().len(),
            m.cell,
            m.num_layers,
            m.hidden_size,
            m.embedding_size,
        )
    }

    fn model(&self, config: &LmConfig) -> Result<LanguageModel> {
        build_model(config, self.pipeline.vocab().len())
    }

    fn memory(&self, config: &LmConfig) -> MemoryEstimate {
        let rnn = config.model.rnn();
        let vocab = self.pipeline.vocab().len();
        let (e, h) = (config.model.embedding_size as f64, rnn.h_out() as f64);
        training_estimate(&TrainingShape {
            rnn: &rnn,
            // The embedding, and the decoder (counted even when tied: a lower bound is not
            // made much lower by it).
            other_params: vocab as f64 * (e + h + 1.0),
            optimizer: &config.train.optimizer,
            batch: config.train.batch_size,
            eval_batch: config.train.eval_batch_size,
            steps: config.train.bptt,
            outputs_per_step: vocab,
            data_bytes: 0.0,
        })
    }

    fn splits(&self) -> Splits<'_, LanguageModel> {
        Splits {
            train: &self.train,
            valid: &self.valid,
            test: self.test.as_ref().map(|t| t as _),
        }
    }

    fn loss_name(&self) -> String {
        "cross-entropy (nats/token)".into()
    }

    fn throughput(&self, _summary: &RunSummary, seconds: f64, counted: u64) -> (f64, String) {
        (
            counted as f64 / seconds.max(1e-9),
            "tokens/s (tokens trained on in this run over its wall time)".into(),
        )
    }

    fn finish(
        &self,
        config: &LmConfig,
        run: &RunDir,
        model: &LanguageModel,
        summary: &RunSummary,
        report: &mut ReportSummary,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        report.task = "language model".into();
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
            observer.note(&format!(
                "test loss {test:.4} nats/token, perplexity {:.2}",
                test.exp()
            ));
        }
        let out = &config.output;
        if out.sample_length > 0 {
            let sample = sample_text(model, &self.pipeline, out, config.train.seed, observer)
                .context("generating the sample")?;
            run.write_text("sample.txt", &sample)?;
            report.samples.push((
                format!(
                    "sample (prompt {:?}, temperature {})",
                    out.sample_prompt, out.sample_temperature
                ),
                sample,
            ));
        }
        Ok(())
    }
}

/// The language model `config` describes for a vocabulary of `vocab`, with fresh weights:
/// PyTorch's initialization or U(−init_range, init_range), the dropout and the tying asked
/// for.
///
/// # Errors
/// A model config that cannot be built (tying needs embedding_size = hidden_size).
pub fn build_model(config: &LmConfig, vocab: usize) -> Result<LanguageModel> {
    let m = &config.model;
    let mut model = LanguageModel::new(vocab, m.rnn(), config.train.seed)?;
    if let Some(a) = m.init_range {
        uniform_init(&mut model, a, config.train.seed)?;
    }
    model
        .set_dropout(m.lm_dropout)
        .context("model.lm_dropout")?;
    if m.tie_weights {
        model.tie().context("model.tie_weights")?;
    }
    Ok(model)
}

/// Draws every parameter from U(−a, a) (Zaremba et al.: 0.1 small, 0.05 medium), seeded.
fn uniform_init(model: &mut LanguageModel, a: f32, seed: u64) -> Result<()> {
    use rand::{Rng, SeedableRng};
    // The range's width 2a must be finite for the sampler.
    if !(a > 0.0 && a <= f32::MAX / 2.0) {
        return Err(Error::Config(format!(
            "model.init_range must be positive and at most {:e} (Zaremba et al. use 0.1 and \
             0.05), got {a}",
            f32::MAX / 2.0
        )));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut tensors = module::named_tensors(model, "");
    for t in tensors.values_mut() {
        t.mapv_inplace(|_| rng.random_range(-a..a));
    }
    module::load_named(model, "", &tensors)
}

/// The truncated-BPTT layout of one split's token stream, or an error naming the split when
/// it is too short for `batch` parallel streams.
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
        return Err(Error::Config(format!(
            "the {split} split has {} tokens, too few for {what} {batch} (need at least {}): \
             lower {what} or give a longer {split} text",
            ids.len(),
            2 * batch
        )));
    }
    StreamBatches::new(ids, batch, length, seed)
}

/// Generates `sample_length` tokens after the prompt, passing them to `observer` as they
/// come; returns prompt + generated text.
fn sample_text(
    model: &LanguageModel,
    pipeline: &TextPipeline,
    out: &OutputSection,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<String> {
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
    observer.text(&format!("\n--- sample ---\n{text}"));
    let decoder = pipeline.stream_decoder_after(&prompt)?;
    generator.generate_text(out.sample_length, decoder, |piece| {
        observer.text(piece);
        text.push_str(piece);
        true
    })?;
    observer.text("\n--------------\n");
    Ok(text)
}

/// `text` cut before its last `fraction` of characters: (training part, validation part).
///
/// ```
/// assert_eq!(rnnkit::tasks::lm::split_text("abcdefghij", 0.2), ("abcdefgh", "ij"));
/// ```
pub fn split_text(text: &str, fraction: f64) -> (&str, &str) {
    let n = text.chars().count();
    let cut_char = ((n as f64) * (1.0 - fraction)) as usize;
    let cut = text
        .char_indices()
        .nth(cut_char)
        .map_or(text.len(), |(i, _)| i);
    text.split_at(cut)
}

/// A trained language model with the text pipeline it was trained with.
pub struct LoadedLanguageModel {
    /// The run's config.
    pub config: LmConfig,
    /// Its cleaning, tokenizer and vocabulary (`text.json`).
    pub pipeline: TextPipeline,
    /// The model with the run's `which` weights.
    pub model: LanguageModel,
}

impl LoadedLanguageModel {
    /// Loads the language model of an `lm` run directory: its config's shapes with `which`
    /// weights.
    ///
    /// # Errors
    /// A missing or unreadable `text.json` or checkpoint, weights of another shape.
    pub fn load(run: &RunDir, config: &LmConfig, which: Weights) -> Result<Self> {
        let pipeline = TextPipeline::load(&run.join("text.json"))?;
        let tensors = run.model_tensors(which)?;
        let mut model = LanguageModel::from_named(config.model.rnn(), &tensors).map_err(|e| {
            Error::Corrupt {
                path: run
                    .checkpoint(which)
                    .unwrap_or_default()
                    .display()
                    .to_string(),
                msg: format!("{e} (was the run's config.toml edited after training?)"),
            }
        })?;
        if config.model.tie_weights {
            model.tie()?;
        }
        Ok(LoadedLanguageModel {
            config: config.clone(),
            pipeline,
            model,
        })
    }
}

/// A language model's scores on a text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LmMetrics {
    /// `"lm"`.
    pub task: TaskKind,
    /// What was scored: the file, or the run's validation text.
    pub data: String,
    /// Tokens in the text.
    pub tokens: usize,
    /// Mean cross-entropy of the next token.
    pub loss_nats_per_token: f64,
    /// The same in bits.
    pub bits_per_token: f64,
    /// exp(loss).
    pub perplexity: f64,
}

/// Tokens of the fixed stretch in [`Scored::outputs`].
const OUTPUT_TOKENS: usize = 256;

impl Evaluate for LanguageModeling {
    type Trained = LoadedLanguageModel;
    /// The text's token stream.
    type Data = Vec<u32>;
    type Metrics = LmMetrics;

    fn quantize(trained: &mut LoadedLanguageModel) -> &'static str {
        trained.model.quantize()
    }

    fn load(config: &LmConfig, run: &RunDir, which: Weights) -> Result<LoadedLanguageModel> {
        LoadedLanguageModel::load(run, config, which)
    }

    /// A text file, or the run's validation text ([`validation_text`]), tokenized as in
    /// training.
    fn eval_data(
        trained: &LoadedLanguageModel,
        _run: &RunDir,
        path: Option<&Path>,
    ) -> Result<(Vec<u32>, String)> {
        let (text, source) = match path {
            Some(p) => (
                crate::data::text::load::read_text(p)?,
                p.display().to_string(),
            ),
            None => validation_text(&trained.config)?,
        };
        let stream = trained
            .pipeline
            .encode_stream(&[text.as_str()], trained.config.data.eos_per_line)?;
        if stream.len() < 2 {
            return Err(Error::data(source, "", "fewer than two tokens to score"));
        }
        Ok((stream, source))
    }

    /// In the training run's evaluation layout; a stream too short for `eval_batch_size`
    /// columns of at least two tokens is scored in fewer columns rather than refused.
    fn score(
        trained: &LoadedLanguageModel,
        stream: &Vec<u32>,
        source: String,
    ) -> Result<LmMetrics> {
        let t = &trained.config.train;
        let columns = t.eval_batch_size.min(stream.len() / 2).max(1);
        let batches = StreamBatches::fixed(stream, columns, t.bptt)?;
        let loss = crate::train::evaluate(&trained.model, &batches)?.loss;
        Ok(LmMetrics {
            task: TaskKind::Lm,
            data: source,
            tokens: stream.len(),
            loss_nats_per_token: loss,
            bits_per_token: loss / std::f64::consts::LN_2,
            perplexity: loss.exp(),
        })
    }

    /// `input_ids` `[T, 1]` i64 and `logits` `[T, 1, V]` of the first 256 tokens.
    fn outputs(trained: &LoadedLanguageModel, stream: &Vec<u32>) -> Result<TensorFile> {
        let n = stream.len().min(OUTPUT_TOKENS);
        let x = Array2::from_shape_vec((n, 1), stream[..n].to_vec())
            .map_err(|e| Error::Shape(format!("input_ids: {e}")))?;
        let logits = trained.model.logits(x.view(), None)?;
        let mut file = TensorFile::default();
        file.i64
            .insert("input_ids".into(), x.mapv(i64::from).into_dyn());
        file.f32.insert("logits".into(), logits.into_dyn());
        Ok(file)
    }
}

/// What [`Predict`] asks a language model: text after a prompt, passed on as it comes.
pub struct Prompt<'q> {
    /// The text to start from, tokenized as in training.
    pub text: &'q str,
    /// Tokens (characters, for a character model) to generate.
    pub length: usize,
    /// Temperature, top-k, top-p and seed; `max_tokens` is set from `length`.
    pub sampling: SamplingConfig,
    /// Receives the prompt, then each generated piece of text as it is decoded; returning
    /// false stops generation (a reader that has gone).
    pub on_text: &'q mut dyn FnMut(&str) -> bool,
}

impl Predict for LanguageModeling {
    type Query<'q> = Prompt<'q>;
    /// Everything went to [`Prompt::on_text`].
    type Answer = ();

    /// Primes the model with the prompt, passes the prompt on, then generates. Decoding
    /// continues the prompt's text, so a byte-level BPE character split over several tokens
    /// comes out whole and a word after the prompt gets its space.
    ///
    /// ```no_run
    /// use rnnkit::generate::SamplingConfig;
    /// use rnnkit::run::{RunDir, Weights};
    /// use rnnkit::tasks::{self, lm::{LanguageModeling, Prompt}};
    ///
    /// # fn main() -> rnnkit::Result<()> {
    /// let run = RunDir::open("runs/shakespeare-char")?;
    /// let config = toml::from_str(&run.read_config()?).expect("the run's resolved config");
    /// let mut text = String::new();
    /// let prompt = Prompt {
    ///     text: "ROMEO:",
    ///     length: 200,
    ///     sampling: SamplingConfig { seed: 1, ..Default::default() },
    ///     on_text: &mut |piece| { text.push_str(piece); true },
    /// };
    /// tasks::predict::<LanguageModeling>(&config, &run, Weights::Best, prompt)?;
    /// println!("{text}");
    /// # Ok(())
    /// # }
    /// ```
    fn predict(trained: &LoadedLanguageModel, prompt: Prompt<'_>) -> Result<()> {
        let sampling = SamplingConfig {
            max_tokens: prompt.length.max(1),
            ..prompt.sampling
        };
        sampling.validate()?;
        let mut generator = Generator::new(&trained.model, sampling)?;
        let ids = trained.pipeline.encode(prompt.text)?;
        generator.prime(&ids)?;
        if !(prompt.on_text)(prompt.text) {
            return Ok(());
        }
        let decoder = trained.pipeline.stream_decoder_after(&ids)?;
        generator.generate_text(prompt.length, decoder, prompt.on_text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_config_trains_a_character_lstm() {
        let c = LmConfig::default();
        assert_eq!(c.task, TaskKind::Lm);
        assert_eq!((c.train.bptt, c.model.hidden_size), (100, 256));
    }

    #[test]
    fn a_short_split_names_itself_and_the_key() {
        let e = stream("validation", &[1, 2, 3], 4, ChunkLength::Fixed(2), 0)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("validation split has 3 tokens") && e.contains("train.eval_batch_size"),
            "{e}"
        );
    }
}
