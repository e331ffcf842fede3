//! One padded batch: variable-length token sequences laid out time-major `[T, B]`, padded to the
//! longest sequence of the batch, with their lengths and targets.
//!
//! Dimensions: `T` steps (the longest kept length in the batch), `B` sequences in the batch.

use crate::error::{Error, Result};
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

/// The tag written into padded cells of [`BatchTargets::Tags`]: the counterpart of PyTorch's
/// `CrossEntropyLoss(ignore_index=...)`; a loss must skip it (or mask with the lengths).
pub const IGNORE_TAG: usize = usize::MAX;

/// What a sequence is trained to predict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One class for the whole sequence (e.g. a surname's language).
    Class(usize),
    /// One tag per token (e.g. part of speech), as many as the sequence has tokens.
    Tags(Vec<usize>),
}

/// One example: token ids and its target.
///
/// ```
/// use rnnkit::data::batch::{Example, Target};
/// let e = Example::class(vec![5, 2, 9], 1);
/// assert_eq!(e.target, Target::Class(1));
/// assert_eq!(e.len(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// Token ids (at least one).
    pub ids: Vec<u32>,
    /// What to predict.
    pub target: Target,
}

impl Example {
    /// A sequence-classification example.
    pub fn class(ids: Vec<u32>, label: usize) -> Self {
        Example {
            ids,
            target: Target::Class(label),
        }
    }

    /// A tagging example; `tags` must have one entry per id (checked when batching).
    pub fn tagged(ids: Vec<u32>, tags: Vec<usize>) -> Self {
        Example {
            ids,
            target: Target::Tags(tags),
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the example has no tokens (such examples are rejected by batching).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Which tokens a sequence longer than [`PadConfig::max_len`] keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// Keep the first `max_len` tokens (the default: the start of a name or sentence usually
    /// carries most of what identifies it, and tags stay aligned from the start).
    #[default]
    KeepFirst,
    /// Keep the last `max_len` tokens (Keras' `truncating="pre"`): the tokens a classifier reading
    /// the final hidden state saw most recently.
    KeepLast,
}

/// How sequences are padded and truncated.
///
/// ```
/// let cfg: rnnkit::data::batch::PadConfig =
///     serde_json::from_str(r#"{"max_len": 40, "truncation": "keep_last"}"#).unwrap();
/// assert_eq!(cfg.pad_id, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PadConfig {
    /// The id written into padded cells (the vocabulary's `<pad>`; PyTorch `padding_value`).
    pub pad_id: u32,
    /// Longest sequence kept, in tokens; `None` keeps every token.
    pub max_len: Option<usize>,
    /// Which tokens a longer sequence keeps.
    pub truncation: Truncation,
}

impl Default for PadConfig {
    /// `pad_id` 0 (vocabularies put `<pad>` first), no truncation, [`Truncation::KeepFirst`].
    fn default() -> Self {
        PadConfig {
            pad_id: 0,
            max_len: None,
            truncation: Truncation::KeepFirst,
        }
    }
}

impl PadConfig {
    /// Checks the settings: `max_len`, when set, is at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.max_len == Some(0) {
            return Err(Error::Config(
                "max_len must be at least 1 (or unset to keep every token)".into(),
            ));
        }
        Ok(())
    }

    /// The number of tokens a sequence of `len` tokens keeps.
    pub fn kept_len(&self, len: usize) -> usize {
        self.max_len.map_or(len, |m| len.min(m))
    }

    /// The kept range of a sequence of `len` tokens.
    fn kept_range(&self, len: usize) -> std::ops::Range<usize> {
        let kept = self.kept_len(len);
        match self.truncation {
            Truncation::KeepFirst => 0..kept,
            Truncation::KeepLast => len - kept..len,
        }
    }
}

/// The targets of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchTargets {
    /// One class per sequence, `[B]`.
    Classes(Vec<usize>),
    /// One tag per token, `[T, B]`, [`IGNORE_TAG`] in padded cells.
    Tags(Array2<usize>),
}

