//! The one GEMM entry point: strided matrix views over slices, checked once, then handed to the
//! right kernel: the `gemm` crate (pure Rust, runtime-dispatched micro-kernels), or an AVX2
//! matrix-vector product for single rows. (The time loop's per-step products with packed
//! weights use [`super::small_gemm`] directly.)

/// A read-only strided view of an `rows x cols` matrix inside a slice.
///
/// ```
/// use rnnkit::kernels::gemm::MatRef;
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3] row-major
/// let wt = MatRef::row_major(&w, 2, 3).t(); // [3, 2] view, no copy
/// assert_eq!((wt.rows(), wt.cols()), (3, 2));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `[rows, cols]` matrix at the start of `data`.
    ///
    /// # Panics
    /// If `data` is shorter than `rows * cols` (an internal invariant: callers size buffers).
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "matrix [{rows}, {cols}] over {} values",
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Rows of the view.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the view.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// `dst[m, n] (row stride ld_dst) = (accumulate ? dst : 0) + a[m, k] * b[k, n]`.
///
/// `threads > 1` lets the GEMM split its work over the current rayon pool.
///
/// ```
/// use rnnkit::kernels::gemm::{matmul, MatRef};
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let mut c = [0.0f32; 4];
/// matmul(&mut c, 2, MatRef::row_major(&a, 2, 2), MatRef::row_major(&a, 2, 2).t(), false, 1);
/// assert_eq!(c, [5.0, 11.0, 11.0, 25.0]); // a * aᵀ
/// ```
///
/// # Panics
/// If the shapes disagree or `dst` is too short: these are internal invariants, checked once
/// at the public boundary of the layers.
pub fn matmul(
    dst: &mut [f32],
    ld_dst: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions {k} and {}", b.rows);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ld_dst >= n && dst.len() >= (m - 1) * ld_dst + n,
        "destination too short"
    );
    if k == 0 {
        if !accumulate {
            for row in dst.chunks_mut(ld_dst).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    for v in [a, b] {
        let last = (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
        assert!(last < v.data.len(), "matrix view out of bounds");
    }
    // A single row (batch-1 streaming): a GEMM library would pack the whole weight matrix for
    // one row of output; a matrix-vector product reads it once.
    if m == 1 && a.col_stride == 1 {
        let x = &a.data[..k];
        if b.row_stride == 1 {
            // b[k, n] = W[n, k]: one dot product per output. Large ones are split between
            // threads by output rows: each core then streams half the weights.
            let (ld, w) = (b.col_stride, b.data);
            let y = &mut dst[..n];
            if threads > 1 && n >= 64 && n * k >= 1 << 16 {
                let (y0, y1) = y.split_at_mut(n / 2);
                rayon::join(
                    || gemv_dot(y0, w, ld, x, accumulate),
                    || gemv_dot(y1, &w[(n / 2) * ld..], ld, x, accumulate),
                );
            } else {
                gemv_dot(y, w, ld, x, accumulate);
            }
            return;
        }
    }
    // Parallel products are split by rows of the output into one contiguous block per thread:
    // one fork-join per product. (The library's own rayon splitting forks many small jobs, and
    // on small products the thread wake-ups cost more than they save.)
    if threads > 1 && m >= 2 * 16 && m * n * k >= 1 << 21 {
        let parts = threads.min(m / 16);
        let rows_per = m.div_ceil(parts);
        let chunks: Vec<(usize, &mut [f32])> = dst
            .chunks_mut(rows_per * ld_dst)
            .enumerate()
            .map(|(i, c)| (i * rows_per, c))
            .collect();
        rayon::scope(|s| {
            for (r0, chunk) in chunks {
                s.spawn(move |_| {
                    let rows = rows_per.min(m - r0);
                    let a_part = MatRef {
                        data: &a.data[r0 * a.row_stride..],
                        rows,
                        ..a
                    };
                    gemm_serial(chunk, ld_dst, a_part, b, accumulate);
                });
            }
        });
    } else {
        gemm_serial(dst, ld_dst, a, b, accumulate);
    }
}

/// One thread of [`matmul`]: the `gemm` crate without parallelism. Views are bounds-checked.
fn gemm_serial(dst: &mut [f32], ld_dst: usize, a: MatRef<'_>, b: MatRef<'_>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for v in [a, b] {
        let last = (v.rows - 1) * v.row_stride + (v.cols - 1) * v.col_stride;
        assert!(last < v.data.len(), "matrix view out of bounds");
    }
    assert!(dst.len() >= (m - 1) * ld_dst + n, "destination too short");
    // SAFETY: every index the views and dst can reach was bounds-checked just above; dst is a
    // unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld_dst as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `y[j] (+)= Σ_k w[j·ld + k] · x[k]` for a row-major `w`: one dot product per output.
fn gemv_dot(y: &mut [f32], w: &[f32], ld: usize, x: &[f32], accumulate: bool) {
    let (n, k) = (y.len(), x.len());
    assert!(
        n == 0 || (n - 1) * ld + k <= w.len(),
        "gemv: matrix too short"
    );
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: AVX2 and FMA are present; bounds were checked above.
        unsafe { gemv_dot_avx2(y, w, ld, x, accumulate) };
        return;
    }
    for (j, out) in y.iter_mut().enumerate() {
        let s: f32 = w[j * ld..j * ld + k]
            .iter()
            .zip(x)
            .map(|(a, b)| a * b)
            .sum();
        *out = if accumulate { *out + s } else { s };
    }
}

/// AVX2 dot products, four rows at a time so each load of `x` feeds four FMAs (the product is
/// bound by streaming `w` from cache, not by arithmetic).
///
/// # Safety
/// Needs AVX2 and FMA, and `(y.len() - 1) * ld + x.len() <= w.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_dot_avx2(y: &mut [f32], w: &[f32], ld: usize, x: &[f32], accumulate: bool) {
    use std::arch::x86_64::*;
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }
    let (n, k) = (y.len(), x.len());
    let k8 = k - k % 8;
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut j = 0;
    while j < n {
        let rows = (n - j).min(4);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut kk = 0;
        // SAFETY: row j + r < n and kk + 8 <= k, so every load is inside w and x.
        unsafe {
            while kk < k8 {
                let xv = _mm256_loadu_ps(xp.add(kk));
                for (r, a) in acc.iter_mut().enumerate().take(rows) {
                    *a = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add((j + r) * ld + kk)), xv, *a);
                }
                kk += 8;
            }
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            let mut s = hsum(*a);
            let row = &w[(j + r) * ld..(j + r) * ld + k];
            for t in k8..k {
                s += row[t] * x[t];
            }
            let out = &mut y[j + r];
            *out = if accumulate { *out + s } else { s };
        }
        j += rows;
    }
}

