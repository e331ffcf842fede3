//! Vocabulary: the map between token strings and the integer ids a model sees.
//!
//! The first four ids are reserved, in every vocabulary:
//!
//! | id | token   | use                                             |
//! |----|---------|-------------------------------------------------|
//! | 0  | `<pad>` | padding in batches (`Embedding` `padding_idx`)  |
//! | 1  | `<unk>` | any token not in the vocabulary                 |
//! | 2  | `<bos>` | beginning of a sequence                         |
//! | 3  | `<eos>` | end of a sequence (or of a line in an LM stream) |
//!
//! A vocabulary built from counts ([`Vocab::from_counts`]) then lists the tokens seen at least
//! `min_freq` times, most frequent first, ties broken by the token string in byte order (so the
//! result does not depend on the order the counts were gathered in), cut at `max_size` ids in
//! all. A corpus token equal to a reserved one (PTB writes `<unk>` in its text) gets the
//! reserved id.
//!
//! ```
//! use rnnkit::data::text::vocab::{Vocab, VocabConfig, UNK_ID};
//!
//! let words = "the cat and the dog and the bird".split(' ');
//! let vocab = Vocab::build(words, &VocabConfig { min_freq: 2, max_size: None }).unwrap();
//! assert_eq!(vocab.tokens(), ["<pad>", "<unk>", "<bos>", "<eos>", "the", "and"]);
//! assert_eq!(vocab.lookup_indices(&["the", "cat"]), vec![4, UNK_ID]);
//! ```

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The padding token, id [`PAD_ID`].
pub const PAD: &str = "<pad>";
/// The unknown-token token, id [`UNK_ID`].
pub const UNK: &str = "<unk>";
/// The beginning-of-sequence token, id [`BOS_ID`].
pub const BOS: &str = "<bos>";
/// The end-of-sequence token, id [`EOS_ID`].
pub const EOS: &str = "<eos>";
/// Id of [`PAD`].
pub const PAD_ID: u32 = 0;
/// Id of [`UNK`].
pub const UNK_ID: u32 = 1;
/// Id of [`BOS`].
pub const BOS_ID: u32 = 2;
/// Id of [`EOS`].
pub const EOS_ID: u32 = 3;
/// The reserved tokens in id order.
pub const SPECIAL_TOKENS: [&str; 4] = [PAD, UNK, BOS, EOS];

/// How to build a vocabulary from counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VocabConfig {
    /// Keep tokens seen at least this many times (≥ 1).
    pub min_freq: usize,
    /// At most this many ids in all, the 4 reserved ones included (≥ 4); `None`: no limit.
    pub max_size: Option<usize>,
}

impl Default for VocabConfig {
    /// `min_freq` 1 and no size limit: every token seen gets an id, as in PyTorch's
    /// word_language_model example (PTB and WikiText-2 ship with rare words already `<unk>`).
    fn default() -> Self {
        VocabConfig {
            min_freq: 1,
            max_size: None,
        }
    }
}

impl VocabConfig {
    /// Checks the ranges.
    fn validate(&self) -> Result<()> {
        if self.min_freq == 0 {
            return Err(Error::Config(
                "vocab.min_freq must be at least 1, got 0".into(),
            ));
        }
        if let Some(m) = self.max_size
            && m < SPECIAL_TOKENS.len()
        {
            return Err(Error::Config(format!(
                "vocab.max_size must be at least {} (the reserved tokens), got {m}",
                SPECIAL_TOKENS.len()
            )));
        }
        Ok(())
    }
}

/// A vocabulary: token strings in id order, and their ids.
///
/// Serializes as `{"tokens": [...]}`; deserializing checks that the reserved tokens come first
/// and that no token appears twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct Vocab {
    /// Token of each id (`itos` in torchtext).
    itos: Vec<String>,
    /// Id of each token (`stoi`).
    stoi: HashMap<String, u32>,
}