/// A batch of sequences padded to its longest one, time-major.
///
/// ```
/// use rnnkit::data::batch::{Example, PadConfig, PaddedBatch, BatchTargets};
/// let examples = vec![Example::class(vec![4, 5, 6], 0), Example::class(vec![7], 2)];
/// let b = PaddedBatch::from_examples(&examples, &[0, 1], &PadConfig::default()).unwrap();
/// assert_eq!(b.ids.shape(), &[3, 2]); // [T, B]
/// assert_eq!(b.ids.column(1).to_vec(), vec![7, 0, 0]); // padded with pad_id 0
/// assert_eq!(b.lengths, vec![3, 1]);
/// assert_eq!(b.targets, BatchTargets::Classes(vec![0, 2]));
/// assert!((b.padding_fraction() - 2.0 / 6.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PaddedBatch {
    /// `[T, B]` token ids, `pad_id` after each sequence's end.
    pub ids: Array2<u32>,
    /// `[B]` kept length of each sequence (each in `1..=T`).
    pub lengths: Vec<usize>,
    /// Classes `[B]` or tags `[T, B]`.
    pub targets: BatchTargets,
    /// `[B]` the position of each sequence in the example list it was built from.
    pub indices: Vec<usize>,
    /// `[T, B, F]` feature frames, zero after each sequence's end, when the sequences are
    /// vectors (audio features) rather than tokens; `ids` is then all padding.
    pub features: Option<Array3<f32>>,
}

impl PaddedBatch {
    /// Pads `examples[i]` for every `i` in `indices` (in that order) into one batch.
    ///
    /// Errors: no indices or an index out of range ([`Error::Config`]); an example with no
    /// tokens, tags whose count differs from the ids', or class and tag examples mixed
    /// ([`Error::Data`], naming the example).
    pub fn from_examples(examples: &[Example], indices: &[usize], pad: &PadConfig) -> Result<Self> {
        pad.validate()?;
        if indices.is_empty() {
            return Err(Error::Config("a batch needs at least one example".into()));
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= examples.len()) {
            return Err(Error::Config(format!(
                "example index {i} is out of range: there are {} examples",
                examples.len()
            )));
        }
        for &i in indices {
            check_example(&examples[i], i)?;
        }
        let tagging = matches!(examples[indices[0]].target, Target::Tags(_));
        if let Some(&i) = indices
            .iter()
            .find(|&&i| matches!(examples[i].target, Target::Tags(_)) != tagging)
        {
            return Err(Error::data(
                "examples",
                format!("example {i}"),
                "class and tag examples are mixed in one batch: give every example the same kind of target",
            ));
        }

        let lengths: Vec<usize> = indices
            .iter()
            .map(|&i| pad.kept_len(examples[i].len()))
            .collect();
        let steps = lengths.iter().copied().max().unwrap_or(0);
        let batch = indices.len();
        let mut ids = Array2::from_elem((steps, batch), pad.pad_id); // [T, B]
        let mut tags = tagging.then(|| Array2::from_elem((steps, batch), IGNORE_TAG)); // [T, B]
        let mut classes = Vec::with_capacity(if tagging { 0 } else { batch });
        for (b, &i) in indices.iter().enumerate() {
            let ex = &examples[i];
            let range = pad.kept_range(ex.len());
            for (t, &id) in ex.ids[range.clone()].iter().enumerate() {
                ids[[t, b]] = id;
            }
            match (&ex.target, tags.as_mut()) {
                (Target::Tags(ts), Some(tags)) => {
                    for (t, &tag) in ts[range].iter().enumerate() {
                        tags[[t, b]] = tag;
                    }
                }
                (Target::Class(c), _) => classes.push(*c),
                // Mixed kinds were rejected above.
                (Target::Tags(_), None) => unreachable!("mixed targets are rejected above"),
            }
        }
        let targets = match tags {
            Some(tags) => BatchTargets::Tags(tags),
            None => BatchTargets::Classes(classes),
        };
        Ok(PaddedBatch {
            ids,
            lengths,
            targets,
            indices: indices.to_vec(),
            features: None,
        })
    }

    /// Number of sequences `B`.
    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    /// Number of steps `T` (the longest kept length).
    pub fn steps(&self) -> usize {
        self.ids.nrows()
    }

    /// Cells holding padding: `T * B - sum(lengths)`.
    pub fn padded_cells(&self) -> usize {
        self.ids.len() - self.lengths.iter().sum::<usize>()
    }

