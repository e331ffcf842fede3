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
use std::sync::OnceLock;
use tokenizers::decoders::DecoderWrapper;

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
///
/// ```
/// use rnnkit::data::text::vocab::UNK_ID;
/// use rnnkit::data::text::{TextConfig, TextPipeline, TokenizerConfig, WordMode};
///
/// # fn main() -> rnnkit::Result<()> {
/// let train = ["the cat sat", "the dog sat down"];
/// let cfg = TextConfig {
///     tokenizer: TokenizerConfig::Word { mode: WordMode::Whitespace },
///     ..Default::default()
/// };
/// let text = TextPipeline::fit(&train, &cfg)?; // the vocabulary comes from `train` only
/// let ids = text.encode("the cat sat")?;
/// assert_eq!(ids.len(), 3);
/// assert_eq!(text.encode("the bird")?[1], UNK_ID); // unseen in training: <unk>
///
/// // The stream a language model trains on: <eos> after each line, as PTB and WikiText read.
/// let stream = text.encode_stream(&train, true)?;
/// assert_eq!(stream.len(), 3 + 1 + 4 + 1);
///
/// // Saved beside a model and loaded back unchanged.
/// let path = std::env::temp_dir().join(format!("rnnkit-doc-text-{}.json", std::process::id()));
/// text.save(&path)?;
/// assert_eq!(TextPipeline::load(&path)?.encode("the dog")?, text.encode("the dog")?);
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
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

    /// A decoder for ids that arrive one at a time (generated text), whose pieces join up to
    /// exactly [`TextPipeline::decode`] of all the ids. Decoding each id alone is right for
    /// characters but not for words (the spaces between them depend on both neighbours) nor for
    /// byte-level BPE (one character can span several tokens). See [`StreamDecoder`].
    ///
    /// ```
    /// use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
    /// use rnnkit::data::text::tokenizer::TokenizerConfig;
    /// let cfg = TextConfig {
    ///     tokenizer: TokenizerConfig::Bpe { vocab_size: 300, min_frequency: 2 },
    ///     ..Default::default()
    /// };
    /// let text = TextPipeline::fit(&["naïve café, naïve café"], &cfg).unwrap();
    /// let ids = text.encode("日本 café").unwrap(); // 日 and 本 are 3 byte tokens each
    /// let mut stream = text.stream_decoder();
    /// let mut pieces = Vec::new();
    /// for &id in &ids {
    ///     pieces.push(stream.push(id).unwrap());
    /// }
    /// pieces.push(stream.finish().unwrap());
    /// assert_eq!(pieces[..3], ["", "", "日"]); // nothing until the character is complete
    /// assert_eq!(pieces.concat(), "日本 café");
    /// ```
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        let mode = match &self.tokenizer {
            Tokenizer::Char(_) | Tokenizer::Word(_) => Mode::Window {
                context: Vec::new(),
                context_len: 0,
            },
            Tokenizer::Bpe(b) => match b.as_hf().get_decoder() {
                Some(DecoderWrapper::ByteLevel(_)) => Mode::Bytes {
                    pending: Vec::new(),
                },
                _ => Mode::Full {
                    ids: Vec::new(),
                    emitted: String::new(),
                },
            },
        };
        StreamDecoder {
            pipeline: self,
            mode,
        }
    }

    /// A [`TextPipeline::stream_decoder`] that continues the text of `prefix` (a prompt's ids):
    /// its pieces join up to what `decode(prefix ++ ids)` has beyond `decode(prefix)`, so a
    /// word after the prompt gets its leading space. An id out of range is an
    /// [`Error::Config`].
    ///
    /// ```
    /// use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
    /// use rnnkit::data::text::tokenizer::TokenizerConfig;
    /// use rnnkit::data::text::word::WordMode;
    /// let cfg = TextConfig {
    ///     tokenizer: TokenizerConfig::Word { mode: WordMode::Punctuation },
    ///     ..Default::default()
    /// };
    /// let text = TextPipeline::fit(&["the cat sat."], &cfg).unwrap();
    /// let mut stream = text.stream_decoder_after(&text.encode("the cat").unwrap()).unwrap();
    /// assert_eq!(stream.push(text.vocab().index("sat")).unwrap(), " sat");
    /// assert_eq!(stream.push(text.vocab().index(".")).unwrap(), ".");
    /// ```
    pub fn stream_decoder_after(&self, prefix: &[u32]) -> Result<StreamDecoder<'_>> {
        let mut stream = self.stream_decoder();
        for &id in prefix {
            stream.push(id)?;
        }
        Ok(stream)
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
        Self::from_bytes(&bytes, &name)
    }

    /// Reads a pipeline from the bytes of a file [`TextPipeline::save`] wrote (`name` stands
    /// for it in errors).
    ///
    /// ```
    /// use rnnkit::data::text::TextPipeline;
    /// let e = TextPipeline::from_bytes(br#"{"format": "x"}"#, "text.json").unwrap_err();
    /// assert!(e.to_string().contains("not an rnnkit text pipeline"));
    /// ```
    ///
    /// # Errors
    /// As [`TextPipeline::load`].
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let name = name.to_string();
        // Check the header first, so that a wrong file gets a clear message.
        let head: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| json_error(&name, &e))?;
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
            serde_json::from_slice(bytes).map_err(|e| json_error(&name, &e))?;
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

