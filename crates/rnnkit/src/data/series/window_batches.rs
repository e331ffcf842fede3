//! Forecasting windows as a [`Batches`] source.

use super::{WindowBatch, Windows};
use crate::data::Batches;
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Forecasting windows in batches, shuffled per epoch with a seed (or in order).
pub struct WindowBatches<'a> {
    windows: &'a Windows,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
}

impl<'a> WindowBatches<'a> {
    /// Batches of `batch_size` windows; `shuffle` reorders them each epoch from `(seed, epoch)`.
    pub fn new(windows: &'a Windows, batch_size: usize, shuffle: bool, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if windows.is_empty() {
            return Err(Error::Config(
                "a split has no windows: it is shorter than lookback + horizon; use a shorter \
                 lookback or horizon, or a larger split"
                    .into(),
            ));
        }
        Ok(WindowBatches {
            windows,
            batch_size,
            shuffle,
            seed,
        })
    }
}

impl Batches for WindowBatches<'_> {
    type Batch = WindowBatch;

    fn epoch(&self, epoch: usize) -> Result<Vec<WindowBatch>> {
        let mut order: Vec<usize> = (0..self.windows.len()).collect();
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(epoch as u64);
            order.shuffle(&mut rng);
        }
        order
            .chunks(self.batch_size)
            .map(|idx| self.windows.batch(idx))
            .collect()
    }
}
