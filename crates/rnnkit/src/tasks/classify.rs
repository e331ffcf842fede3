//! `task = "classify"`: labelled texts → stratified train/valid/test split → text pipeline
//! fitted on the training texts → length-bucketed padded batches → embedding + recurrent
//! stack + pooling + linear head → test accuracy, macro-F1 and a confusion matrix.
//!
//! Beside the common run files it writes `text.json` (tokenizer and vocabulary),
//! `classes.json` (class names in id order), `split.tsv` (split, class, text per line, so a
//! peer can train on exactly the same examples), `metrics.json` and `plots/confusion.png`.

use super::OutputPlace;
use super::trained::OUTPUT_BATCH;
use super::{
    Evaluate, EvaluateOptions, Observer, Outcome, Predict, RunOutput, Scored, Splits, Task,
    TaskConfig, TaskKind, bundled_or_given,
};
use crate::data::Batches;
use crate::data::batch::{BatcherConfig, ClassBatches, Example, PadConfig, stratified_split};
use crate::data::text::labelled::LabelledTexts;
use crate::data::text::{Document, TableConfig, TextConfig, TextPipeline};
use crate::error::{Error, Result, ResultExt};
use crate::io::TensorFile;
use crate::models::{InputSpec, Pooling, SeqInput, SequenceClassifier};
use crate::optim::{AdamConfig, OptimizerConfig};
use crate::resources::{MemoryEstimate, TrainingShape, training_estimate};
use crate::run::{ReportSummary, RunDir, Weights};
use crate::train::confusion::{ConfusionMatrix, argmax};
use crate::train::{RunSummary, TrainConfig};
use crate::{CellKind, RnnConfig};
use ndarray::{Array2, ArrayD};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A `task = "classify"` config. Its `Default` classifies the bundled surnames by language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyConfig {
    /// `"classify"`.
    pub task: TaskKind,
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
    /// direction's final state), `"mean"`, `"max"` or `"attention"` (learned weights).
    /// Default last.
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

impl Default for ClassifyConfig {
    /// The bundled surname classifier: characters → 64-wide embedding → LSTM 128 → 18
    /// languages; Adam 2e-3, batches of 64, 30 epochs with patience 5.
    fn default() -> Self {
        ClassifyConfig {
            task: TaskKind::Classify,
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

impl TaskConfig for ClassifyConfig {
    const ABOUT_DEFAULT: &'static str = "surnames to their language, from the bundled data/names";

    fn train(&self) -> &TrainConfig {
        &self.train
    }

    fn output(&self) -> OutputPlace<'_> {
        self.output.place()
    }
}

impl ClassifyConfig {
    /// The table columns the config names.
    pub fn table(&self) -> TableConfig {
        TableConfig {
            text_column: self.data.text_column.clone(),
            label_column: Some(self.data.label_column.clone()),
            ..Default::default()
        }
    }
}

/// Trains (or resumes) a classifier per `config` in `run`.
///
/// # Errors
/// As [`super::train`].
pub fn train(
    config: &ClassifyConfig,
    run: &RunDir,
    resuming: bool,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    super::train::<Classify>(config, run, resuming, observer)
}

/// Scores the classifier of `run` (see [`super::evaluate`]).
///
/// # Errors
/// As [`super::evaluate`].
pub fn evaluate(
    config: &ClassifyConfig,
    run: &RunDir,
    options: &EvaluateOptions,
) -> Result<Scored<ClassifyMetrics>> {
    super::evaluate::<Classify>(config, run, options)
}

/// A classification run's data: the texts, the split, the pipeline and the batches.
pub struct Classify {
    data: LabelledTexts,
    data_path: PathBuf,
    sizes: [usize; 3],
    /// Tokens in the longest example.
    longest: usize,
    text: TextPipeline,
    train: ClassBatches,
    valid: ClassBatches,
    test: Option<ClassBatches>,
}

/// The classifier `config` describes, with fresh weights.
///
/// # Errors
/// A model config that cannot be built.
pub fn build_model(
    config: &ClassifyConfig,
    vocab: usize,
    classes: usize,
) -> Result<SequenceClassifier> {
    let spec = InputSpec::Tokens {
        vocab,
        padding_idx: Some(0),
    };
    let m = &config.model;
    SequenceClassifier::new(spec, m.rnn(), classes, m.pooling, config.train.seed)
}

/// Labelled texts as examples, tokenized by `text`.
///
/// # Errors
/// A text the pipeline cannot encode.
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

impl Task for Classify {
    const KIND: TaskKind = TaskKind::Classify;
    type Config = ClassifyConfig;
    type Model = SequenceClassifier;

    fn prepare(config: &ClassifyConfig, run: &RunDir, resuming: bool) -> Result<Self> {
        let d = &config.data;
        let (v, t) = (d.valid_fraction, d.test_fraction);
        if !(v > 0.0 && t >= 0.0 && v + t < 1.0) {
            return Err(Error::Config(format!(
                "data.valid_fraction = {v} and data.test_fraction = {t}: need valid_fraction \
                 > 0, test_fraction ≥ 0 and their sum below 1"
            )));
        }
        let path = bundled_or_given(&d.path);
        let data = LabelledTexts::load(&path, &config.table(), None).with_context(|| {
            format!(
                "reading the labelled texts (data.path = {})",
                d.path.display()
            )
        })?;
        if data.classes.len() < 2 {
            return Err(Error::Config(format!(
                "{}: one class ({}) only; a classifier needs at least two",
                path.display(),
                data.classes.join("")
            )));
        }
        let parts = stratified_split(&data.labels, &[1.0 - v - t, v, t], config.train.seed)?;
        let (tr, va, te) = (&parts[0], &parts[1], &parts[2]);
        let text_path = run.join("text.json");
        let text = if resuming {
            TextPipeline::load(&text_path)?
        } else {
            let train_texts: Vec<&str> = tr.iter().map(|&k| data.texts[k].as_str()).collect();
            let text = TextPipeline::fit(&train_texts, &d.text)?;
            text.save(&text_path)?;
            write_split(run, &data, [("train", tr), ("valid", va), ("test", te)])?;
            run.write_json("classes.json", &data.classes)?;
            text
        };
        let pad = PadConfig::default();
        let batching = BatcherConfig {
            batch_size: config.train.batch_size,
            bucket_size: d.bucket_size,
            seed: config.train.seed,
            ..Default::default()
        };
        let eval = config.train.eval_batch_size;
        let [train, valid, test] = [tr, va, te].map(|idx| examples(&text, &data, idx));
        let (train, valid, test) = (train?, valid?, test?);
        let longest = [&train, &valid, &test]
            .iter()
            .flat_map(|set| set.iter().map(|e| e.ids.len()))
            .max()
            .unwrap_or(0);
        let train = ClassBatches::new(train, batching, pad.clone())?;
        let valid = ClassBatches::in_order(valid, eval, pad.clone())?;
        let test = if te.is_empty() {
            None
        } else {
            Some(ClassBatches::in_order(test, eval, pad)?)
        };
        Ok(Classify {
            longest,
            sizes: [tr.len(), va.len(), te.len()],
            data,
            data_path: path,
            text,
            train,
            valid,
            test,
        })
    }

    fn describe(&self, config: &ClassifyConfig) -> String {
        let m = &config.model;
        format!(
            "data {}: {} examples in {} classes, train {} / valid {} / test {}, vocabulary \
             {}; padding with bucketing {:.1}%\nmodel {} {}x{} (embedding {}{}, pooling {})",
            self.data_path.display(),
            self.data.len(),
            self.data.classes.len(),
            self.sizes[0],
            self.sizes[1],
            self.sizes[2],
            self.text.vocab().len(),
            100.0 * self.train.padding_fraction(0),
            m.cell,
            m.num_layers,
            m.hidden_size,
            m.embedding_size,
            if m.bidirectional {
                ", bidirectional"
            } else {
                ""
            },
            format!("{:?}", m.pooling).to_lowercase(),
        )
    }

    fn model(&self, config: &ClassifyConfig) -> Result<SequenceClassifier> {
        build_model(config, self.text.vocab().len(), self.data.classes.len())
    }

    fn memory(&self, config: &ClassifyConfig) -> MemoryEstimate {
        let rnn = config.model.rnn();
        let (vocab, classes) = (self.text.vocab().len(), self.data.classes.len());
        let out = rnn.output_size() as f64;
        training_estimate(&TrainingShape {
            rnn: &rnn,
            other_params: vocab as f64 * config.model.embedding_size as f64
                + classes as f64 * (out + 1.0),
            optimizer: &config.train.optimizer,
            batch: config.train.batch_size.min(self.sizes[0]),
            eval_batch: (config.train.eval_batch_size).min(self.sizes[1].max(self.sizes[2])),
            steps: self.longest,
            outputs_per_step: 0,
            data_bytes: 0.0,
        })
    }

    fn splits(&self) -> Splits<'_, SequenceClassifier> {
        Splits {
            train: &self.train,
            valid: &self.valid,
            test: self.test.as_ref().map(|t| t as _),
        }
    }

    fn loss_name(&self) -> String {
        "cross-entropy (nats/example)".into()
    }

    fn throughput(&self, summary: &RunSummary, seconds: f64, _counted: u64) -> (f64, String) {
        (
            self.sizes[0] as f64 * summary.epochs.max(1) as f64 / seconds.max(1e-9),
            "examples/s (training epochs over wall time)".into(),
        )
    }

    fn valid_metrics(&self, model: &SequenceClassifier) -> Result<Vec<(String, f64)>> {
        let m = ConfusionMatrix::of_classifier(model, &self.valid.epoch(0)?)?;
        Ok(vec![
            ("accuracy".into(), m.accuracy()),
            ("macro_f1".into(), m.macro_f1()),
        ])
    }

    fn finish(
        &self,
        _config: &ClassifyConfig,
        run: &RunDir,
        model: &SequenceClassifier,
        summary: &RunSummary,
        report: &mut ReportSummary,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let classes = &self.data.classes;
        report.task = format!("classify ({} classes)", classes.len());
        let Some(test) = &self.test else {
            return Ok(());
        };
        let m = ConfusionMatrix::of_classifier(model, &test.epoch(0)?)?;
        // A run stopped before its end (train.max_steps, Ctrl-C) was not scored by the
        // trainer: score the weights it ends with, as the confusion matrix does.
        let test_loss = match summary.test {
            Some(e) => e.loss,
            None => crate::train::evaluate(model, test)?.loss,
        };
        for (name, value) in [
            ("test accuracy", format!("{:.4}", m.accuracy())),
            ("test macro-F1", format!("{:.4}", m.macro_f1())),
            ("test loss (nats)", format!("{test_loss:.4}")),
            ("test examples", m.total().to_string()),
        ] {
            report.test_metrics.push((name.into(), value));
        }
        #[cfg(feature = "plot")]
        {
            let png = run.plots_dir().join("confusion.png");
            crate::plot::ConfusionMatrixChart::new(
                format!(
                    "test split: accuracy {:.3}, macro-F1 {:.3} (rows: true class, \
                     row-normalized)",
                    m.accuracy(),
                    m.macro_f1()
                ),
                &m.counts,
                classes,
            )
            .normalize(true)
            .size(1100, 800)
            .save_png(&png)
            .context("drawing the confusion matrix")?;
        }
        let metrics = serde_json::json!({
            "accuracy": m.accuracy(), "macro_f1": m.macro_f1(), "test_loss": test_loss,
            "test_examples": m.total(), "best_val": summary.best_val, "epochs": summary.epochs,
            "seconds": report.wall_seconds, "classes": classes,
            "f1_per_class": classes.iter().enumerate().map(|(c, n)| (n.clone(), m.f1(c)))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "confusion": &m.counts,
        });
        run.write_json("metrics.json", &metrics)?;
        observer.note(&format!(
            "test: accuracy {:.4}, macro-F1 {:.4}, loss {test_loss:.4} ({} examples)",
            m.accuracy(),
            m.macro_f1(),
            m.total()
        ));
        Ok(())
    }
}

/// `split.tsv`: split, class and text of every example, one per line.
fn write_split(run: &RunDir, data: &LabelledTexts, parts: [(&str, &Vec<usize>); 3]) -> Result<()> {
    let mut out = String::new();
    for (split, idx) in parts {
        for &k in idx {
            let text = data.texts[k].replace(['\t', '\n'], " ");
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{split}\t{}\t{text}", data.classes[data.labels[k]]);
        }
    }
    run.write_text("split.tsv", &out)?;
    Ok(())
}

/// A trained classifier with what it needs to read new text.
pub struct LoadedClassifier {
    /// The run's config.
    pub config: ClassifyConfig,
    /// Its tokenizer and vocabulary.
    pub text: TextPipeline,
    /// Class names in id order.
    pub classes: Vec<String>,
    /// The model with the run's `which` weights.
    pub model: SequenceClassifier,
}

impl LoadedClassifier {
    /// Loads the classifier of a `task = "classify"` run directory.
    ///
    /// # Errors
    /// Missing or unreadable run files, weights of another shape.
    pub fn load(run: &RunDir, config: ClassifyConfig, which: Weights) -> Result<Self> {
        let text = TextPipeline::load(&run.join("text.json"))?;
        let classes: Vec<String> = run.read_json("classes.json")?;
        let mut model = build_model(&config, text.vocab().len(), classes.len())?;
        run.load_model(&mut model, which)?;
        Ok(LoadedClassifier {
            config,
            text,
            classes,
            model,
        })
    }

    /// Refuses texts whose batch would not fit in memory (each step of each layer keeps at
    /// least its input and output), naming the longest: a huge line is an error, not an
    /// abort.
    fn check_fits(&self, examples: &[Example]) -> Result<()> {
        let Some((k, longest)) = examples
            .iter()
            .enumerate()
            .map(|(k, e)| (k, e.ids.len()))
            .max_by_key(|&(_, n)| n)
        else {
            return Ok(());
        };
        let rnn = self.config.model.rnn();
        let per_step = rnn.input_size as f64 + 2.0 * (rnn.num_layers * rnn.output_size()) as f64;
        let rows = self.config.train.eval_batch_size.min(examples.len()) as f64;
        let mut m = MemoryEstimate::default();
        m.add("activations", rows * longest as f64 * per_step * 4.0);
        m.check().map_err(|e| {
            Error::Config(format!(
                "text {} is {longest} tokens long, too long to classify here: {e}",
                k + 1
            ))
        })
    }

    /// Class probabilities `[N, C]` of `texts`, in their order.
    ///
    /// # Errors
    /// A text the pipeline cannot encode.
    pub fn probabilities(&self, texts: &[String]) -> Result<Array2<f32>> {
        let data = LabelledTexts {
            texts: texts.to_vec(),
            labels: vec![0; texts.len()],
            classes: self.classes.clone(),
        };
        let idx: Vec<usize> = (0..texts.len()).collect();
        let examples = examples(&self.text, &data, &idx)?;
        self.check_fits(&examples)?;
        let batches = ClassBatches::in_order(
            examples,
            self.config.train.eval_batch_size,
            PadConfig::default(),
        )?;
        let mut out = Array2::zeros((texts.len(), self.classes.len()));
        for b in batches.epoch(0)? {
            let logits = self
                .model
                .predict(SeqInput::of_batch(&b), Some(&b.lengths))?;
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

/// A classifier's scores on labelled texts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassifyMetrics {
    /// `"classify"`.
    pub task: TaskKind,
    /// What was scored: the file, or `the run's test split`.
    pub data: String,
    /// Texts scored.
    pub examples: usize,
    /// Fraction classified right.
    pub accuracy: f64,
    /// F1 averaged over the classes, each weighing the same.
    pub macro_f1: f64,
    /// Mean cross-entropy of the true class (nats per text).
    pub loss_nats_per_example: f64,
    /// F1 of each class by name.
    pub f1_per_class: BTreeMap<String, f64>,
}

/// What [`Predict`] asks a classifier.
#[derive(Clone, Copy, Debug)]
pub struct ClassifyQuery<'q> {
    /// The texts.
    pub texts: &'q [String],
    /// How many of the most likely classes to give per text (clamped to 1..=classes).
    pub top: usize,
}

/// The `top` most likely classes of a text with their probabilities, most likely first.
pub type TopClasses = Vec<(String, f32)>;

impl Evaluate for Classify {
    type Trained = LoadedClassifier;
    type Data = LabelledTexts;
    type Metrics = ClassifyMetrics;

    fn quantize(trained: &mut LoadedClassifier) -> &'static str {
        trained.model.quantize()
    }

    fn load(config: &ClassifyConfig, run: &RunDir, which: Weights) -> Result<LoadedClassifier> {
        LoadedClassifier::load(run, config.clone(), which)
    }

    fn eval_data(
        trained: &LoadedClassifier,
        run: &RunDir,
        path: Option<&Path>,
    ) -> Result<(LabelledTexts, String)> {
        Ok(match path {
            Some(p) => (
                LabelledTexts::load(p, &trained.config.table(), Some(&trained.classes))?,
                p.display().to_string(),
            ),
            None => (
                test_split(run, &trained.classes)?,
                "the run's test split".into(),
            ),
        })
    }

    fn score(
        trained: &LoadedClassifier,
        data: &LabelledTexts,
        source: String,
    ) -> Result<ClassifyMetrics> {
        let probs = trained.probabilities(&data.texts)?;
        let mut m = ConfusionMatrix::new(trained.classes.len());
        let mut nll = 0.0f64;
        for (row, &y) in probs.rows().into_iter().zip(&data.labels) {
            m.add(y, argmax(row.iter().copied()));
            nll -= f64::from(row[y].max(f32::MIN_POSITIVE)).ln();
        }
        Ok(ClassifyMetrics {
            task: TaskKind::Classify,
            data: source,
            examples: data.len(),
            accuracy: m.accuracy(),
            macro_f1: m.macro_f1(),
            loss_nats_per_example: nll / data.len().max(1) as f64,
            f1_per_class: (trained.classes.iter().enumerate())
                .map(|(c, n)| (n.clone(), m.f1(c)))
                .collect(),
        })
    }

    /// `input_ids` `[T, B]` i64, `lengths` `[B]` i64 and `logits` `[B, C]` of the first 64
    /// texts.
    fn outputs(trained: &LoadedClassifier, data: &LabelledTexts) -> Result<TensorFile> {
        let n = data.len().min(OUTPUT_BATCH);
        let idx: Vec<usize> = (0..n).collect();
        let batches = ClassBatches::in_order(
            examples(&trained.text, data, &idx)?,
            OUTPUT_BATCH,
            PadConfig::default(),
        )?;
        let b = batches.epoch(0)?.remove(0);
        let logits = trained
            .model
            .predict(SeqInput::of_batch(&b), Some(&b.lengths))?;
        let mut file = TensorFile::default();
        file.i64
            .insert("input_ids".into(), b.ids.mapv(i64::from).into_dyn());
        let lengths: Vec<i64> = b.lengths.iter().map(|&l| l as i64).collect();
        file.i64.insert(
            "lengths".into(),
            ArrayD::from_shape_vec(vec![lengths.len()], lengths)
                .map_err(|e| Error::Shape(format!("lengths: {e}")))?,
        );
        file.f32.insert("logits".into(), logits.into_dyn());
        Ok(file)
    }
}

impl Predict for Classify {
    type Query<'q> = ClassifyQuery<'q>;
    type Answer = Vec<TopClasses>;

    /// The `top` most likely classes of each text, in the texts' order.
    fn predict(trained: &LoadedClassifier, query: ClassifyQuery<'_>) -> Result<Vec<TopClasses>> {
        let probs = trained.probabilities(query.texts)?;
        let top = query.top.clamp(1, trained.classes.len());
        Ok(probs
            .rows()
            .into_iter()
            .map(|row| {
                let mut order: Vec<usize> = (0..row.len()).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                (order[..top].iter())
                    .map(|&c| (trained.classes[c].clone(), row[c]))
                    .collect()
            })
            .collect())
    }
}

/// The `test` lines of the run's `split.tsv`, labelled with `classes`.
///
/// # Errors
/// No `split.tsv` ([`Error::Read`]), no test line in it ([`Error::Data`]: the run held out no
/// test split), a class the model does not know.
fn test_split(run: &RunDir, classes: &[String]) -> Result<LabelledTexts> {
    let path = run.join("split.tsv");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    let docs: Vec<Document> = text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let mut f = line.splitn(3, '\t');
            match (f.next(), f.next(), f.next()) {
                (Some("test"), Some(label), Some(t)) => Some(Document {
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
        return Err(Error::data(
            path.display().to_string(),
            "",
            "no test examples (data.test_fraction was 0?); give --data",
        ));
    }
    LabelledTexts::from_documents(docs, Some(classes), &path.display().to_string())
}
