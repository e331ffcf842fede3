//! Variable-length batches: the batch is reordered longest-first at the stack's boundary so
//! that the rows still running at any step are a prefix, and restored on the way out.

use crate::error::{Error, Result};
use ndarray::{Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis};

/// The batch permutation and the running-row count of every step.
pub(crate) struct BatchOrder {
    /// `perm[k]`: the caller's batch index at sorted position `k`; `None` when already sorted.
    perm: Option<Vec<usize>>,
    /// `active[t]`: number of sequences longer than `t` (rows `0..active[t]` run at step `t`).
    active: Vec<usize>,
    batch: usize,
}

impl BatchOrder {
    /// Checks `lengths` (one per sequence, each in `1..=steps`) and sorts them.
    pub fn new(lengths: Option<&[usize]>, steps: usize, batch: usize) -> Result<Self> {
        let Some(lengths) = lengths else {
            return Ok(BatchOrder {
                perm: None,
                active: vec![batch; steps],
                batch,
            });
        };
        if lengths.len() != batch {
            return Err(Error::Shape(format!(
                "{} lengths given for a batch of {batch}",
                lengths.len()
            )));
        }
        if let Some((b, &l)) = lengths
            .iter()
            .enumerate()
            .find(|(_, l)| !(1..=steps).contains(*l))
        {
            return Err(Error::Shape(format!(
                "length {l} of sequence {b} is outside 1..={steps} (the input has {steps} steps)"
            )));
        }
        let mut perm: Vec<usize> = (0..batch).collect();
        perm.sort_by_key(|&b| std::cmp::Reverse(lengths[b])); // stable: ties keep their order
        let active = (0..steps)
            .map(|t| lengths.iter().filter(|&&l| l > t).count())
            .collect();
        let identity = perm.iter().enumerate().all(|(k, &b)| k == b);
        Ok(BatchOrder {
            perm: (!identity).then_some(perm),
            active,
            batch,
        })
    }

    pub fn active(&self) -> &[usize] {
        &self.active
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    fn source(&self, k: usize) -> usize {
        self.perm.as_ref().map_or(k, |p| p[k])
    }

    /// `[T, B, F]` in the caller's order → flat `[T·B, F]` in sorted order, into `out` (cleared
    /// first, so a workspace buffer can be reused).
    pub fn gather_steps_into(&self, x: ArrayView3<f32>, mut out: Vec<f32>) -> Vec<f32> {
        out.clear();
        if self.perm.is_none() {
            // Already in order: one copy (a memcpy when the view is contiguous).
            match x.as_slice() {
                Some(s) => out.extend_from_slice(s),
                None => out.extend(x.iter().copied()),
            }
            return out;
        }
        let batch = x.dim().1;
        for step in x.axis_iter(Axis(0)) {
            for k in 0..batch {
                out.extend(step.index_axis(Axis(0), self.source(k)).iter());
            }
        }
        out
    }

    /// [`BatchOrder::scatter_steps`] taking the buffer: no copy when the order is the caller's.
    pub fn scatter_steps_owned(&self, x: Vec<f32>, steps: usize, feat: usize) -> Array3<f32> {
        if self.perm.is_none() {
            return Array3::from_shape_vec((steps, self.batch, feat), x)
                .expect("buffer holds [T, B, F]");
        }
        self.scatter_steps(&x, steps, feat)
    }

    /// Flat `[T·B, F]` in sorted order → `[T, B, F]` in the caller's order.
    pub fn scatter_steps(&self, x: &[f32], steps: usize, feat: usize) -> Array3<f32> {
        if self.perm.is_none() {
            return Array3::from_shape_vec((steps, self.batch, feat), x.to_vec())
                .expect("buffer holds [T, B, F]");
        }
        let mut out = Array3::zeros((steps, self.batch, feat));
        for (t, mut step) in out.axis_iter_mut(Axis(0)).enumerate() {
            for k in 0..self.batch {
                let row = &x[(t * self.batch + k) * feat..(t * self.batch + k + 1) * feat];
                step.index_axis_mut(Axis(0), self.source(k))
                    .iter_mut()
                    .zip(row)
                    .for_each(|(o, v)| *o = *v);
            }
        }
        out
    }

    /// `[B, F]` in the caller's order → flat `[B, F]` sorted.
    pub fn gather_rows(&self, x: ArrayView2<f32>) -> Vec<f32> {
        let mut out = Vec::with_capacity(x.len());
        for k in 0..self.batch {
            out.extend(x.index_axis(Axis(0), self.source(k)).iter());
        }
        out
    }

    /// Flat sorted `[B, F]` → `out` `[B, F]` in the caller's order.
    pub fn scatter_rows(&self, x: &[f32], mut out: ArrayViewMut2<f32>) {
        let feat = out.ncols();
        for k in 0..self.batch {
            out.index_axis_mut(Axis(0), self.source(k))
                .iter_mut()
                .zip(&x[k * feat..(k + 1) * feat])
                .for_each(|(o, v)| *o = *v);
        }
    }
}
