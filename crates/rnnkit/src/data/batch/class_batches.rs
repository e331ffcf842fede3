//! Token sequences with labels or tags as a [`Batches`] source, bucketed and padded by a
//! [`Batcher`].

use super::{Batcher, BatcherConfig, Example, PadConfig, PaddedBatch};
use crate::data::Batches;
use crate::error::Result;

/// Token sequences with labels or tags, bucketed and padded by a [`Batcher`].
///
/// ```
/// use rnnkit::data::Batches;
/// use rnnkit::data::batch::{ClassBatches, Example, PadConfig};
/// let examples: Vec<Example> = (0..5).map(|i| Example::class(vec![1; 1 + i], i % 2)).collect();
/// let eval = ClassBatches::in_order(examples, 2, PadConfig::default()).unwrap();
/// let batches = eval.epoch(0).unwrap();
/// assert_eq!(batches.len(), 3);
/// assert_eq!(batches[0].lengths, vec![1, 2]);
/// ```
pub struct ClassBatches {
    examples: Vec<Example>,
    batcher: Batcher,
}

impl ClassBatches {
    /// Batches of `examples` (shuffling, bucketing and seed from `config`).
    pub fn new(examples: Vec<Example>, config: BatcherConfig, pad: PadConfig) -> Result<Self> {
        let batcher = Batcher::new(&examples, config, pad)?;
        Ok(ClassBatches { examples, batcher })
    }

    /// The same examples in a fixed order (for evaluation and prediction).
    pub fn in_order(examples: Vec<Example>, batch_size: usize, pad: PadConfig) -> Result<Self> {
        Self::new(examples, BatcherConfig::fixed_order(batch_size), pad)
    }

    /// The examples.
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// Padding fraction of epoch `epoch`'s plan (what bucketing saved shows here).
    pub fn padding_fraction(&self, epoch: usize) -> f64 {
        self.batcher.plan(epoch as u64).padding_fraction()
    }
}

impl Batches for ClassBatches {
    type Batch = PaddedBatch;

    fn epoch(&self, epoch: usize) -> Result<Vec<PaddedBatch>> {
        self.batcher.batches(&self.examples, epoch as u64).collect()
    }
}
