//! Synchronous data-parallel training over several processes, identical in math to one process
//! with the global batch.
//!
//! Each process (a *rank*) holds the whole model and trains on its share of every batch
//! ([`crate::models::TrainStep::shard_batch`]: a language model's streams are split between the
//! ranks). After the backward pass the [`crate::train::Trainer`] sums the gradients over the
//! ranks, each weighted by its share of the batch, and divides by the global count of tokens or
//! examples ([`sync_gradients`]). Clipping and the optimizer then see the gradient of the global
//! batch's mean loss, on every rank alike, so the weights stay the same everywhere without ever
//! being sent. The only differences from one process are the order of the sums and dropout's
//! random masks (drawn per rank).
//!
//! The transport is a [`Communicator`]: MPI with the `mpi` cargo feature
//! ([`MpiCommunicator`], Open MPI or MPICH through the `mpi` crate), or any other
//! implementation.
//!
//! ```
//! use rnnkit::distributed::{Communicator, sync_gradients};
//! use rnnkit::models::BatchLoss;
//!
//! /// One process: the sum over ranks is the value itself.
//! struct Alone;
//! impl Communicator for Alone {
//!     fn rank(&self) -> usize { 0 }
//!     fn size(&self) -> usize { 1 }
//!     fn all_reduce_sum(&self, _data: &mut [f64]) -> rnnkit::Result<()> { Ok(()) }
//! }
//!
//! let mut grad = vec![0.5f32, -1.0];
//! let local = BatchLoss { loss: 2.0, sum: 8.0, count: 4, correct: 0 };
//! let global = sync_gradients(&Alone, &mut [&mut grad[..]], local).unwrap();
//! assert_eq!(global.count, 4);
//! assert_eq!(grad, [0.5, -1.0]);
//! ```

#[cfg(feature = "mpi")]
mod mpi_world;
#[cfg(feature = "mpi")]
pub use mpi_world::MpiCommunicator;

use crate::error::{Error, Result};
use crate::models::BatchLoss;

/// A group of processes that sum arrays together: the one collective data-parallel training
/// needs.
pub trait Communicator: Send + Sync {
    /// This process's index, `0..size`. Rank 0 writes the run directory.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Replaces `data` by its element-wise sum over all processes. Every process calls it with
    /// the same length, in the same order.
    ///
    /// # Errors
    /// The transport failed (a process died); the message names what is known.
    fn all_reduce_sum(&self, data: &mut [f64]) -> Result<()>;
    /// [`Communicator::all_reduce_sum`] for f32, the gradients' type (half the bytes). The
    /// default goes through f64.
    ///
    /// # Errors
    /// As [`Communicator::all_reduce_sum`].
    fn all_reduce_sum_f32(&self, data: &mut [f32]) -> Result<()> {
        let mut wide: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
        self.all_reduce_sum(&mut wide)?;
        data.iter_mut().zip(wide).for_each(|(v, w)| *v = w as f32);
        Ok(())
    }
}

/// Sums the ranks' gradients into the gradient of the global batch's mean loss, in place.
///
/// Each rank's `grads` hold the gradient of its own mean loss over `local.count` tokens or
/// examples. They are weighted by that count, summed over the ranks with the loss sums and
/// counts, and divided by the global count. Returns the global batch's loss. The loss sums
/// and counts are summed in f64; the gradients in f32, so they differ from one process's by
/// rounding only.
///
/// # Errors
/// The communicator's, or a batch with no tokens on any rank.
pub fn sync_gradients(
    comm: &dyn Communicator,
    grads: &mut [&mut [f32]],
    local: BatchLoss,
) -> Result<BatchLoss> {
    if comm.size() <= 1 {
        return Ok(local);
    }
    // The counts and loss sums first (f64, exact), then the gradients weighted by this rank's
    // count, in one f32 buffer: one all-reduce for all parameters.
    let mut totals = [local.sum, local.count as f64, local.correct as f64];
    comm.all_reduce_sum(&mut totals)?;
    let [sum, count, correct] = totals;
    if count <= 0.0 {
        return Err(Error::Data {
            path: "training batch".into(),
            at: String::new(),
            msg: "no rank had a token or example in this batch".into(),
        });
    }
    let n: usize = grads.iter().map(|g| g.len()).sum();
    let mut buf = Vec::with_capacity(n);
    let weight = local.count as f32;
    for g in grads.iter() {
        buf.extend(g.iter().map(|&v| v * weight));
    }
    comm.all_reduce_sum_f32(&mut buf)?;
    let inv = (1.0 / count) as f32;
    let mut it = buf.iter();
    for g in grads.iter_mut() {
        for (v, s) in g.iter_mut().zip(&mut it) {
            *v = s * inv;
        }
    }
    Ok(BatchLoss {
        loss: (sum / count) as f32,
        sum,
        count: count as usize,
        correct: correct as usize,
    })
}

/// Rank `rank`'s share of `total` items split over `ranks`: a contiguous range, the first
/// `total % ranks` ranks taking one more.
///
/// ```
/// use rnnkit::distributed::share;
/// assert_eq!(share(10, 0, 3), 0..4);
/// assert_eq!(share(10, 2, 3), 7..10);
/// ```
pub fn share(total: usize, rank: usize, ranks: usize) -> std::ops::Range<usize> {
    let (base, extra) = (total / ranks, total % ranks);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}
