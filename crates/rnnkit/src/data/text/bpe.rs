//! Byte-level BPE (subword) tokenization through the Hugging Face `tokenizers` crate.
//!
//! [`BpeTokenizer::train`] learns a byte-level BPE as GPT-2 does: the text is cut at word and
//! space boundaries (GPT-2's regex), each piece is written as its UTF-8 bytes (each byte shown
//! as one printable character, `Ġ` for a space), and merges of frequent adjacent pairs are
//! learned until the vocabulary has `vocab_size` entries. All 256 bytes are in the vocabulary
//! from the start, so every string encodes without an unknown token and decodes back
//! exactly: `detokenize(tokenize(s)) == s` for any `s`. No prefix space is added, for the same
//! reason. The reserved tokens (`<pad>`, `<unk>`, `<bos>`, `<eos>`) get ids 0–3, as in
//! [`crate::data::text::vocab`], and the literal text `<eos>` encodes as that one token.
//!
//! [`BpeTokenizer::from_file`] loads any Hugging Face `tokenizer.json` (BPE, WordPiece,
//! Unigram, with its normalizer and pre-tokenizer); [`BpeTokenizer::save`] writes one that the
//! Python `tokenizers.Tokenizer.from_file` reads. Only a byte-level one round-trips exactly.
//!
//! ```
//! use rnnkit::data::text::bpe::BpeTokenizer;
//!
//! let corpus = ["the cat sat on the mat; the cat ate the rat", "then the cat sat"];
//! let bpe = BpeTokenizer::train(&corpus, 300, 2).unwrap();
//! let tokens = bpe.tokenize("the cat, naïvely<eos>").unwrap();
//! assert_eq!(tokens[..3], ["the", "Ġcat", ","]);
//! assert_eq!(tokens.last().unwrap(), "<eos>");
//! assert_eq!(bpe.detokenize(&tokens).unwrap(), "the cat, naïvely<eos>");
//! assert_eq!(&bpe.tokens()[..4], ["<pad>", "<unk>", "<bos>", "<eos>"]);
//! ```

use crate::data::text::vocab::SPECIAL_TOKENS;
use crate::error::{Error, Result};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Decoder};

/// The number of byte symbols every byte-level BPE starts with.
const BYTES: usize = 256;
/// The largest vocabulary a BPE may be trained to.
const MAX_VOCAB: usize = 1 << 24;

/// A Hugging Face tokenizer: a byte-level BPE trained here, or any loaded `tokenizer.json`.
#[derive(Debug, Clone)]
pub struct BpeTokenizer {
    // Boxed: the Hugging Face tokenizer is large, and `Tokenizer` enums hold this by value.
    inner: Box<tokenizers::Tokenizer>,
}

