//! Whole-parameter passes of a training step: the sum of squares behind gradient clipping, a
//! scale, `w -= lr·g`, and zeroing.
//!
//! A language model's parameters are millions of values (PTB small: 4.6 M, most of them in the
//! embedding and the decoder). A plain `iter().map(..).sum::<f64>()` is one chain of dependent
//! f64 additions, about 4 cycles per element, and runs on one core: in the PTB small step the
//! clipping norm, the SGD update and the zeroing of the gradients took about 8% of the CPU
//! samples while the other core waited. Here each pass runs over blocks of [`BLOCK`] values,
//! vectorized (eight independent f32 partial sums per block), split between threads when the
//! whole is large, and the sums are combined in block order, so the result does not depend on
//! the thread count.

use rayon::prelude::*;

/// Values per block: 16 KiB, small enough for L1, large enough that a block is worth a task.
pub const BLOCK: usize = 4096;

/// Below this many values in all, passes run on the calling thread (a fork-join costs more).
const PARALLEL_FROM: usize = 1 << 16;

simd_fn! {
    /// `out = Σ x²` over one block: eight f32 partial sums (so the loop vectorizes), combined
    /// in f64.
    fn block_sum_squares(x: &[f32], out: &mut f64) {
        let mut acc = [0.0f32; 8];
        let n8 = x.len() - x.len() % 8;
        for c in x[..n8].chunks_exact(8) {
            for k in 0..8 {
                acc[k] += c[k] * c[k];
            }
        }
        let mut s: f64 = acc.iter().map(|&a| a as f64).sum();
        for &v in &x[n8..] {
            s += v as f64 * v as f64;
        }
        *out = s;
    }
}

simd_fn! {
    /// `x *= a`.
    fn block_scale(x: &mut [f32], a: f32) {
        for v in x.iter_mut() {
            *v *= a;
        }
    }
}

simd_fn! {
    /// `y += a·x`.
    fn block_axpy(y: &mut [f32], a: f32, x: &[f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }
}

fn total_len<S: AsRef<[f32]>>(slices: &[S]) -> usize {
    slices.iter().map(|s| s.as_ref().len()).sum()
}

/// `Σ x²` over every value of every slice, in f64 across blocks. The same for any thread count.
///
/// ```
/// use rnnkit::kernels::elementwise::sum_squares;
/// let (a, b) = (vec![3.0f32; 10_000], vec![4.0f32]);
/// assert_eq!(sum_squares(&[&a[..], &b[..]]), 90_016.0);
/// ```
pub fn sum_squares(slices: &[&[f32]]) -> f64 {
    let blocks: Vec<&[f32]> = slices.iter().flat_map(|s| s.chunks(BLOCK)).collect();
    let one = |b: &&[f32]| {
        let mut s = 0.0f64;
        block_sum_squares(b, &mut s);
        s
    };
    let partial: Vec<f64> = if total_len(slices) >= PARALLEL_FROM {
        blocks.par_iter().map(one).collect()
    } else {
        blocks.iter().map(one).collect()
    };
    partial.iter().sum()
}

/// `x *= a` for every value of every slice.
///
/// ```
/// use rnnkit::kernels::elementwise::scale;
/// let mut g = vec![2.0f32; 3];
/// scale(&mut [&mut g[..]], 0.5);
/// assert_eq!(g, [1.0; 3]);
/// ```
pub fn scale(slices: &mut [&mut [f32]], a: f32) {
    let parallel = total_len(slices) >= PARALLEL_FROM;
    let mut blocks: Vec<&mut [f32]> = slices
        .iter_mut()
        .flat_map(|s| s.chunks_mut(BLOCK))
        .collect();
    if parallel {
        blocks.par_iter_mut().for_each(|b| block_scale(b, a));
    } else {
        blocks.iter_mut().for_each(|b| block_scale(b, a));
    }
}

/// `y += a·x` (one parameter's SGD step is `axpy(w, -lr, g)`).
///
/// ```
/// use rnnkit::kernels::elementwise::axpy;
/// let mut w = vec![1.0f32; 5];
/// axpy(&mut w, -0.5, &[2.0; 5]);
/// assert_eq!(w, [0.0; 5]);
/// ```
///
/// # Panics
/// If the lengths differ (an internal invariant: optimizers check shapes first).
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(y.len(), x.len(), "axpy: lengths differ");
    if y.len() >= PARALLEL_FROM {
        y.par_chunks_mut(BLOCK)
            .zip(x.par_chunks(BLOCK))
            .for_each(|(y, x)| block_axpy(y, a, x));
    } else {
        block_axpy(y, a, x);
    }
}

/// Sets every value to zero, the large ones split between threads.
///
/// ```
/// use rnnkit::kernels::elementwise::fill_zero;
/// let mut g = vec![1.0f32; 100_000];
/// fill_zero(&mut g);
/// assert!(g.iter().all(|&v| v == 0.0));
/// ```
pub fn fill_zero(x: &mut [f32]) {
    if x.len() >= PARALLEL_FROM {
        x.par_chunks_mut(BLOCK * 16).for_each(|c| c.fill(0.0));
    } else {
        x.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_squares_is_close_to_f64_and_independent_of_threads() {
        let x: Vec<f32> = (0..300_001)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let exact: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
        let parts = [&x[..1000], &x[1000..150_003], &x[150_003..]];
        let got = sum_squares(&parts);
        assert!((got - exact).abs() / exact < 1e-6, "{got} vs {exact}");
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one.install(|| sum_squares(&parts)), got);
        assert_eq!(sum_squares(&[]), 0.0);
    }

    #[test]
    fn scale_axpy_and_zero_touch_every_value() {
        for n in [0, 7, BLOCK + 3, PARALLEL_FROM + 5] {
            let mut w = vec![1.0f32; n];
            let g: Vec<f32> = (0..n).map(|i| i as f32).collect();
            axpy(&mut w, -2.0, &g);
            assert!(
                w.iter()
                    .enumerate()
                    .all(|(i, &v)| v == 1.0 - 2.0 * i as f32)
            );
            let (mut a, mut b) = (w.clone(), vec![3.0f32; n]);
            scale(&mut [&mut a[..], &mut b[..]], 0.5);
            assert!(a.iter().zip(&w).all(|(a, w)| *a == w * 0.5));
            assert!(b.iter().all(|&v| v == 1.5));
            fill_zero(&mut a);
            assert!(a.iter().all(|&v| v == 0.0));
        }
    }
}
