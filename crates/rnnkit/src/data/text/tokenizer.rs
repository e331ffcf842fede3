//! The tokenizer kinds behind one type, and the config that chooses one.
//!
//! A [`Tokenizer`] turns text into token strings and back; the
//! [`Vocab`](crate::data::text::vocab::Vocab) turns those into ids. The
//! [`TextPipeline`](crate::data::text::pipeline::TextPipeline) holds both, with the cleaning.
//!
//! ```
//! use rnnkit::data::text::tokenizer::Tokenizer;
//! use rnnkit::data::text::word::{WordMode, WordTokenizer};
//!
//! let t = Tokenizer::Word(WordTokenizer::new(WordMode::Punctuation));
//! assert_eq!(t.tokenize("Hi, you.").unwrap(), ["Hi", ",", "you", "."]);
//! assert_eq!(t.kind(), "word");
//! ```

use crate::data::text::bpe::BpeTokenizer;
use crate::data::text::char::CharTokenizer;
use crate::data::text::word::{WordMode, WordTokenizer};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which tokenizer to build when fitting a pipeline (the `tokenizer` table of a config).
///
/// In TOML: `kind = "char"`; `kind = "word"` with `mode = "whitespace"` or `"punctuation"`;
/// `kind = "bpe"` with `vocab_size` and `min_frequency`; `kind = "pretrained"` with `path`.
///
/// ```
/// use rnnkit::data::text::tokenizer::TokenizerConfig;
/// let cfg: TokenizerConfig = serde_json::from_str(r#"{"kind": "bpe", "vocab_size": 1000}"#).unwrap();
/// assert_eq!(cfg, TokenizerConfig::Bpe { vocab_size: 1000, min_frequency: 2 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerConfig {
    /// One token per character ([`CharTokenizer`]).
    Char,
    /// Words ([`WordTokenizer`]).
    Word {
        /// The splitting rules; default [`WordMode::Punctuation`].
        #[serde(default)]
        mode: WordMode,
    },
    /// Byte-level BPE trained on the corpus ([`BpeTokenizer::train`]).
    Bpe {
        /// Target vocabulary size, reserved tokens and the 256 bytes included (≥ 260).
        vocab_size: usize,
        /// Merge only pairs seen at least this often; default 2 (a pair seen once is noise).
        #[serde(default = "default_min_frequency")]
        min_frequency: u64,
    },
    /// A Hugging Face `tokenizer.json` ([`BpeTokenizer::from_file`]); it is copied into the saved
    /// pipeline, so the file is needed only when fitting.
    Pretrained {
        /// The `tokenizer.json` file.
        path: PathBuf,
    },
}

/// Default of [`TokenizerConfig::Bpe::min_frequency`].
fn default_min_frequency() -> u64 {
    2
}

impl Default for TokenizerConfig {
    /// [`TokenizerConfig::Char`]: the char-rnn setting, which needs no choices and loses nothing.
    fn default() -> Self {
        TokenizerConfig::Char
    }
}

/// A tokenizer of any kind: text to token strings and back.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// Characters.
    Char(CharTokenizer),
    /// Words.
    Word(WordTokenizer),
    /// A Hugging Face tokenizer (byte-level BPE when trained here).
    Bpe(BpeTokenizer),
}

impl Tokenizer {
    /// The token strings of `text`. Only a loaded Hugging Face tokenizer can fail.
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>> {
        match self {
            Tokenizer::Char(t) => Ok(t.tokenize(text)),
            Tokenizer::Word(t) => Ok(t.tokenize(text)),
            Tokenizer::Bpe(t) => t.tokenize(text),
        }
    }

    /// Text from token strings: exact for characters and byte-level BPE, approximate for words.
    pub fn detokenize<S: AsRef<str>>(&self, tokens: &[S]) -> Result<String> {
        match self {
            Tokenizer::Char(t) => Ok(t.detokenize(tokens)),
            Tokenizer::Word(t) => Ok(t.detokenize(tokens)),
            Tokenizer::Bpe(t) => t.detokenize(tokens),
        }
    }

    /// `"char"`, `"word"` or `"bpe"`, as in the saved file.
    pub fn kind(&self) -> &'static str {
        match self {
            Tokenizer::Char(_) => "char",
            Tokenizer::Word(_) => "word",
            Tokenizer::Bpe(_) => "bpe",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_each_kind_and_rejects_unknown_fields() {
        let parse = |s: &str| serde_json::from_str::<TokenizerConfig>(s);
        assert_eq!(parse(r#"{"kind": "char"}"#).unwrap(), TokenizerConfig::Char);
        assert_eq!(
            parse(r#"{"kind": "word"}"#).unwrap(),
            TokenizerConfig::Word {
                mode: WordMode::Punctuation
            }
        );
        assert_eq!(
            parse(r#"{"kind": "word", "mode": "whitespace"}"#).unwrap(),
            TokenizerConfig::Word {
                mode: WordMode::Whitespace
            }
        );
        assert!(parse(r#"{"kind": "word", "mood": "whitespace"}"#).is_err());
        assert!(parse(r#"{"kind": "bpe"}"#).is_err());
        assert!(parse(r#"{"kind": "sentencepiece"}"#).is_err());
    }
}