    /// Fraction of the `T * B` cells that are padding (0 when every sequence has the same length):
    /// the share of the recurrent work a batch spends on nothing.
    pub fn padding_fraction(&self) -> f64 {
        if self.ids.is_empty() {
            return 0.0;
        }
        self.padded_cells() as f64 / self.ids.len() as f64
    }
}

/// Checks one example on its own: it has tokens, and tags (if any) match its ids.
pub(crate) fn check_example(ex: &Example, i: usize) -> Result<()> {
    if ex.ids.is_empty() {
        return Err(Error::data(
            "examples",
            format!("example {i}"),
            "has no tokens: drop empty sequences before batching (a recurrent network needs at least one step)",
        ));
    }
    if let Target::Tags(tags) = &ex.target
        && tags.len() != ex.ids.len()
    {
        return Err(Error::data(
            "examples",
            format!("example {i}"),
            format!(
                "has {} tags for {} tokens: give one tag per token",
                tags.len(),
                ex.ids.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_first_or_last_tokens_and_their_tags() {
        let ex = vec![Example::tagged(vec![1, 2, 3, 4], vec![10, 20, 30, 40])];
        let first = PadConfig {
            max_len: Some(2),
            ..PadConfig::default()
        };
        let b = PaddedBatch::from_examples(&ex, &[0], &first).unwrap();
        assert_eq!(b.ids.column(0).to_vec(), vec![1, 2]);
        let BatchTargets::Tags(t) = &b.targets else {
            panic!("tags expected")
        };
        assert_eq!(t.column(0).to_vec(), vec![10, 20]);

        let last = PadConfig {
            max_len: Some(2),
            truncation: Truncation::KeepLast,
            pad_id: 0,
        };
        let b = PaddedBatch::from_examples(&ex, &[0], &last).unwrap();
        assert_eq!(b.ids.column(0).to_vec(), vec![3, 4]);
        let BatchTargets::Tags(t) = &b.targets else {
            panic!("tags expected")
        };
        assert_eq!(t.column(0).to_vec(), vec![30, 40]);
        assert_eq!(b.lengths, vec![2]);
    }

    #[test]
    fn tags_are_padded_with_the_ignore_tag() {
        let ex = vec![
            Example::tagged(vec![1, 2], vec![5, 6]),
            Example::tagged(vec![3], vec![7]),
        ];
        let pad = PadConfig {
            pad_id: 99,
            ..PadConfig::default()
        };
        let b = PaddedBatch::from_examples(&ex, &[1, 0], &pad).unwrap();
        assert_eq!(b.ids.column(0).to_vec(), vec![3, 99]);
        let BatchTargets::Tags(t) = &b.targets else {
            panic!("tags expected")
        };
        assert_eq!(t.column(0).to_vec(), vec![7, IGNORE_TAG]);
        assert_eq!(b.indices, vec![1, 0]);
        assert_eq!(b.padded_cells(), 1);
    }

    #[test]
    fn bad_examples_are_errors_naming_the_example() {
        let ex = vec![Example::class(vec![1], 0), Example::class(vec![], 1)];
        let e = PaddedBatch::from_examples(&ex, &[0, 1], &PadConfig::default()).unwrap_err();
        assert!(e.to_string().contains("example 1"), "{e}");

        let ex = vec![Example::tagged(vec![1, 2], vec![0])];
        let e = PaddedBatch::from_examples(&ex, &[0], &PadConfig::default()).unwrap_err();
        assert!(e.to_string().contains("1 tags for 2 tokens"), "{e}");

        let ex = vec![
            Example::class(vec![1], 0),
            Example::tagged(vec![1], vec![0]),
        ];
        let e = PaddedBatch::from_examples(&ex, &[0, 1], &PadConfig::default()).unwrap_err();
        assert!(e.to_string().contains("mixed"), "{e}");

        assert!(PaddedBatch::from_examples(&ex, &[], &PadConfig::default()).is_err());
        assert!(PaddedBatch::from_examples(&ex, &[5], &PadConfig::default()).is_err());
        let zero = PadConfig {
            max_len: Some(0),
            ..PadConfig::default()
        };
        assert!(matches!(
            PaddedBatch::from_examples(&ex, &[0], &zero),
            Err(Error::Config(_))
        ));
    }
}
