//! Disjoint-row writes into one buffer from several threads.
//!
//! A layer direction keeps per-step buffers laid out `[T, B, W]`. When the batch is split
//! between threads, each thread writes only its own batch rows `b0..b1` of every time step —
//! interleaved regions of one slice, which the borrow checker cannot split. `SharedRows` hands
//! out those regions; the caller guarantees that concurrent tasks use disjoint batch ranges.

use std::marker::PhantomData;

/// A `[T, B, W]` buffer shared between tasks that own disjoint batch ranges.
pub(crate) struct SharedRows<'a> {
    ptr: *mut f32,
    steps: usize,
    batch: usize,
    width: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: access goes through `rows_mut`, whose contract makes concurrent regions disjoint.
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
            _borrow: PhantomData,
        }
    }

    /// The rows `b0..b1` of step `t`, as one contiguous `[b1 - b0, W]` slice.
    ///
    /// # Safety
    /// While the returned slice lives, no other call may return an overlapping region: tasks
    /// running at the same time must use disjoint batch ranges.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn rows_mut(&self, t: usize, b0: usize, b1: usize) -> &mut [f32] {
        assert!(
            t < self.steps && b0 <= b1 && b1 <= self.batch,
            "rows out of range"
        );
        let start = (t * self.batch + b0) * self.width;
        // SAFETY: in bounds (checked above); disjointness is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), (b1 - b0) * self.width) }
    }
}
