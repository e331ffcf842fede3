//! The text pipeline: cleaning + tokenizer + vocabulary, fitted once on the training corpus and
//! saved beside the model, so that the model later sees text tokenized exactly as in training.
//!
//! The saved file is JSON:
//!
//! ```text
//! {
//!   "format": "rnnkit-text", "version": 1,
//!   "clean": { "normalization": "none", "lowercase": false, ... },
//!   "tokenizer": { "kind": "char" }            // or "word" with "mode",
//!                                               // or "bpe" with "tokenizer": {tokenizer.json}
//!   "vocab": { "tokens": ["<pad>", "<unk>", "<bos>", "<eos>", ...] }   // index = id
//! }
//! ```
//!
//! For a BPE tokenizer the vocabulary holds every token of the tokenizer, in its id order after
//! the reserved tokens (a BPE trained here has the reserved tokens at 0–3 already, so its ids
//! are the Hugging Face ids); `vocab.min_freq` and `vocab.max_size` apply to the character and
//! word tokenizers only.
//!
//! ```
//! use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
//! use rnnkit::data::text::tokenizer::TokenizerConfig;
//! use rnnkit::data::text::word::WordMode;
//! use rnnkit::data::text::vocab::EOS_ID;
//!
//! let cfg = TextConfig {
//!     tokenizer: TokenizerConfig::Word { mode: WordMode::Whitespace },
//!     ..Default::default()
//! };
//! let corpus = ["the cat sat\nthe dog sat"];
//! let text = TextPipeline::fit(&corpus, &cfg).unwrap();
//! let ids = text.encode_stream(&corpus, true).unwrap();
//! assert_eq!(ids.len(), 8); // 3 words + <eos>, twice
//! assert_eq!(ids[3], EOS_ID);
//! assert_eq!(text.decode(&ids[..3]).unwrap(), "the cat sat");
//! ```

use crate::data::text::bpe::BpeTokenizer;
use crate::data::text::char::CharTokenizer;
use crate::data::text::clean::CleanConfig;
use crate::data::text::load::json_message;
use crate::data::text::tokenizer::{Tokenizer, TokenizerConfig};
use crate::data::text::vocab::{EOS_ID, Vocab, VocabConfig};
use crate::data::text::word::{WordMode, WordTokenizer};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The value of the file's `format` field.
const FORMAT: &str = "rnnkit-text";
/// The file format version this code writes and reads.
const VERSION: u32 = 1;

/// How to build a [`TextPipeline`] (the `text` table of a config).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextConfig {
    /// Cleaning applied before tokenizing; default: none.
    pub clean: CleanConfig,
    /// The tokenizer; default: characters.
    pub tokenizer: TokenizerConfig,
    /// Vocabulary cuts for characters and words; default: every token seen.
    pub vocab: VocabConfig,
}

/// Cleaning, tokenizer and vocabulary: text to ids and back.
#[derive(Debug, Clone)]
pub struct TextPipeline {
    clean: CleanConfig,
    tokenizer: Tokenizer,
    vocab: Vocab,
}

/// The saved form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    format: String,
    version: u32,
    clean: CleanConfig,
    tokenizer: TokenizerFile,
    vocab: Vocab,
}

/// The saved form of a [`Tokenizer`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TokenizerFile {
    Char,
    Word { mode: WordMode },
    Bpe { tokenizer: serde_json::Value },
}

impl TextPipeline {
    /// A pipeline from its parts.
    pub fn new(clean: CleanConfig, tokenizer: Tokenizer, vocab: Vocab) -> Self {
        TextPipeline {
            clean,
            tokenizer,
            vocab,
        }
    }

