//! The order of an epoch: seeded shuffling, bucketing by length, and the batches that result.
//!
//! Bucketing is torchtext's `BucketIterator` scheme: shuffle all examples, cut the shuffled list
//! into pools of `bucket_size * batch_size` examples, sort each pool by length, cut it into
//! batches, then shuffle the order of the batches. Sequences of similar length share a batch, so
//! little of a batch is padding, while pools keep the batches' contents random from epoch to
//! epoch.
//!
//! The order of epoch `e` depends only on `(seed, e)`: the generator is ChaCha8 seeded with
//! `seed` on stream `e`, so a run resumed at epoch `e` sees exactly the batches it would have.

use super::padded::{Example, PadConfig, PaddedBatch, check_example};
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How an epoch is cut into batches.
///
/// ```
/// let cfg: rnnkit::data::batch::BatcherConfig =
///     serde_json::from_str(r#"{"batch_size": 64, "seed": 7}"#).unwrap();
/// assert_eq!(cfg.bucket_size, 100);
/// assert!(cfg.shuffle);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatcherConfig {
    /// Sequences per batch (the last batch may be smaller unless `drop_last`).
    pub batch_size: usize,
    /// Shuffle the examples, and the batches, every epoch (PyTorch `DataLoader(shuffle=...)`).
    pub shuffle: bool,
    /// Pools of `bucket_size * batch_size` examples are sorted by length before being cut into
    /// batches; 0 turns bucketing off. Larger pools pad less but make batches less random.
    pub bucket_size: usize,
    /// Order each batch longest-first, the order the recurrent stack works in (it then needs no
    /// permutation; PyTorch `pack_padded_sequence(enforce_sorted=True)` requires it).
    pub sort_within_batch: bool,
    /// Drop the last batch when it is smaller than `batch_size` (PyTorch `drop_last`).
    pub drop_last: bool,
    /// Seed of the order; epoch `e` uses stream `e` of it.
    pub seed: u64,
}

impl Default for BatcherConfig {
    /// Batches of 32, shuffled, pools of 100 batches (torchtext's `BucketIterator` pool), sorted
    /// longest-first within each batch, last batch kept, seed 0.
    fn default() -> Self {
        BatcherConfig {
            batch_size: 32,
            shuffle: true,
            bucket_size: 100,
            sort_within_batch: true,
            drop_last: false,
            seed: 0,
        }
    }
}

impl BatcherConfig {
    /// Batches of `batch_size` in the examples' own order: no shuffling, bucketing or sorting
    /// (evaluation and prediction, where outputs map back to inputs by position).
    ///
    /// ```
    /// let c = rnnkit::data::batch::BatcherConfig::fixed_order(64);
    /// assert!(!c.shuffle && c.bucket_size == 0 && !c.sort_within_batch);
    /// ```
    pub fn fixed_order(batch_size: usize) -> Self {
        BatcherConfig {
            batch_size,
            shuffle: false,
            bucket_size: 0,
            sort_within_batch: false,
            drop_last: false,
            seed: 0,
        }
    }

    /// Checks the settings: `batch_size` at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        Ok(())
    }
}

/// The batches of one epoch: example indices, and how much of them is padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochPlan {
    /// The epoch this plan is for.
    pub epoch: u64,
    /// Example indices of each batch, in training order.
    pub batches: Vec<Vec<usize>>,
    /// Padded cells over all batches (`sum over batches of T * B - sum(lengths)`).
    pub padded_cells: usize,
    /// All cells over all batches (`sum over batches of T * B`).
    pub total_cells: usize,
}

impl EpochPlan {
    /// Fraction of the epoch's `[T, B]` cells that are padding: compare it with a plan built with
    /// `bucket_size: 0` to see what bucketing saves.
    pub fn padding_fraction(&self) -> f64 {
        if self.total_cells == 0 {
            return 0.0;
        }
        self.padded_cells as f64 / self.total_cells as f64
    }
}