/// Decodes ids one at a time; made by [`TextPipeline::stream_decoder`].
///
/// [`StreamDecoder::push`] returns the text that the new id completes, and
/// [`StreamDecoder::finish`] the rest: all the pieces joined are exactly
/// [`TextPipeline::decode`] of all the ids, for every tokenizer kind. A piece may be empty: a
/// byte-level BPE token that ends inside a multi-byte character returns nothing until a later
/// token completes it (invalid bytes come out as U+FFFD, as in `decode`).
///
/// Cost per id: constant for characters, words and byte-level BPE (a word's text depends only
/// on the previous word, a byte's only on the bytes of an unfinished character). A loaded
/// Hugging Face tokenizer with another decoder (WordPiece, SentencePiece's Metaspace) is
/// re-decoded from the first id at every push, which is exact but quadratic in the length.
#[derive(Debug)]
pub struct StreamDecoder<'p> {
    pipeline: &'p TextPipeline,
    mode: Mode,
}

/// How a [`StreamDecoder`] keeps what it needs of the ids so far.
#[derive(Debug)]
enum Mode {
    /// Characters and words. A token's text depends only on whether any text came before and
    /// on the previous token (a word after `(` gets no space), so the ids back to the last one
    /// with text are enough context; `context_len` is the length of their decoded text.
    Window {
        context: Vec<u32>,
        context_len: usize,
    },
    /// Byte-level BPE: decoding is "join the tokens' bytes, then UTF-8 with U+FFFD for invalid
    /// bytes", so only the bytes of an unfinished character are kept.
    Bytes { pending: Vec<u8> },
    /// Any other decoder: every id, and the text returned so far.
    Full { ids: Vec<u32>, emitted: String },
}

impl StreamDecoder<'_> {
    /// Adds one id; returns the text it completes (possibly empty).
    ///
    /// Errors: [`Error::Config`] for an id out of the vocabulary's range (as
    /// [`TextPipeline::decode`]); the decoder is unchanged then.
    pub fn push(&mut self, id: u32) -> Result<String> {
        let p = self.pipeline;
        match &mut self.mode {
            Mode::Window {
                context,
                context_len,
            } => {
                let token = p.vocab.lookup_tokens(&[id])?[0];
                context.push(id);
                let text = match p.decode(context) {
                    Ok(t) => t,
                    Err(e) => {
                        context.pop();
                        return Err(e);
                    }
                };
                let piece = text.get(*context_len..).unwrap_or_default().to_owned();
                if token.is_empty() {
                    *context_len = text.len();
                } else {
                    // This token has text: what follows depends on nothing before it.
                    context.clear();
                    context.push(id);
                    *context_len = p.decode(context)?.len();
                }
                Ok(piece)
            }
            Mode::Bytes { pending } => {
                let token = p.vocab.lookup_tokens(&[id])?[0];
                pending.extend(token_bytes(token));
                Ok(take_complete_utf8(pending))
            }
            Mode::Full { ids, emitted } => {
                ids.push(id);
                let text = match p.decode(ids) {
                    Ok(t) => t,
                    Err(e) => {
                        ids.pop();
                        return Err(e);
                    }
                };
                // Hold back a trailing U+FFFD (a character a later token may complete) and any
                // change to text already returned (wait until the decoder agrees again).
                match text.strip_prefix(emitted.as_str()) {
                    Some(piece) if !text.ends_with('\u{FFFD}') => {
                        let piece = piece.to_owned();
                        emitted.push_str(&piece);
                        Ok(piece)
                    }
                    _ => Ok(String::new()),
                }
            }
        }
    }

    /// The text not yet returned (an unfinished character comes out as U+FFFD).
    ///
    /// Errors: only with a decoder other than characters, words and byte-level BPE, an
    /// [`Error::Config`] when the decoded text no longer begins with the text already returned
    /// (a decoder that rewrites earlier text depending on later tokens).
    pub fn finish(self) -> Result<String> {
        match self.mode {
            Mode::Window { .. } => Ok(String::new()),
            Mode::Bytes { pending } => Ok(String::from_utf8_lossy(&pending).into_owned()),
            Mode::Full { ids, emitted } => {
                let text = self.pipeline.decode(&ids)?;
                text.strip_prefix(emitted.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::Config(
                            "the tokenizer's decoder changed text it had already produced, so \
                             it cannot be decoded incrementally; decode all ids at once with \
                             TextPipeline::decode"
                                .into(),
                        )
                    })
            }
        }
    }
}

