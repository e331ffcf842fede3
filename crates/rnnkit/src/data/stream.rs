//! Truncated backpropagation through time over a long token stream.
//!
//! The stream is cut into `B` parallel streams (the PTB "batchify" layout of Zaremba et al.
//! and PyTorch's word_language_model example): column `b` of a `[N, B]` matrix holds tokens
//! `b·N .. (b+1)·N` of the stream, and the few tokens that do not fill a column are dropped.
//! Training walks the rows in chunks of `k` steps; chunk `[i, i+k)` reads rows `i..i+k` and
//! predicts rows `i+1..i+k+1`, and the recurrent state is carried (detached) from one chunk to
//! the next, since row `i+k` continues row `i+k-1` in every column.
//!
//! [`StreamBatches`] is that layout as a [`Batches`] source: the
//! [`Trainer`](crate::train::Trainer) trains a language model on it like any other task, the
//! model carrying its state from chunk to chunk.

use super::Batches;
use crate::error::{Error, Result};
use ndarray::{Array2, s};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Lays a token stream out as `[N, B]`, `N = len / B`, column `b` holding `stream[b·N..(b+1)·N]`.
///
/// ```
/// use rnnkit::data::stream::batchify;
/// let m = batchify(&[0, 1, 2, 3, 4, 5, 6], 2).unwrap(); // the 7th token is dropped
/// assert_eq!(m.column(0).to_vec(), vec![0, 1, 2]);
/// assert_eq!(m.column(1).to_vec(), vec![3, 4, 5]);
/// ```
pub fn batchify(stream: &[u32], batch: usize) -> Result<Array2<u32>> {
    if batch == 0 {
        return Err(Error::Config("batch size must be at least 1".into()));
    }
    let rows = stream.len() / batch;
    if rows < 2 {
        return Err(Error::Config(format!(
            "a stream of {} tokens is too short for {batch} parallel streams (need at least {})",
            stream.len(),
            2 * batch
        )));
    }
    Ok(Array2::from_shape_fn((rows, batch), |(i, b)| {
        stream[b * rows + i]
    }))
}

/// One chunk of truncated BPTT: inputs are rows `start..start+len`, targets rows
/// `start+1..start+len+1` of the batchified stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First input row.
    pub start: usize,
    /// Steps in the chunk.
    pub len: usize,
}

/// How long chunks are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ChunkLength {
    /// Always `k` steps (the last chunk may be shorter).
    Fixed(usize),
    /// AWD-LSTM (Merity et al. 2018): the base is `k` with probability 0.95, else `k/2`; the
    /// length is drawn from N(base, 5), at least 5 and at most `k + 20`, so chunk boundaries move
    /// between epochs and every position gets gradient from varied distances.
    Variable(usize),
}

/// The chunks covering a batchified stream of `rows` rows: every target row `1..rows` exactly
/// once, in order. `rng` is used only for [`ChunkLength::Variable`].
///
/// ```
/// use rnnkit::data::stream::{chunks, Chunk, ChunkLength};
/// let c = chunks(10, ChunkLength::Fixed(4), &mut rand::rng()).unwrap();
/// assert_eq!(c, vec![Chunk { start: 0, len: 4 }, Chunk { start: 4, len: 4 }, Chunk { start: 8, len: 1 }]);
/// ```
pub fn chunks(rows: usize, length: ChunkLength, rng: &mut dyn RngCore) -> Result<Vec<Chunk>> {
    let k = match length {
        ChunkLength::Fixed(k) | ChunkLength::Variable(k) => k,
    };
    if k == 0 {
        return Err(Error::Config(
            "the truncated-BPTT length must be at least 1".into(),
        ));
    }
    let mut out = Vec::new();
    let mut start = 0;
    // The last input row is rows - 2 (its target is rows - 1).
    while start + 1 < rows {
        let want = match length {
            ChunkLength::Fixed(k) => k,
            ChunkLength::Variable(k) => {
                let base = if rng.random::<f64>() < 0.95 {
                    k as f64
                } else {
                    k as f64 / 2.0
                };
                let draw = base + 5.0 * standard_normal(rng);
                (draw.round().max(5.0) as usize).min(k + 20)
            }
        };
        let len = want.min(rows - 1 - start);
        out.push(Chunk { start, len });
        start += len;
    }
    Ok(out)
}

fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn chunks_cover_every_target_exactly_once(rows in 2usize..500, k in 1usize..80, variable: bool, seed: u64) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let length = if variable { ChunkLength::Variable(k) } else { ChunkLength::Fixed(k) };
            let c = chunks(rows, length, &mut rng).unwrap();
            let mut seen = vec![0u32; rows];
            for ch in &c {
                prop_assert!(ch.len >= 1);
                for n in &mut seen[ch.start + 1..=ch.start + ch.len] {
                    *n += 1;
                }
            }
            prop_assert_eq!(seen[0], 0);
            prop_assert!(seen[1..].iter().all(|&n| n == 1));
            if !variable {
                prop_assert!(c.iter().all(|ch| ch.len <= k));
            }
        }

        #[test]
        fn batchify_keeps_each_stream_contiguous(len in 2usize..300, batch in 1usize..9) {
            let stream: Vec<u32> = (0..len as u32).collect();
            match batchify(&stream, batch) {
                Ok(m) => {
                    let rows = len / batch;
                    prop_assert_eq!(m.dim(), (rows, batch));
                    for b in 0..batch {
                        for i in 0..rows {
                            prop_assert_eq!(m[[i, b]] as usize, b * rows + i);
                        }
                    }
                }
                Err(_) => prop_assert!(len / batch < 2),
            }
        }
    }

    #[test]
    fn variable_lengths_center_on_k() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let c = chunks(100_000, ChunkLength::Variable(70), &mut rng).unwrap();
        let mean = c.iter().map(|ch| ch.len as f64).sum::<f64>() / c.len() as f64;
        // 0.95·70 + 0.05·35 = 68.25, minus a little from the cap at k + 20.
        assert!((66.0..69.0).contains(&mean), "mean chunk length {mean}");
        assert!(c.iter().all(|ch| ch.len <= 90));
    }
}

/// One chunk of a batchified stream: inputs `x` `[T, B]` and next-token targets `y` `[T, B]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamChunk {
    /// Input ids `[T, B]`.
    pub x: Array2<u32>,
    /// Target ids `[T, B]` (the tokens after `x`).
    pub y: Array2<u32>,
}

/// A token stream in `B` parallel streams, cut into truncated-BPTT chunks: the data source of a
/// language model. Each epoch's chunk plan comes from its own generator, seeded by
/// `(seed, epoch)`, so a resumed run redraws the same plan.
///
/// ```
/// use rnnkit::data::Batches;
/// use rnnkit::data::stream::{ChunkLength, StreamBatches};
/// let stream: Vec<u32> = (0..100).collect();
/// let train = StreamBatches::new(&stream, 4, ChunkLength::Fixed(10), 0).unwrap();
/// let chunks = train.epoch(0).unwrap();
/// assert_eq!(chunks.len(), 3); // 25 rows: chunks of 10, 10 and 4 steps
/// assert_eq!(chunks[0].x.shape(), &[10, 4]);
/// assert_eq!(chunks[0].y[[0, 0]], chunks[0].x[[1, 0]]);
/// ```
#[derive(Clone, Debug)]
pub struct StreamBatches {
    data: Array2<u32>,
    length: ChunkLength,
    seed: u64,
}

impl StreamBatches {
    /// `stream` in `batch` parallel streams, cut into chunks of `length`; `seed` draws the
    /// plans of [`ChunkLength::Variable`].
    pub fn new(stream: &[u32], batch: usize, length: ChunkLength, seed: u64) -> Result<Self> {
        let k = match length {
            ChunkLength::Fixed(k) | ChunkLength::Variable(k) => k,
        };
        if k == 0 {
            return Err(Error::Config("bptt must be at least 1".into()));
        }
        Ok(StreamBatches {
            data: batchify(stream, batch)?,
            length,
            seed,
        })
    }

    /// The layout of evaluation: chunks of a fixed `bptt` steps.
    pub fn fixed(stream: &[u32], batch: usize, bptt: usize) -> Result<Self> {
        Self::new(stream, batch, ChunkLength::Fixed(bptt), 0)
    }

    /// Parallel streams `B`.
    pub fn streams(&self) -> usize {
        self.data.ncols()
    }
}

impl Batches for StreamBatches {
    type Batch = StreamChunk;

    fn epoch(&self, epoch: usize) -> Result<Vec<StreamChunk>> {
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(epoch as u64 + 1),
        );
        let plan = chunks(self.data.nrows(), self.length, &mut rng)?;
        Ok(plan
            .into_iter()
            .map(|c| StreamChunk {
                x: self.data.slice(s![c.start..c.start + c.len, ..]).to_owned(),
                y: self
                    .data
                    .slice(s![c.start + 1..c.start + c.len + 1, ..])
                    .to_owned(),
            })
            .collect())
    }
}