/// Plans epochs over a fixed list of examples and pads their batches.
///
/// ```
/// use rnnkit::data::batch::{Batcher, BatcherConfig, Example, PadConfig};
/// // Short and long names interleaved.
/// let examples: Vec<Example> =
///     (0..200).map(|i| Example::class(vec![1; 1 + (i % 2) * 11 + i % 5], i % 3)).collect();
/// let cfg = BatcherConfig { batch_size: 8, bucket_size: 10, seed: 3, ..BatcherConfig::default() };
/// let bucketed = Batcher::new(&examples, cfg.clone(), PadConfig::default()).unwrap();
/// let plain = Batcher::new(&examples, BatcherConfig { bucket_size: 0, ..cfg }, PadConfig::default()).unwrap();
/// let plan = bucketed.plan(0);
/// assert_eq!(plan.batches.len(), 25);
/// assert!(plan.padding_fraction() < plain.plan(0).padding_fraction()); // what bucketing saved
/// assert_eq!(plan, bucketed.plan(0)); // same (seed, epoch), same order
/// assert_ne!(plan.batches, bucketed.plan(1).batches);
///
/// let batch = bucketed.batch(&examples, &plan.batches[0]).unwrap();
/// assert_eq!(batch.batch_size(), 8);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Batcher {
    config: BatcherConfig,
    pad: PadConfig,
    /// Kept (possibly truncated) length of each example.
    lengths: Vec<usize>,
}

impl Batcher {
    /// Checks the settings and every example once (at least one token, one tag per token, one
    /// kind of target), and records the lengths the plans are built from.
    pub fn new(examples: &[Example], config: BatcherConfig, pad: PadConfig) -> Result<Self> {
        config.validate()?;
        pad.validate()?;
        for (i, ex) in examples.iter().enumerate() {
            check_example(ex, i)?;
        }
        if let Some(first) = examples.first() {
            let kind = std::mem::discriminant(&first.target);
            if let Some(i) = examples
                .iter()
                .position(|e| std::mem::discriminant(&e.target) != kind)
            {
                return Err(Error::data(
                    "examples",
                    format!("example {i}"),
                    "its kind of target (class or tags) differs from example 0's: give every example the same kind",
                ));
            }
        }
        let lengths = examples.iter().map(|e| pad.kept_len(e.len())).collect();
        Ok(Batcher {
            config,
            pad,
            lengths,
        })
    }