/// `out[j] += Σ_r m[r, j]` over the rows of a row-major `[rows, cols]` matrix (bias gradients).
pub fn add_column_sums(out: &mut [f32], m: &[f32], cols: usize) {
    for row in m.chunks_exact(cols) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef, b: MatRef) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += a.data[i * a.row_stride + p * a.col_stride] as f64
                        * b.data[p * b.row_stride + j * b.col_stride] as f64;
                }
                out[i * b.cols + j] = s as f32;
            }
        }
        out
    }

    #[test]
    fn matmul_matches_naive_for_all_transposes() {
        for (m, k, n) in [(7, 13, 5), (1, 37, 9), (1, 16, 3), (1, 5, 1)] {
            check_shapes(m, k, n);
        }
    }

    fn check_shapes(m: usize, k: usize, n: usize) {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
            .collect();
        let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect(); // [k, m]
        let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect(); // [n, k]
        let want = naive(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
        let views = [
            (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n)),
            (
                MatRef::row_major(&at, k, m).t(),
                MatRef::row_major(&b, k, n),
            ),
            (
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&bt, n, k).t(),
            ),
            (
                MatRef::row_major(&at, k, m).t(),
                MatRef::row_major(&bt, n, k).t(),
            ),
        ];
        for (va, vb) in views {
            let mut got = vec![1.0; m * n];
            matmul(&mut got, n, va, vb, true, 1);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - 1.0 - w).abs() < 1e-4, "{g} vs {w} + 1");
            }
            matmul(&mut got, n, va, vb, false, 2);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4);
            }
        }
    }
}
