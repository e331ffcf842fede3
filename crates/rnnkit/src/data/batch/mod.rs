//! Batching of token sequences for sequence classification and tagging.
//!
//! - [`padded`]: [`Example`] (token ids with a class or per-token tags) and [`PaddedBatch`], a
//!   time-major `[T, B]` batch padded to its longest sequence, with lengths and an optional
//!   truncation to `max_len`.
//! - [`batcher`]: [`Batcher`] plans each epoch from `(seed, epoch)`: seeded shuffling, bucketing
//!   by length (torchtext's `BucketIterator`), and the epoch's padding fraction.
//! - [`split`]: [`stratified_split`], train/validation/test index sets that keep each class's
//!   proportion.
//!
//! ```
//! use rnnkit::data::batch::{stratified_split, Batcher, BatcherConfig, Example, PadConfig};
//! let examples: Vec<Example> = (0..60).map(|i| Example::class(vec![3; 1 + i % 7], i % 2)).collect();
//! let labels: Vec<usize> = (0..60).map(|i| i % 2).collect();
//! let sets = stratified_split(&labels, &[0.8, 0.2], 0).unwrap();
//! let train: Vec<Example> = sets[0].iter().map(|&i| examples[i].clone()).collect();
//! let cfg = BatcherConfig { batch_size: 16, ..BatcherConfig::default() };
//! let batcher = Batcher::new(&train, cfg, PadConfig::default()).unwrap();
//! let mut seen = 0;
//! for batch in batcher.batches(&train, 0) {
//!     let batch = batch.unwrap();
//!     assert_eq!(batch.ids.ncols(), batch.lengths.len()); // [T, B]
//!     seen += batch.batch_size();
//! }
//! assert_eq!(seen, 48);
//! ```

pub mod batcher;
pub mod class_batches;
pub mod padded;
pub mod split;

pub use batcher::{Batcher, BatcherConfig, EpochPlan};
pub use class_batches::ClassBatches;
pub use padded::{BatchTargets, Example, IGNORE_TAG, PadConfig, PaddedBatch, Target, Truncation};
pub use split::stratified_split;