    /// The settings.
    pub fn config(&self) -> &BatcherConfig {
        &self.config
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether there are no examples (every plan is then empty).
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The batches of epoch `epoch` (0-based). The same `(seed, epoch)` always gives the same plan.
    pub fn plan(&self, epoch: u64) -> EpochPlan {
        let cfg = &self.config;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(epoch);

        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
        if cfg.bucket_size > 0 {
            let pool = cfg.bucket_size.saturating_mul(cfg.batch_size);
            for chunk in order.chunks_mut(pool) {
                // Stable, so equal lengths keep their shuffled order.
                chunk.sort_by_key(|&i| self.lengths[i]);
            }
        }
        let mut batches: Vec<Vec<usize>> = order
            .chunks(cfg.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if cfg.drop_last && batches.last().is_some_and(|b| b.len() < cfg.batch_size) {
            batches.pop();
        }
        if cfg.shuffle && cfg.bucket_size > 0 {
            // Without this, every epoch would go from short to long sequences within each pool.
            batches.shuffle(&mut rng);
        }
        if cfg.sort_within_batch {
            for b in &mut batches {
                b.sort_by_key(|&i| std::cmp::Reverse(self.lengths[i]));
            }
        }

        let (mut padded_cells, mut total_cells) = (0, 0);
        for b in &batches {
            let steps = b.iter().map(|&i| self.lengths[i]).max().unwrap_or(0);
            let cells = steps * b.len();
            total_cells += cells;
            padded_cells += cells - b.iter().map(|&i| self.lengths[i]).sum::<usize>();
        }
        EpochPlan {
            epoch,
            batches,
            padded_cells,
            total_cells,
        }
    }

    /// Pads one batch of a plan. `examples` must be the list the batcher was built from.
    pub fn batch(&self, examples: &[Example], indices: &[usize]) -> Result<PaddedBatch> {
        if examples.len() != self.lengths.len() {
            return Err(Error::Config(format!(
                "the batcher was built over {} examples but {} were given",
                self.lengths.len(),
                examples.len()
            )));
        }
        PaddedBatch::from_examples(examples, indices, &self.pad)
    }

    /// Every padded batch of epoch `epoch`, in training order.
    pub fn batches<'a>(
        &'a self,
        examples: &'a [Example],
        epoch: u64,
    ) -> impl Iterator<Item = Result<PaddedBatch>> + 'a {
        self.plan(epoch)
            .batches
            .into_iter()
            .map(move |idx| self.batch(examples, &idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(lengths: &[usize]) -> Vec<Example> {
        lengths
            .iter()
            .map(|&n| Example::class(vec![1; n], 0))
            .collect()
    }

    #[test]
    fn without_shuffle_or_buckets_batches_follow_the_input_order() {
        let ex = examples(&[3, 1, 2, 5, 4]);
        let cfg = BatcherConfig {
            batch_size: 2,
            shuffle: false,
            bucket_size: 0,
            sort_within_batch: false,
            ..BatcherConfig::default()
        };
        let plan = Batcher::new(&ex, cfg.clone(), PadConfig::default())
            .unwrap()
            .plan(4);
        assert_eq!(plan.batches, vec![vec![0, 1], vec![2, 3], vec![4]]);
        // Cells: 3*2 + 5*2 + 4*1 = 20; tokens 15.
        assert_eq!((plan.padded_cells, plan.total_cells), (5, 20));

        let dropped = BatcherConfig {
            drop_last: true,
            ..cfg
        };
        let plan = Batcher::new(&ex, dropped, PadConfig::default())
            .unwrap()
            .plan(0);
        assert_eq!(plan.batches, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn buckets_sort_each_pool_and_batches_run_longest_first() {
        let ex = examples(&[3, 1, 2, 5, 4, 6]);
        let cfg = BatcherConfig {
            batch_size: 2,
            shuffle: false,
            bucket_size: 1,
            ..BatcherConfig::default()
        };
        let plan = Batcher::new(&ex, cfg, PadConfig::default())
            .unwrap()
            .plan(0);
        // Pools of 2: [3, 1], [2, 5], [4, 6], each sorted longest-first.
        assert_eq!(plan.batches, vec![vec![0, 1], vec![3, 2], vec![5, 4]]);

        let cfg = BatcherConfig {
            batch_size: 2,
            shuffle: false,
            bucket_size: 3,
            ..BatcherConfig::default()
        };
        let plan = Batcher::new(&ex, cfg, PadConfig::default())
            .unwrap()
            .plan(0);
        assert_eq!(plan.batches, vec![vec![2, 1], vec![4, 0], vec![5, 3]]);
        assert_eq!(plan.padded_cells, 1 + 1 + 1);
    }

    #[test]
    fn truncation_shortens_the_planned_lengths() {
        let ex = examples(&[10, 2]);
        let pad = PadConfig {
            max_len: Some(4),
            ..PadConfig::default()
        };
        let cfg = BatcherConfig {
            batch_size: 2,
            ..BatcherConfig::default()
        };
        let plan = Batcher::new(&ex, cfg, pad).unwrap().plan(0);
        assert_eq!((plan.padded_cells, plan.total_cells), (2, 8));
    }

    #[test]
    fn bad_settings_and_examples_are_errors() {
        let ex = examples(&[1, 2]);
        let zero = BatcherConfig {
            batch_size: 0,
            ..BatcherConfig::default()
        };
        assert!(matches!(
            Batcher::new(&ex, zero, PadConfig::default()),
            Err(Error::Config(_))
        ));
        let ex = vec![
            Example::class(vec![1], 0),
            Example::tagged(vec![1], vec![0]),
        ];
        let e = Batcher::new(&ex, BatcherConfig::default(), PadConfig::default()).unwrap_err();
        assert!(e.to_string().contains("example 1"), "{e}");
        let b = Batcher::new(&[], BatcherConfig::default(), PadConfig::default()).unwrap();
        assert!(b.plan(0).batches.is_empty());
        assert_eq!(b.plan(0).padding_fraction(), 0.0);
    }
}