impl BpeTokenizer {
    /// Trains a byte-level BPE on `texts` until it has `vocab_size` tokens (the 4 reserved
    /// tokens and 256 bytes included), merging only pairs seen at least `min_frequency` times.
    /// Training is deterministic. A small corpus may stop short of `vocab_size`.
    ///
    /// Errors: [`Error::Config`] when `vocab_size` < 260 or > 2^24 (the trainer reserves
    /// memory for the whole vocabulary up front; GPT-2's has 50,257 tokens).
    pub fn train<S: AsRef<str> + Sync>(
        texts: &[S],
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self> {
        let least = BYTES + SPECIAL_TOKENS.len();
        if vocab_size < least {
            return Err(Error::Config(format!(
                "bpe vocab_size must be at least {least} (256 bytes + {} reserved tokens), got \
                 {vocab_size}",
                SPECIAL_TOKENS.len()
            )));
        }
        if vocab_size > MAX_VOCAB {
            return Err(Error::Config(format!(
                "bpe vocab_size must be at most {MAX_VOCAB}, got {vocab_size}"
            )));
        }
        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_decoder(Some(ByteLevelDecoder::default()));
        // Reserved tokens first, so that they take ids 0..4 in this order.
        let specials = SPECIAL_TOKENS
            .iter()
            .map(|t| AddedToken::from(*t, true))
            .collect();
        let trainer = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .show_progress(false)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut trainer = TrainerWrapper::from(trainer);
        inner
            .train(&mut trainer, texts.iter().map(|t| t.as_ref()))
            .map_err(|e| Error::Config(format!("BPE training failed: {e}")))?;
        Ok(BpeTokenizer {
            inner: Box::new(inner),
        })
    }

    /// Loads a Hugging Face `tokenizer.json`.
    ///
    /// Errors: [`Error::Read`] when it cannot be read, [`Error::Format`] naming the file when it
    /// is not a tokenizer this version of `tokenizers` understands.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// A tokenizer from the bytes of a `tokenizer.json` (`name` stands for it in errors).
    ///
    /// # Errors
    /// [`Error::Format`] when it is not a tokenizer this version of `tokenizers` understands.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        // Parsed to a JSON value first: `tokenizers` panics (an `expect` in its decoder's
        // deserializer) on some malformed JSON read straight from bytes, never on a value.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::Format {
                path: name.to_string(),
                msg: format!("not a Hugging Face tokenizer.json: {e}"),
            })?;
        let inner = serde_json::from_value(value).map_err(|e| Error::Format {
            path: name.to_string(),
            msg: format!("not a Hugging Face tokenizer.json: {e}"),
        })?;
        Ok(BpeTokenizer {
            inner: Box::new(inner),
        })
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json` (atomically).
    ///
    /// ```
    /// use rnnkit::data::text::bpe::BpeTokenizer;
    /// let bpe = BpeTokenizer::train(&["abc abc abd"], 262, 1).unwrap();
    /// let path = std::env::temp_dir().join(format!("rnnkit-doc-bpe-{}.json", std::process::id()));
    /// bpe.save(&path).unwrap();
    /// let back = BpeTokenizer::from_file(&path).unwrap();
    /// assert_eq!(back.tokenize("abd").unwrap(), bpe.tokenize("abd").unwrap());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.inner.to_string(true).map_err(|e| Error::Format {
            path: path.display().to_string(),
            msg: format!("cannot serialize the tokenizer: {e}"),
        })?;
        crate::io::write_atomic(path, json.as_bytes())
    }

    /// The tokenizer as the JSON value of a `tokenizer.json`.
    pub(crate) fn to_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(&*self.inner)
            .map_err(|e| Error::Config(format!("cannot serialize the tokenizer: {e}")))
    }

    /// A tokenizer from the JSON value of a `tokenizer.json`; errors name `path`.
    pub(crate) fn from_json(value: serde_json::Value, path: &str) -> Result<Self> {
        let inner = serde_json::from_value(value).map_err(|e| Error::Format {
            path: path.to_owned(),
            msg: format!("the embedded tokenizer.json is not valid: {e}"),
        })?;
        Ok(BpeTokenizer {
            inner: Box::new(inner),
        })
    }

    /// The underlying Hugging Face tokenizer, for everything this wrapper does not expose.
    pub fn as_hf(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The token strings of `text` (byte-level ones for a byte-level BPE).
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Config(format!("the tokenizer cannot encode the text: {e}")))?;
        Ok(encoding.get_tokens().to_vec())
    }

    /// Text from token strings, through the tokenizer's decoder (tokens joined with spaces if it
    /// has none, as Hugging Face does).
    pub fn detokenize<S: AsRef<str>>(&self, tokens: &[S]) -> Result<String> {
        let tokens: Vec<String> = tokens.iter().map(|t| t.as_ref().to_owned()).collect();
        match self.inner.get_decoder() {
            Some(decoder) => decoder
                .decode(tokens)
                .map_err(|e| Error::Config(format!("the tokenizer cannot decode: {e}"))),
            None => Ok(tokens.join(" ")),
        }
    }

    /// All token strings (added tokens included) in the tokenizer's id order.
    pub fn tokens(&self) -> Vec<String> {
        let mut pairs: Vec<(String, u32)> = self.inner.get_vocab(true).into_iter().collect();
        pairs.sort_by_key(|p| p.1);
        pairs.into_iter().map(|p| p.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "low lower lowest newer newest wider widest low low new new";

    #[test]
    fn vocab_size_too_small_is_config_error() {
        let e = BpeTokenizer::train(&[TEXT], 259, 1).unwrap_err();
        assert!(matches!(e, Error::Config(m) if m.contains("260")));
        // Too large: refused before the trainer reserves memory for it.
        let e = BpeTokenizer::train(&[TEXT], 5_000_000_000, 1).unwrap_err();
        assert!(matches!(e, Error::Config(m) if m.contains("at most")));
    }

    #[test]
    fn training_is_deterministic_and_reaches_the_size() {
        let a = BpeTokenizer::train(&[TEXT], 275, 1).unwrap();
        let b = BpeTokenizer::train(&[TEXT], 275, 1).unwrap();
        assert_eq!(a.tokens(), b.tokens());
        assert_eq!(a.tokens().len(), 275);
        // The frequent word became one token.
        assert_eq!(a.tokenize("low").unwrap(), ["low"]);
    }

    #[test]
    fn round_trips_bytes_outside_the_corpus() {
        let bpe = BpeTokenizer::train(&[TEXT], 270, 1).unwrap();
        for s in [
            "",
            "  lead\tand trail \n",
            "日本語 😀 \u{0} \u{7f}",
            "<pad><unk>x",
        ] {
            assert_eq!(bpe.detokenize(&bpe.tokenize(s).unwrap()).unwrap(), s);
        }
    }

    #[test]
    fn bad_tokenizer_json_names_the_file() {
        let dir = std::env::temp_dir().join(format!("rnnkit-bpe-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, "{\"model\": 3}").unwrap();
        let e = BpeTokenizer::from_file(&path).unwrap_err();
        assert!(matches!(&e, Error::Format { path: p, .. } if p.ends_with("tokenizer.json")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
