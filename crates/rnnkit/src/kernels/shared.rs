//! Disjoint-row writes into one buffer from several threads, checked.
//!
//! A layer direction keeps per-step buffers laid out `[T, B, W]`. When the batch is split
//! between threads, each thread writes only its own batch rows `b0..b1` of every time step —
//! interleaved regions of one slice, which the borrow checker cannot split. A task *claims* its
//! batch range from a [`SharedRows`] and gets a [`RowsHandle`]; claims are checked for overlap
//! at run time (once per task, not per step), so safe code cannot make two live handles over the
//! same rows, and a handle lends out one row block at a time.

use std::marker::PhantomData;
use std::sync::Mutex;

/// A `[T, B, W]` buffer shared between tasks that claim disjoint batch ranges.
pub(crate) struct SharedRows<'a> {
    ptr: *mut f32,
    steps: usize,
    batch: usize,
    width: usize,
    claimed: Mutex<Vec<(usize, usize)>>,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: all access goes through `RowsHandle`s, whose batch ranges are disjoint (checked in
// `claim`), so threads never touch the same element.
unsafe impl Send for SharedRows<'_> {}
unsafe impl Sync for SharedRows<'_> {}

impl<'a> SharedRows<'a> {
    /// Wraps `data`, which must hold exactly `steps * batch * width` values.
    pub fn new(data: &'a mut [f32], steps: usize, batch: usize, width: usize) -> Self {
        assert_eq!(data.len(), steps * batch * width, "shared buffer size");
        SharedRows {
            ptr: data.as_mut_ptr(),
            steps,
            batch,
            width,
            claimed: Mutex::new(Vec::new()),
            _borrow: PhantomData,
        }
    }

    /// Claims batch rows `b0..b1` of every step until the handle is dropped.
    ///
    /// # Panics
    /// If the range is out of bounds or overlaps a live claim (a bug in the caller's split).
    pub fn claim(&self, b0: usize, b1: usize) -> RowsHandle<'_> {
        assert!(
            b0 <= b1 && b1 <= self.batch,
            "claim {b0}..{b1} outside 0..{}",
            self.batch
        );
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            claimed
                .iter()
                .all(|&(c0, c1)| b1 <= c0 || c1 <= b0 || b0 == b1),
            "batch rows {b0}..{b1} overlap a claim in {claimed:?}"
        );
        claimed.push((b0, b1));
        RowsHandle {
            owner: self,
            b0,
            b1,
        }
    }
}

/// Exclusive access to batch rows `b0..b1` of every step of a [`SharedRows`].
pub(crate) struct RowsHandle<'s> {
    owner: &'s SharedRows<'s>,
    b0: usize,
    b1: usize,
}

impl RowsHandle<'_> {
    /// The first `n` claimed rows of step `t` (`b0..b0 + n`), as one contiguous `[n, W]` slice.
    pub fn rows_mut(&mut self, t: usize, n: usize) -> &mut [f32] {
        let o = self.owner;
        assert!(
            t < o.steps && n <= self.b1 - self.b0,
            "rows out of the claimed range"
        );
        let start = (t * o.batch + self.b0) * o.width;
        // SAFETY: in bounds (checked above); the rows belong to this handle's claim, which no
        // other live handle overlaps, and `&mut self` keeps one slice of them alive at a time.
        unsafe { std::slice::from_raw_parts_mut(o.ptr.add(start), n * o.width) }
    }
}

impl Drop for RowsHandle<'_> {
    fn drop(&mut self) {
        let mut claimed = self.owner.claimed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = claimed.iter().position(|&c| c == (self.b0, self.b1)) {
            claimed.swap_remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_claims_write_their_own_rows() {
        let mut data = vec![0.0f32; 2 * 4 * 3];
        {
            let shared = SharedRows::new(&mut data, 2, 4, 3);
            std::thread::scope(|s| {
                for (b0, b1) in [(0, 1), (1, 4)] {
                    let shared = &shared;
                    s.spawn(move || {
                        let mut h = shared.claim(b0, b1);
                        for t in 0..2 {
                            h.rows_mut(t, b1 - b0).fill(b0 as f32 + 1.0);
                        }
                    });
                }
            });
        }
        assert_eq!(&data[..3], &[1.0; 3]);
        assert_eq!(&data[3..12], &[2.0; 9]);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_claims_panic() {
        let mut data = vec![0.0f32; 8];
        let shared = SharedRows::new(&mut data, 1, 4, 2);
        let _a = shared.claim(0, 3);
        let _b = shared.claim(2, 4);
    }
}
