//! The `rnnkit train` config file: plain data in four sections, every key defaulted, unknown
//! keys rejected. The defaults are the bundled run: a character-level LSTM on the bundled Tiny
//! Shakespeare text, sized to train in about five minutes on two cores.
//!
//! ```toml
//! task = "lm"
//! [data]
//! path = "data/tinyshakespeare/input.txt"
//! [model]
//! hidden_size = 256
//! [train]
//! epochs = 8
//! [train.optimizer]
//! kind = "adam"
//! lr = 0.002
//! ```

use rnnkit::data::text::TextConfig;
use rnnkit::models::LmDropout;
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::train::TrainConfig;
use rnnkit::{CellKind, RnnConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What kind of model a config trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Next-token language model over a text (truncated BPTT over one stream).
    #[default]
    Lm,
    /// A label per text (padded, length-bucketed batches).
    Classify,
    /// The next values of a time series from a window of its past.
    Forecast,
    /// A built-in long-memory task (adding problem, copy memory, temporal order).
    Synthetic,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Lm => "lm",
            Task::Classify => "classify",
            Task::Forecast => "forecast",
            Task::Synthetic => "synthetic",
        })
    }
}

/// A whole `rnnkit train` config. Its `Default` is the bundled run; a config file states only
/// what differs (missing keys, also inside a table, take these defaults: see `merge_defaults`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainFile {
    /// The task. Default `"lm"`.
    pub task: Task,
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
            sample_length: 400,
            sample_prompt: "ROMEO:".into(),
            sample_temperature: 0.8,
        }
    }
}

impl Default for TrainFile {
    /// The bundled run: the sections' defaults, with training settings that suit a character
    /// model (Adam 2e-3, batch 64, 100-step BPTT, clipping at 5, 8 epochs, patience 3).
    fn default() -> Self {
        TrainFile {
            task: Task::Lm,
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

/// The keys that name the variant of an internally tagged enum in a config table.
pub const TAG_KEYS: [&str; 2] = ["kind", "by"];

/// Fills every key missing from `user` with its value in `defaults` (both TOML tables), so a
/// config file, and a table in it, states only what differs. A table standing for an enum
/// variant (`kind = "sgd"` in `[train.optimizer]` against the default `adam`) replaces the
/// default instead of merging with it: tagged enums carry a `kind` key, and a different `kind` starts over from the
/// user's table.
pub fn merge_defaults(defaults: toml::Value, user: toml::Value) -> toml::Value {
    // The tags of rnnkit's internally tagged config enums: `kind` (optimizer, schedule,
    // tokenizer, init) and `by` (the series split). A test below switches each of them.
    match (defaults, user) {
        (toml::Value::Table(mut d), toml::Value::Table(u)) => {
            let is_variant_switch = TAG_KEYS
                .iter()
                .any(|tag| matches!((d.get(*tag), u.get(*tag)), (Some(a), Some(b)) if a != b));
            if is_variant_switch {
                return toml::Value::Table(u);
            }
            for (k, v) in u {
                let merged = match d.remove(&k) {
                    Some(dv) => merge_defaults(dv, v),
                    None => v,
                };
                d.insert(k, merged);
            }
            toml::Value::Table(d)
        }
        (_, user) => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_config_round_trips_through_toml() {
        let cfg = TrainFile::default();
        let text = toml::to_string(&cfg).unwrap();
        let back: TrainFile = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        assert!(text.contains("hidden_size = 256"), "{text}");
    }

    fn parse(text: &str) -> TrainFile {
        let defaults = toml::Value::try_from(TrainFile::default()).unwrap();
        let user: toml::Value = toml::from_str(text).unwrap();
        merge_defaults(defaults, user).try_into().unwrap()
    }

    #[test]
    fn missing_keys_take_the_bundled_defaults_even_inside_a_table() {
        assert_eq!(parse(""), TrainFile::default());
        let cfg = parse("[train]\nepochs = 2\n[model]\nhidden_size = 32\n");
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(
            cfg.train.bptt, 100,
            "the bundled bptt, not TrainConfig's 35"
        );
        assert_eq!(cfg.model.hidden_size, 32);
        assert_eq!(cfg.model.embedding_size, 64);
        let sgd = parse("[train.optimizer]\nkind = \"sgd\"\nlr = 1.0\n");
        assert!(
            matches!(sgd.train.optimizer, OptimizerConfig::Sgd(_)),
            "{sgd:?}"
        );
    }

    #[test]
    fn a_typo_is_an_error() {
        let err = toml::from_str::<TrainFile>("[model]\nhiden_size = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hiden_size"), "{err}");
    }
}