/// The bytes of a byte-level BPE token, as the byte-level decoder reads them: each character
/// stands for one byte (GPT-2's printable alphabet, `Ġ` for a space); a token with any other
/// character (an added token such as `<eos>` written outside the alphabet) is its own UTF-8.
fn token_bytes(token: &str) -> Vec<u8> {
    let table = byte_of_char();
    token
        .chars()
        .map(|c| table.get(&c).copied())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_else(|| token.as_bytes().to_vec())
}

/// GPT-2's byte-to-character table, inverted (character to byte). The printable bytes `!..~`,
/// `¡..¬`, `®..ÿ` stand for themselves; the other 68 bytes, in order, for U+0100 onwards.
fn byte_of_char() -> &'static HashMap<char, u8> {
    static TABLE: OnceLock<HashMap<char, u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let mut next = 0x100u32;
        (0..=255u8)
            .map(|b| {
                if printable(b) {
                    (char::from(b), b)
                } else {
                    next += 1;
                    (char::from_u32(next - 1).unwrap_or('\u{FFFD}'), b)
                }
            })
            .collect()
    })
}

/// Removes from the front of `bytes` everything up to the start of an unfinished character at
/// the end, and returns it as text, invalid sequences as U+FFFD (as `String::from_utf8_lossy`
/// does, which splits the input at the same points).
fn take_complete_utf8(bytes: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut at = 0;
    while at < bytes.len() {
        match std::str::from_utf8(&bytes[at..]) {
            Ok(rest) => {
                out.push_str(rest);
                at = bytes.len();
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&bytes[at..at + valid]));
                match e.error_len() {
                    Some(bad) => {
                        out.push('\u{FFFD}');
                        at += valid + bad;
                    }
                    // Unfinished at the end: a later byte may complete it.
                    None => {
                        at += valid;
                        break;
                    }
                }
            }
        }
    }
    bytes.drain(..at);
    out
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

    /// Pushes every id, then finishes; the pieces.
    fn streamed(text: &TextPipeline, prefix: &[u32], ids: &[u32]) -> Vec<String> {
        let mut stream = text.stream_decoder_after(prefix).unwrap();
        let mut pieces: Vec<String> = ids.iter().map(|&id| stream.push(id).unwrap()).collect();
        pieces.push(stream.finish().unwrap());
        pieces
    }

    const CORPUS: &str = "naïve café (déjà vu) 日本語 😀 the cat, the dog. <eos>\n l'été";

    fn pipelines() -> &'static [TextPipeline] {
        static PIPELINES: OnceLock<Vec<TextPipeline>> = OnceLock::new();
        PIPELINES.get_or_init(|| {
            let mut pipelines = [
                TokenizerConfig::Char,
                TokenizerConfig::Word {
                    mode: WordMode::Punctuation,
                },
                TokenizerConfig::Bpe {
                    vocab_size: 300,
                    min_frequency: 1,
                },
            ]
            .into_iter()
            .map(|tokenizer| {
                let cfg = TextConfig {
                    tokenizer,
                    ..Default::default()
                };
                TextPipeline::fit(&[CORPUS, CORPUS], &cfg).unwrap()
            })
            .collect::<Vec<_>>();
            // The BPE without its decoder (tokens joined with spaces): the re-decode-all path.
            let Tokenizer::Bpe(bpe) = pipelines[2].tokenizer() else {
                unreachable!()
            };
            let mut json = bpe.to_json().unwrap();
            json["decoder"] = serde_json::Value::Null;
            let plain = Tokenizer::Bpe(BpeTokenizer::from_json(json, "test").unwrap());
            pipelines.push(TextPipeline::new(
                CleanConfig::default(),
                plain,
                pipelines[2].vocab().clone(),
            ));
            pipelines
        })
    }

    #[test]
    fn stream_matches_decode_on_real_text() {
        for text in pipelines() {
            let ids = text.encode(CORPUS).unwrap();
            let pieces = streamed(text, &[], &ids);
            assert_eq!(
                pieces.concat(),
                text.decode(&ids).unwrap(),
                "{:?}",
                text.tokenizer()
            );
        }
        // BPE: a character comes out whole, at its last byte.
        let bpe = &pipelines()[2];
        let ids = bpe.encode("月").unwrap(); // not in the corpus: three byte tokens
        assert_eq!(ids.len(), 3);
        assert_eq!(streamed(bpe, &[], &ids), ["", "", "月", ""]);
        // Words: the space before a word after the prompt, none before a comma.
        let words = &pipelines()[1];
        let ids = words.encode("cat, the").unwrap();
        assert_eq!(
            streamed(words, &words.encode("the").unwrap(), &ids),
            [" cat", ",", " the", ""]
        );
    }

    #[test]
    fn a_decoder_without_byte_level_re_decodes_everything() {
        let plain = &pipelines()[3];
        assert!(matches!(plain.stream_decoder().mode, Mode::Full { .. }));
        let ids = plain.encode("the cat").unwrap();
        let pieces = streamed(plain, &[], &ids);
        assert_eq!(pieces.concat(), plain.decode(&ids).unwrap());
        assert!(pieces.concat().contains(' '), "{pieces:?}");
    }

    #[test]
    fn stream_reports_bad_ids_and_carries_on() {
        let bpe = &pipelines()[2];
        let mut stream = bpe.stream_decoder();
        assert!(stream.push(bpe.vocab().len() as u32).is_err());
        let ids = bpe.encode("ok").unwrap();
        let mut out: String = ids.iter().map(|&id| stream.push(id).unwrap()).collect();
        out += &stream.finish().unwrap();
        assert_eq!(out, "ok");
    }

    #[test]
    fn incomplete_utf8_is_held_and_invalid_bytes_replaced() {
        let mut b = vec![b'a', 0xE6, 0x97];
        assert_eq!(take_complete_utf8(&mut b), "a");
        assert_eq!(b, [0xE6, 0x97]);
        b.extend([0xA5, 0x80, b'z']);
        assert_eq!(take_complete_utf8(&mut b), "日\u{FFFD}z");
        assert!(b.is_empty());
        assert_eq!(byte_of_char().len(), 256);
        assert_eq!(token_bytes("Ġa"), b" a");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Any id sequence (stray bytes, reserved tokens, split characters): the pieces join up
        /// to `decode` of all the ids, also after a prefix.
        #[test]
        fn stream_pieces_join_up_to_decode(
            kind in 0usize..4,
            raw in proptest::collection::vec(0u32..10_000, 0..40),
            split in 0usize..40,
        ) {
            let text = &pipelines()[kind];
            let n = text.vocab().len() as u32;
            let ids: Vec<u32> = raw.iter().map(|r| r % n).collect();
            let all = text.decode(&ids).unwrap();
            proptest::prop_assert_eq!(streamed(text, &[], &ids).concat(), all.clone());
            let k = split.min(ids.len());
            let (prefix, rest) = ids.split_at(k);
            let mut before = text.stream_decoder();
            let head: String = prefix.iter().map(|&id| before.push(id).unwrap()).collect();
            proptest::prop_assert_eq!(head + &streamed(text, prefix, rest).concat(), all);
        }
    }

    #[test]
    fn decode_rejects_out_of_range_ids() {
        let text = TextPipeline::fit(&["ab"], &TextConfig::default()).unwrap();
        assert!(matches!(text.decode(&[6]), Err(Error::Config(_))));
    }
}