    /// Fits on a training corpus: cleans each text, builds (or trains, or loads) the tokenizer,
    /// and builds the vocabulary from the training tokens. Fit on the training split only, so
    /// that validation words unseen in training count as `<unk>`, as they will in use.
    pub fn fit<S: AsRef<str> + Sync>(texts: &[S], cfg: &TextConfig) -> Result<Self> {
        let cleaned: Vec<String> = texts.iter().map(|t| cfg.clean.clean(t.as_ref())).collect();
        let (tokenizer, vocab) = match &cfg.tokenizer {
            TokenizerConfig::Char => {
                let t = Tokenizer::Char(CharTokenizer);
                let vocab = counted_vocab(&t, &cleaned, &cfg.vocab)?;
                (t, vocab)
            }
            TokenizerConfig::Word { mode } => {
                let t = Tokenizer::Word(WordTokenizer::new(*mode));
                let vocab = counted_vocab(&t, &cleaned, &cfg.vocab)?;
                (t, vocab)
            }
            TokenizerConfig::Bpe {
                vocab_size,
                min_frequency,
            } => {
                let bpe = BpeTokenizer::train(&cleaned, *vocab_size, *min_frequency)?;
                let vocab = Vocab::from_tokens(bpe.tokens());
                (Tokenizer::Bpe(bpe), vocab)
            }
            TokenizerConfig::Pretrained { path } => {
                let bpe = BpeTokenizer::from_file(path)?;
                let vocab = Vocab::from_tokens(bpe.tokens());
                (Tokenizer::Bpe(bpe), vocab)
            }
        };
        Ok(TextPipeline {
            clean: cfg.clean.clone(),
            tokenizer,
            vocab,
        })
    }

    /// The cleaning config.
    pub fn clean_config(&self) -> &CleanConfig {
        &self.clean
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The vocabulary; its `len()` is the model's `num_embeddings`.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The token strings of `text`, after cleaning.
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>> {
        self.tokenizer.tokenize(&self.clean.clean(text))
    }

    /// The ids of `text`: clean, tokenize, look up (unknown tokens → `<unk>`).
    ///
    /// ```
    /// use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
    /// let text = TextPipeline::fit(&["abc"], &TextConfig::default()).unwrap();
    /// assert_eq!(text.encode("cab!").unwrap(), vec![6, 4, 5, 1]); // '!' unseen: <unk>
    /// ```
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.vocab.lookup_indices(&self.tokenize(text)?))
    }

    /// Text from ids (reserved ids appear as their token text, e.g. `<eos>`). Exact inverse of
    /// [`TextPipeline::encode`] for a byte-level BPE, and for characters when cleaning is off
    /// and every character is in the vocabulary. An id out of range is an [`Error::Config`].
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.detokenize(&self.vocab.lookup_tokens(ids)?)
    }

    /// Encodes a corpus into one stream of ids for a language model.
    ///
    /// With `add_eos`, each line of each text is encoded on its own and followed by `<eos>`, the
    /// line's newline itself dropped (every line, blank ones included, and no extra line after a
    /// final newline: PyTorch's word_language_model reads PTB and WikiText-2 this way).
    /// Without, each text is encoded whole, newlines included where the tokenizer keeps them.
    pub fn encode_stream<S: AsRef<str>>(&self, texts: &[S], add_eos: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for text in texts {
            let cleaned = self.clean.clean(text.as_ref());
            if add_eos {
                for line in cleaned.lines() {
                    ids.extend(self.vocab.lookup_indices(&self.tokenizer.tokenize(line)?));
                    ids.push(EOS_ID);
                }
            } else {
                ids.extend(
                    self.vocab
                        .lookup_indices(&self.tokenizer.tokenize(&cleaned)?),
                );
            }
        }
        Ok(ids)
    }

    /// Writes the pipeline as JSON (see the [module docs](self)), atomically.
    ///
    /// ```
    /// use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
    /// let text = TextPipeline::fit(&["hello world"], &TextConfig::default()).unwrap();
    /// let path = std::env::temp_dir().join(format!("rnnkit-doc-text-{}.json", std::process::id()));
    /// text.save(&path).unwrap();
    /// let back = TextPipeline::load(&path).unwrap();
    /// assert_eq!(back.encode("low").unwrap(), text.encode("low").unwrap());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn save(&self, path: &Path) -> Result<()> {
        let tokenizer = match &self.tokenizer {
            Tokenizer::Char(_) => TokenizerFile::Char,
            Tokenizer::Word(w) => TokenizerFile::Word { mode: w.mode },
            Tokenizer::Bpe(b) => TokenizerFile::Bpe {
                tokenizer: b.to_json()?,
            },
        };
        let file = PipelineFile {
            format: FORMAT.into(),
            version: VERSION,
            clean: self.clean.clone(),
            tokenizer,
            vocab: self.vocab.clone(),
        };
        let json = serde_json::to_string_pretty(&file).map_err(|e| Error::Format {
            path: path.display().to_string(),
            msg: format!("cannot serialize the text pipeline: {e}"),
        })?;
        crate::io::write_atomic(path, json.as_bytes())
    }

    /// Reads a pipeline written by [`TextPipeline::save`].
    ///
    /// Errors: [`Error::Io`] when unreadable; [`Error::Data`] naming the file and line when it
    /// is not valid JSON of this layout (a bad vocabulary included); [`Error::Format`] when it
    /// is another kind of file or version.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: name.clone(),
            source,
        })?;
        // Check the header first, so that a wrong file gets a clear message.
        let head: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| json_error(&name, &e))?;
        let format = head.get("format").and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            return Err(Error::Format {
                path: name,
                msg: format!(
                    "not an rnnkit text pipeline (\"format\" is {format:?}, expected \"{FORMAT}\"); \
                     pass the file written by TextPipeline::save"
                ),
            });
        }
        let version = head.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(VERSION)) {
            return Err(Error::Format {
                path: name,
                msg: format!(
                    "text pipeline version {version:?} is not supported (this build reads \
                     {VERSION}); re-fit and save with this version"
                ),
            });
        }
        let file: PipelineFile =
            serde_json::from_slice(&bytes).map_err(|e| json_error(&name, &e))?;
        let tokenizer = match file.tokenizer {
            TokenizerFile::Char => Tokenizer::Char(CharTokenizer),
            TokenizerFile::Word { mode } => Tokenizer::Word(WordTokenizer::new(mode)),
            TokenizerFile::Bpe { tokenizer } => {
                Tokenizer::Bpe(BpeTokenizer::from_json(tokenizer, &name)?)
            }
        };
        Ok(TextPipeline {
            clean: file.clean,
            tokenizer,
            vocab: file.vocab,
        })
    }
}