/// The serialized form of a [`Vocab`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFile {
    tokens: Vec<String>,
}

impl From<Vocab> for VocabFile {
    fn from(v: Vocab) -> Self {
        VocabFile { tokens: v.itos }
    }
}

impl TryFrom<VocabFile> for Vocab {
    type Error = String;

    fn try_from(file: VocabFile) -> std::result::Result<Self, String> {
        if file.tokens.len() < SPECIAL_TOKENS.len()
            || file.tokens[..SPECIAL_TOKENS.len()] != SPECIAL_TOKENS
        {
            return Err(format!(
                "the vocabulary must start with the reserved tokens {SPECIAL_TOKENS:?}, found {:?}",
                &file.tokens[..file.tokens.len().min(SPECIAL_TOKENS.len())]
            ));
        }
        let mut stoi = HashMap::with_capacity(file.tokens.len());
        for (id, token) in file.tokens.iter().enumerate() {
            if stoi.insert(token.clone(), id as u32).is_some() {
                return Err(format!(
                    "token {token:?} appears twice in the vocabulary (id {id})"
                ));
            }
        }
        Ok(Vocab {
            itos: file.tokens,
            stoi,
        })
    }
}

impl Vocab {
    /// The reserved tokens, then `tokens` in the order given, skipping repeats and reserved ones.
    ///
    /// ```
    /// use rnnkit::data::text::vocab::Vocab;
    /// let v = Vocab::from_tokens(["b", "<eos>", "a", "b"]);
    /// assert_eq!(v.tokens(), ["<pad>", "<unk>", "<bos>", "<eos>", "b", "a"]);
    /// ```
    pub fn from_tokens<I, S>(tokens: I) -> Vocab
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut vocab = Vocab {
            itos: Vec::new(),
            stoi: HashMap::new(),
        };
        for t in SPECIAL_TOKENS {
            vocab.push(t);
        }
        for t in tokens {
            vocab.push(t.as_ref());
        }
        vocab
    }

    /// Appends `token` unless present.
    fn push(&mut self, token: &str) {
        if !self.stoi.contains_key(token) {
            self.stoi.insert(token.to_owned(), self.itos.len() as u32);
            self.itos.push(token.to_owned());
        }
    }

    /// Builds from token counts (see the [module docs](self) for the order and the cuts).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use rnnkit::data::text::vocab::{Vocab, VocabConfig};
    /// let counts = HashMap::from([("b".to_string(), 2), ("a".to_string(), 2), ("c".to_string(), 5)]);
    /// let v = Vocab::from_counts(&counts, &VocabConfig { min_freq: 1, max_size: Some(6) }).unwrap();
    /// assert_eq!(&v.tokens()[4..], ["c", "a"]); // ties by string; cut at 6 ids in all
    /// ```
    pub fn from_counts(counts: &HashMap<String, usize>, cfg: &VocabConfig) -> Result<Vocab> {
        cfg.validate()?;
        let mut kept: Vec<(&String, usize)> = counts
            .iter()
            .filter(|(t, n)| **n >= cfg.min_freq && !SPECIAL_TOKENS.contains(&t.as_str()))
            .map(|(t, n)| (t, *n))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let room = cfg
            .max_size
            .map_or(usize::MAX, |m| m - SPECIAL_TOKENS.len());
        kept.truncate(room);
        Ok(Vocab::from_tokens(kept.into_iter().map(|(t, _)| t)))
    }

    /// Counts `tokens` and builds with [`Vocab::from_counts`].
    ///
    /// ```
    /// use rnnkit::data::text::vocab::{UNK_ID, Vocab, VocabConfig};
    /// let words = "the cat and the dog and the bird".split(' ');
    /// let v = Vocab::build(words, &VocabConfig { min_freq: 2, max_size: None }).unwrap();
    /// assert_eq!(&v.tokens()[4..], ["the", "and"]); // most frequent first; rare ones cut
    /// assert_eq!(v.index("cat"), UNK_ID);
    /// ```
    pub fn build<I, S>(tokens: I, cfg: &VocabConfig) -> Result<Vocab>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in tokens {
            let t = t.as_ref();
            match counts.get_mut(t) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(t.to_owned(), 1);
                }
            }
        }
        Vocab::from_counts(&counts, cfg)
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        self.itos.len()
    }

    /// Always `false`: the reserved tokens are always there.
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }

    /// Token strings in id order.
    pub fn tokens(&self) -> &[String] {
        &self.itos
    }

    /// The id of `token`, if it has one.
    pub fn get(&self, token: &str) -> Option<u32> {
        self.stoi.get(token).copied()
    }

    /// The id of `token`, or [`UNK_ID`].
    ///
    /// ```
    /// use rnnkit::data::text::vocab::{Vocab, UNK_ID};
    /// let v = Vocab::from_tokens(["hi"]);
    /// assert_eq!((v.index("hi"), v.index("bye")), (4, UNK_ID));
    /// ```
    pub fn index(&self, token: &str) -> u32 {
        self.get(token).unwrap_or(UNK_ID)
    }

    /// The token of `id`, if in range.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.itos.get(id as usize).map(String::as_str)
    }

    /// Ids of `tokens`, unknown ones [`UNK_ID`].
    pub fn lookup_indices<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<u32> {
        tokens.iter().map(|t| self.index(t.as_ref())).collect()
    }

    /// Tokens of `ids`; an id out of range is an [`Error::Config`].
    ///
    /// ```
    /// use rnnkit::data::text::vocab::Vocab;
    /// let v = Vocab::from_tokens(["hi"]);
    /// assert_eq!(v.lookup_tokens(&[4, 3]).unwrap(), ["hi", "<eos>"]);
    /// assert!(v.lookup_tokens(&[5]).is_err());
    /// ```
    pub fn lookup_tokens(&self, ids: &[u32]) -> Result<Vec<&str>> {
        ids.iter()
            .map(|&id| {
                self.token(id).ok_or_else(|| {
                    Error::Config(format!(
                        "token id {id} is out of range for a vocabulary of {} tokens",
                        self.len()
                    ))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ids_are_fixed() {
        let v = Vocab::from_tokens(Vec::<String>::new());
        for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(v.get(t), Some(i as u32));
        }
        assert_eq!((PAD_ID, UNK_ID, BOS_ID, EOS_ID), (0, 1, 2, 3));
    }

    #[test]
    fn corpus_specials_keep_reserved_ids() {
        let v = Vocab::build(["<unk>", "<unk>", "a"], &VocabConfig::default()).unwrap();
        assert_eq!(v.tokens(), ["<pad>", "<unk>", "<bos>", "<eos>", "a"]);
    }

    #[test]
    fn bad_configs_are_errors() {
        let e = Vocab::build(
            ["a"],
            &VocabConfig {
                min_freq: 0,
                max_size: None,
            },
        );
        assert!(matches!(e, Err(Error::Config(_))));
        let e = Vocab::build(
            ["a"],
            &VocabConfig {
                min_freq: 1,
                max_size: Some(3),
            },
        );
        assert!(matches!(e, Err(Error::Config(m)) if m.contains("max_size")));
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let v = Vocab::build("x y y z".split(' '), &VocabConfig::default()).unwrap();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<Vocab>(&json).unwrap(), v);
        let e =
            serde_json::from_str::<Vocab>(r#"{"tokens": ["<unk>", "<pad>", "<bos>", "<eos>"]}"#);
        assert!(e.unwrap_err().to_string().contains("reserved tokens"));
        let dup = r#"{"tokens": ["<pad>", "<unk>", "<bos>", "<eos>", "a", "a"]}"#;
        assert!(
            serde_json::from_str::<Vocab>(dup)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
