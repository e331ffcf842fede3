//! Recycled buffers for the big per-pass arrays of the recurrent stack.
//!
//! A training pass over `[T, B]` allocates a few arrays of `T·B·G·H` floats: the input
//! projections, the gate cache, the gate gradients (52 MB each for the 2×512 character model at
//! `T·B = 6400`). Arrays that large come from the allocator as fresh pages on every call, and the
//! kernel maps and zeroes them on first touch: that was 7.7% of the CPU time of a training run
//! (`/usr/bin/time` system time of `examples/char_lm`). The workspace keeps the arrays of one pass
//! and hands them out again to the next, so pages stay mapped, as faer's and cuDNN's workspaces
//! do.

use std::sync::Mutex;

/// Buffers smaller than this (16 KB) are left to the allocator, which reuses them well.
/// Larger ones are pooled: glibc maps buffers from 128 KB up afresh on each allocation, and
/// trims freed heap, so a mid-size buffer left to it is faulted in again on every pass. With the
/// bound at 256 KB, `lstm-small` (per-step caches of 200 KB) took 242k page faults in a bench
/// run and trained at 509k tokens/s; at 16 KB, 26k faults and 702k tokens/s (2 threads, AMD
/// EPYC, medians of 5 alternating rounds, 2026-12-06); no other case moved.
const MIN_POOLED: usize = 1 << 12;
/// At most this many idle buffers are kept (a pass of a deep bidirectional stack holds a few
/// dozen at once; more than that would only be memory held for nothing).
const MAX_IDLE: usize = 64;

/// A pool of `f32` buffers shared by a stack and the caches its passes return.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    idle: Mutex<Vec<Vec<f32>>>,
}

impl Workspace {
    /// A buffer of `len` zeros: the smallest idle one large enough, or a new one.
    pub fn zeros(&self, len: usize) -> Vec<f32> {
        let mut v = self.take_capacity(len);
        v.resize(len, 0.0);
        v
    }

    /// An empty buffer with capacity for at least `len` values (for `extend` / `push` fills).
    pub fn take_capacity(&self, len: usize) -> Vec<f32> {
        if len >= MIN_POOLED {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let best = idle
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                let mut v = idle.swap_remove(i);
                v.clear();
                return v;
            }
        }
        Vec::with_capacity(len)
    }

    /// Returns a buffer for later passes.
    pub fn recycle(&self, v: Vec<f32>) {
        if v.capacity() < MIN_POOLED {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(v);
        if idle.len() > MAX_IDLE {
            // Drop the smallest: large ones are the expensive ones to map again.
            let (i, _) = idle
                .iter()
                .enumerate()
                .min_by_key(|(_, v)| v.capacity())
                .expect("not empty");
            idle.swap_remove(i);
        }
    }

    /// Returns every buffer of an iterator (empty ones are ignored).
    pub fn recycle_all(&self, bufs: impl IntoIterator<Item = Vec<f32>>) {
        for v in bufs {
            self.recycle(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_smallest_fitting_buffer_and_zeroes_it() {
        let ws = Workspace::default();
        let mut a = ws.zeros(MIN_POOLED * 4);
        a.fill(3.0);
        let pa = a.as_ptr();
        let b = ws.zeros(MIN_POOLED * 2);
        let pb = b.as_ptr();
        ws.recycle(a);
        ws.recycle(b);
        let c = ws.zeros(MIN_POOLED * 2);
        assert_eq!(c.as_ptr(), pb, "the smaller buffer fits and is taken");
        let d = ws.zeros(MIN_POOLED * 3);
        assert_eq!(d.as_ptr(), pa);
        assert!(d.iter().all(|&v| v == 0.0));
        assert_eq!(d.len(), MIN_POOLED * 3);
    }

    #[test]
    fn small_buffers_are_not_pooled_and_the_pool_is_bounded() {
        let ws = Workspace::default();
        ws.recycle(vec![1.0; 10]);
        assert!(ws.idle.lock().unwrap().is_empty());
        for _ in 0..MAX_IDLE + 5 {
            ws.recycle(Vec::with_capacity(MIN_POOLED));
        }
        assert_eq!(ws.idle.lock().unwrap().len(), MAX_IDLE);
    }
}