/// Counts the tokens of the cleaned texts and builds a vocabulary.
fn counted_vocab(t: &Tokenizer, cleaned: &[String], cfg: &VocabConfig) -> Result<Vocab> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in cleaned {
        for token in t.tokenize(text)? {
            *counts.entry(token).or_insert(0) += 1;
        }
    }
    Vocab::from_counts(&counts, cfg)
}

/// A JSON error in a pipeline file as [`Error::Data`] at its line.
fn json_error(name: &str, e: &serde_json::Error) -> Error {
    Error::data(
        name,
        format!("line {}, column {}", e.line(), e.column()),
        format!(
            "not a valid text pipeline file: {}; re-create it with TextPipeline::save",
            json_message(e)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::text::vocab::UNK_ID;

    #[test]
    fn char_pipeline_cuts_rare_characters() {
        let cfg = TextConfig {
            vocab: VocabConfig {
                min_freq: 2,
                max_size: None,
            },
            ..Default::default()
        };
        let text = TextPipeline::fit(&["aab", "ac"], &cfg).unwrap();
        assert_eq!(text.vocab().len(), 5);
        assert_eq!(text.encode("abc").unwrap(), vec![4, UNK_ID, UNK_ID]);
    }

    #[test]
    fn cleaning_is_applied_before_encoding() {
        let cfg = TextConfig {
            clean: CleanConfig {
                lowercase: true,
                ..Default::default()
            },
            tokenizer: TokenizerConfig::Word {
                mode: WordMode::Punctuation,
            },
            ..Default::default()
        };
        let text = TextPipeline::fit(&["The cat."], &cfg).unwrap();
        assert_eq!(
            text.encode("THE CAT.").unwrap(),
            text.encode("the cat.").unwrap()
        );
        assert!(!text.encode("THE").unwrap().contains(&UNK_ID));
    }

    #[test]
    fn stream_adds_eos_per_line_blank_lines_included() {
        let cfg = TextConfig {
            tokenizer: TokenizerConfig::Word {
                mode: WordMode::Whitespace,
            },
            ..Default::default()
        };
        let corpus = [" a b \n \nc\n"];
        let text = TextPipeline::fit(&corpus, &cfg).unwrap();
        let ids = text.encode_stream(&corpus, true).unwrap();
        let (a, b, c) = (
            text.vocab().index("a"),
            text.vocab().index("b"),
            text.vocab().index("c"),
        );
        assert_eq!(ids, vec![a, b, EOS_ID, EOS_ID, c, EOS_ID]);
        assert_eq!(text.encode_stream(&corpus, false).unwrap(), vec![a, b, c]);
    }

    #[test]
    fn decode_rejects_out_of_range_ids() {
        let text = TextPipeline::fit(&["ab"], &TextConfig::default()).unwrap();
        assert!(matches!(text.decode(&[6]), Err(Error::Config(_))));
    }
}
