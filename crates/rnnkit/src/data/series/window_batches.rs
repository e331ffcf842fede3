//! Forecasting windows as a [`Batches`] source.

use super::{WindowBatch, Windows};
use crate::data::Batches;
use crate::error::{Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;

/// Forecasting windows in batches, shuffled per epoch with a seed (or in order).
pub struct WindowBatches<'a> {
    windows: Cow<'a, Windows>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
}

impl<'a> WindowBatches<'a> {
    /// Batches of `batch_size` windows; `shuffle` reorders them each epoch from `(seed, epoch)`.
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size` 0 or no windows.
    pub fn new(windows: &'a Windows, batch_size: usize, shuffle: bool, seed: u64) -> Result<Self> {
        Self::from_cow(Cow::Borrowed(windows), batch_size, shuffle, seed)
    }

    fn from_cow(
        windows: Cow<'a, Windows>,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
    ) -> Result<Self> {
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

impl WindowBatches<'static> {
    /// As [`WindowBatches::new`], owning the windows (for a source kept beside its data).
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size` 0 or no windows.
    pub fn owned(windows: Windows, batch_size: usize, shuffle: bool, seed: u64) -> Result<Self> {
        Self::from_cow(Cow::Owned(windows), batch_size, shuffle, seed)
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
