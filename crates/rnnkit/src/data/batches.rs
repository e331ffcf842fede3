//! The one interface between data and the [`Trainer`](crate::train::Trainer): a split's batches,
//! epoch by epoch.

use crate::error::Result;

/// The batches of one split, epoch by epoch.
///
/// Sources: [`ClassBatches`](super::batch::ClassBatches) (padded token sequences with labels or
/// tags), [`WindowBatches`](super::series::WindowBatches) (forecasting windows),
/// [`StreamBatches`](super::stream::StreamBatches) (a token stream in truncated-BPTT chunks),
/// [`RegressionBatches`](super::synthetic::RegressionBatches) (synthetic regression sets).
///
/// ```
/// use rnnkit::data::Batches;
/// /// Ten numbers, two per batch, in order.
/// struct Pairs;
/// impl Batches for Pairs {
///     type Batch = [u32; 2];
///     fn epoch(&self, _epoch: usize) -> rnnkit::Result<Vec<[u32; 2]>> {
///         Ok((0..5).map(|i| [2 * i, 2 * i + 1]).collect())
///     }
/// }
/// assert_eq!(Pairs.epoch(0).unwrap()[1], [2, 3]);
/// ```
pub trait Batches {
    /// One batch.
    type Batch;

    /// The batches of epoch `epoch` in order; a shuffled source draws the order from
    /// `(seed, epoch)`, so a resumed run sees the same batches.
    fn epoch(&self, epoch: usize) -> Result<Vec<Self::Batch>>;
}
