//! Text data: loading, cleaning, tokenizing and vocabularies, up to the id streams and
//! sequences the models train on.
//!
//! - [`load`]: text files, directories of files, CSV/TSV/JSON-lines tables, with errors that
//!   name the file and line.
//! - [`clean`]: optional Unicode normalization, lowercasing, control-character stripping,
//!   number replacement, whitespace collapsing.
//! - [`char`](mod@char), [`word`], [`bpe`]: the tokenizers; [`tokenizer`]: one type over them.
//! - [`vocab`]: token ↔ id, with the reserved `<pad>`=0, `<unk>`=1, `<bos>`=2, `<eos>`=3.
//! - [`pipeline`]: cleaning + tokenizer + vocabulary, fitted on training text and saved beside
//!   the model; also the language-model stream with `<eos>` at line ends.
//! - [`split`]: first part for training, last part for validation.
//!
//! ```
//! use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
//! use rnnkit::data::text::split::split_by_fraction;
//!
//! let corpus = ["First Citizen:\nBefore we proceed any further, hear me speak.\n"];
//! let text = TextPipeline::fit(&corpus, &TextConfig::default()).unwrap(); // characters
//! let ids = text.encode_stream(&corpus, false).unwrap();
//! assert_eq!(text.decode(&ids).unwrap(), corpus[0]);
//! let (train, valid) = split_by_fraction(&ids, 0.9).unwrap();
//! assert_eq!(train.len() + valid.len(), ids.len());
//! ```

pub mod bpe;
pub mod char;
pub mod clean;
pub mod labelled;
pub mod load;
pub mod pipeline;
pub mod split;
pub mod tokenizer;
pub mod vocab;
pub mod word;

pub use clean::{CleanConfig, Normalization};
pub use load::{Document, TableConfig, TableFormat};
pub use pipeline::{StreamDecoder, TextConfig, TextPipeline};
pub use tokenizer::{Tokenizer, TokenizerConfig};
pub use vocab::{Vocab, VocabConfig};
pub use word::WordMode;
