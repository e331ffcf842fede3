//! Per-step products of the time loop with persistent packed weights: `C[m, n] (+)= A[m, k] ·
//! B[k, n]` where `A` is a few rows (a batch chunk) and `B` a weight matrix that stays the same
//! for every step.
//!
//! A GEMM library packs `B` into panels on every call; in a time loop that re-packs the same
//! weights every step (about 13% of the time at `H = 256`, more at small sizes). Here `B` is
//! packed once per pass ([`PackedB`], panel-major `[⌈n/16⌉][k][16]`, zero-padded), as cuDNN's
//! persistent kernels keep weights resident, so a step reads each 16-column panel as one
//! contiguous stream. The micro-kernel keeps a 6×16 block of `C` in twelve AVX2 registers (the
//! BLIS Haswell shape): per `k`, two loads of `B`, six broadcasts of `A`, twelve FMAs.

const MR: usize = 6;
const NR: usize = 16;

/// A `[k, n]` matrix packed into 16-column panels for [`gemm_packed`].
///
/// ```
/// use rnnkit::kernels::small_gemm::{PackedB, gemm_packed};
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // W [2, 3] row-major
/// let wt = PackedB::from_transposed(&w, 2, 3); // packs Wᵀ [3, 2]
/// let x = [1.0f32, 1.0, 1.0]; // one row, k = 3
/// let mut y = [0.0f32; 2];
/// gemm_packed(&mut y, 2, &x, 3, 1, &wt, false, 1);
/// assert_eq!(y, [6.0, 15.0]); // x · Wᵀ
/// ```
#[derive(Clone, Debug)]
pub struct PackedB {
    data: Vec<f32>, // [⌈n/16⌉, k, 16]
    k: usize,
    n: usize,
}

impl PackedB {
    /// Packs a row-major `b[k, n]` with row stride `ldb`.
    pub fn from_row_major(b: &[f32], ldb: usize, k: usize, n: usize) -> Self {
        Self::pack(k, n, |p, j| b[p * ldb + j])
    }

    /// Packs `wᵀ` for a row-major `w[rows, cols]`: the result is `[cols, rows]`.
    pub fn from_transposed(w: &[f32], rows: usize, cols: usize) -> Self {
        Self::pack(cols, rows, |p, j| w[j * cols + p])
    }

    fn pack(k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; panels * k * NR];
        for (panel, chunk) in data.chunks_exact_mut(k * NR).enumerate() {
            let j0 = panel * NR;
            for (p, row) in chunk.chunks_exact_mut(NR).enumerate() {
                for (jj, v) in row
                    .iter_mut()
                    .enumerate()
                    .take(n.saturating_sub(j0).min(NR))
                {
                    *v = at(p, j0 + jj);
                }
            }
        }
        PackedB { data, k, n }
    }

    /// Rows `k` of the unpacked matrix.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n` of the unpacked matrix.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// `c[m, n] (row stride ldc) (+)= a[m, k] (row stride lda) · b`.
///
/// `threads > 1` splits the panels between two threads when the product is worth it.
///
/// # Panics
/// If a slice is too short for its shape (an internal invariant).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    accumulate: bool,
    threads: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm_packed: c too short"
    );
    assert!(
        k == 0 || (lda >= k && a.len() >= (m - 1) * lda + k),
        "gemm_packed: a too short"
    );
    if !accumulate {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
    }
    if k == 0 {
        return;
    }
    let panels = n.div_ceil(NR);
    let cp = CPtr(c.as_mut_ptr());
    if threads > 1 && panels >= 4 && m * n * k >= 1 << 17 {
        let half = panels / 2;
        rayon::join(
            // SAFETY: extents checked above; the halves write disjoint panels of each row.
            || unsafe { gemm_panels(cp, ldc, a, lda, m, b, (0, half)) },
            || unsafe { gemm_panels(cp, ldc, a, lda, m, b, (half, panels)) },
        );
    } else {
        // SAFETY: extents checked above.
        unsafe { gemm_panels(cp, ldc, a, lda, m, b, (0, panels)) };
    }
}

/// [`gemm_packed`] for many rows (`m` in the thousands: all steps of a sequence at once), split
/// between threads by blocks of rows sized so a block of `A` stays in L2 while the panels of `B`
/// stream past it.
///
/// ```
/// use rnnkit::kernels::small_gemm::{PackedB, gemm_packed_rows};
/// let wt = PackedB::from_transposed(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3);
/// let x = vec![1.0f32; 3 * 100]; // 100 rows, k = 3
/// let mut y = vec![0.0f32; 2 * 100];
/// gemm_packed_rows(&mut y, 2, &x, 3, 100, &wt, false, 2);
/// assert!(y.chunks(2).all(|r| r == [6.0, 15.0]));
/// ```
///
/// # Panics
/// If a slice is too short for its shape (an internal invariant).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_rows(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    accumulate: bool,
    threads: usize,
) {
    use rayon::prelude::*;
    let k = b.k.max(1);
    // About 256 KB of A per block, a multiple of the 8-row micro-tile, at least one tile.
    let block = ((256 * 1024 / 4 / k) / 8 * 8).clamp(8, 512);
    if threads <= 1 || m <= block {
        gemm_packed(c, ldc, a, lda, m, b, accumulate, 1);
        return;
    }
    assert!(
        c.len() >= (m - 1) * ldc + b.n,
        "gemm_packed_rows: c too short"
    );
    assert!(
        a.len() >= (m - 1) * lda + b.k,
        "gemm_packed_rows: a too short"
    );
    let c = &mut c[..(m - 1) * ldc + b.n];
    c.par_chunks_mut(block * ldc)
        .enumerate()
        .for_each(|(blk, cb)| {
            let r0 = blk * block;
            let rows = (m - r0).min(block);
            gemm_packed(cb, ldc, &a[r0 * lda..], lda, rows, b, accumulate, 1);
        });
}

/// The destination pointer, shareable between the two panel halves.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the halves that share it write disjoint columns.
unsafe impl Send for CPtr {}
unsafe impl Sync for CPtr {}

/// `C[:, panels p0..p1] += A · B[:, panels p0..p1]`.
///
/// # Safety
/// `c` valid for `m` rows of stride `ldc ≥ n`; no other thread touches these columns meanwhile;
/// `a` holds `m` rows of stride `lda ≥ k`.
unsafe fn gemm_panels(
    c: CPtr,
    ldc: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    (p0, p1): (usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512f() {
        // SAFETY: same contract; AVX-512F present.
        unsafe { avx512::gemm_panels(c, ldc, a, lda, m, b, (p0, p1)) };
        return;
    }
    // SAFETY: same contract.
    unsafe { gemm_panels_6x16(c, ldc, a, lda, m, b, (p0, p1)) }
}

/// [`gemm_panels`] with the AVX2 6×16 block (or plain loops without AVX2).
///
/// # Safety
/// As [`gemm_panels`].
unsafe fn gemm_panels_6x16(
    c: CPtr,
    ldc: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    (p0, p1): (usize, usize),
) {
    let mut tmp = [0.0f32; MR * NR];
    for panel in p0..p1 {
        let j0 = panel * NR;
        let width = (b.n - j0).min(NR);
        let bpanel = &b.data[panel * b.k * NR..(panel + 1) * b.k * NR];
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(MR);
            let a_rows = &a[i * lda..];
            tmp[..rows * NR].fill(0.0);
            tile(&mut tmp, a_rows, lda, rows, bpanel, b.k);
            for r in 0..rows {
                // SAFETY: row i + r < m, columns j0..j0 + width <= n, exclusively ours.
                let out =
                    unsafe { std::slice::from_raw_parts_mut(c.0.add((i + r) * ldc + j0), width) };
                for (o, v) in out.iter_mut().zip(&tmp[r * NR..r * NR + width]) {
                    *o += v;
                }
            }
            i += rows;
        }
    }
}

/// `tmp[rows, 16] += a[rows, k] · panel[k, 16]`, dispatched to AVX2 when present.
fn tile(tmp: &mut [f32; MR * NR], a: &[f32], lda: usize, rows: usize, panel: &[f32], k: usize) {
    assert!(rows <= MR && panel.len() >= k * NR && a.len() >= (rows - 1) * lda + k);
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() {
        // SAFETY: AVX2 and FMA are present; extents asserted above.
        unsafe {
            match rows {
                6 => avx2::tile::<6>(tmp, a, lda, panel, k),
                5 => avx2::tile::<5>(tmp, a, lda, panel, k),
                4 => avx2::tile::<4>(tmp, a, lda, panel, k),
                3 => avx2::tile::<3>(tmp, a, lda, panel, k),
                2 => avx2::tile::<2>(tmp, a, lda, panel, k),
                _ => avx2::tile::<1>(tmp, a, lda, panel, k),
            }
        }
        return;
    }
    for r in 0..rows {
        for p in 0..k {
            let av = a[r * lda + p];
            for (t, bv) in tmp[r * NR..(r + 1) * NR]
                .iter_mut()
                .zip(&panel[p * NR..(p + 1) * NR])
            {
                *t += av * bv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// The 6×16 micro-kernel (`R ≤ 6` rows), the block kept in registers.
    ///
    /// # Safety
    /// AVX2+FMA present; `a` holds `R` rows of stride `lda` and `k` columns; `panel` holds
    /// `k * 16` values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile<const R: usize>(
        tmp: &mut [f32; MR * NR],
        a: &[f32],
        lda: usize,
        panel: &[f32],
        k: usize,
    ) {
        let (ap, bp) = (a.as_ptr(), panel.as_ptr());
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        // SAFETY: offsets stay below (R-1)·lda + k in a and k·16 in panel (caller's contract).
        unsafe {
            for p in 0..k {
                let b0 = _mm256_loadu_ps(bp.add(p * NR));
                let b1 = _mm256_loadu_ps(bp.add(p * NR + 8));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ap.add(r * lda + p));
                    acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let out = &mut tmp[r * NR..(r + 1) * NR];
            // SAFETY: `out` holds 16 values.
            unsafe {
                _mm256_storeu_ps(out.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(out.as_mut_ptr().add(8), acc[1]);
            }
        }
    }
}

/// The AVX-512 path: a block of up to 8 rows × 3 panels (48 columns) of `C` in 24 of the 32
/// `zmm` registers. Per `k`: three loads of `B`, eight broadcasts of `A`, 24 FMAs — twice the
/// work per load of the AVX2 6×16 block, so the per-step product leans less on L1/L2 bandwidth
/// (`B` panels of a 512-wide `W_hh` do not fit in L1).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{CPtr, NR, PackedB};
    use std::arch::x86_64::*;

    const MR: usize = 8;
    const NP: usize = 3;
    const W: usize = NP * NR;

    /// `C[:, panels p0..p1] += A · B[:, panels p0..p1]`.
    ///
    /// # Safety
    /// As [`super::gemm_panels`], and AVX-512F present.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gemm_panels(
        c: CPtr,
        ldc: usize,
        a: &[f32],
        lda: usize,
        m: usize,
        b: &PackedB,
        (p0, p1): (usize, usize),
    ) {
        let k = b.k;
        let mut tmp = [0.0f32; MR * W];
        let mut panel = p0;
        while panel < p1 {
            let np = (p1 - panel).min(NP);
            let j0 = panel * NR;
            let width = (b.n - j0).min(np * NR);
            let panels = &b.data[panel * k * NR..(panel + np) * k * NR];
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let a_rows = &a[i * lda..];
                assert!(a_rows.len() >= (rows - 1) * lda + k);
                // SAFETY: extents asserted above and by the caller; AVX-512F present.
                unsafe {
                    match np {
                        3 => tile_rows::<3>(&mut tmp, a_rows, lda, rows, panels, k),
                        2 => tile_rows::<2>(&mut tmp, a_rows, lda, rows, panels, k),
                        _ => tile_rows::<1>(&mut tmp, a_rows, lda, rows, panels, k),
                    }
                }
                for r in 0..rows {
                    // SAFETY: row i + r < m, columns j0..j0 + width <= n, exclusively ours.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(c.0.add((i + r) * ldc + j0), width)
                    };
                    for (o, v) in out.iter_mut().zip(&tmp[r * W..r * W + width]) {
                        *o += v;
                    }
                }
                i += rows;
            }
            panel += np;
        }
    }

    /// # Safety
    /// AVX-512F present; `a` holds `rows ≤ 8` rows of stride `lda` and `k` columns; `panels`
    /// holds `P` panels of `k * 16` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_rows<const P: usize>(
        tmp: &mut [f32; MR * W],
        a: &[f32],
        lda: usize,
        rows: usize,
        panels: &[f32],
        k: usize,
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            match rows {
                8 => tile::<8, P>(tmp, a, lda, panels, k),
                7 => tile::<7, P>(tmp, a, lda, panels, k),
                6 => tile::<6, P>(tmp, a, lda, panels, k),
                5 => tile::<5, P>(tmp, a, lda, panels, k),
                4 => tile::<4, P>(tmp, a, lda, panels, k),
                3 => tile::<3, P>(tmp, a, lda, panels, k),
                2 => tile::<2, P>(tmp, a, lda, panels, k),
                _ => tile::<1, P>(tmp, a, lda, panels, k),
            }
        }
    }

    /// The `R × 16P` micro-kernel, the block kept in registers.
    ///
    /// # Safety
    /// As [`tile_rows`] with `rows = R`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const P: usize>(
        tmp: &mut [f32; MR * W],
        a: &[f32],
        lda: usize,
        panels: &[f32],
        k: usize,
    ) {
        let (ap, bp) = (a.as_ptr(), panels.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        // SAFETY: offsets stay below (R-1)·lda + k in a and P·k·16 in panels.
        unsafe {
            for p in 0..k {
                let mut bv = [_mm512_setzero_ps(); P];
                for (q, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm512_loadu_ps(bp.add(q * k * NR + p * NR));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r * lda + p));
                    for (acc, bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_fmadd_ps(av, *bv, *acc);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (q, acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(tmp.as_mut_ptr().add(r * W + q * NR), *acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_blocks_match_naive_for_many_rows() {
        for (m, k, n) in [(777, 37, 70), (300, 512, 50), (1000, 2048, 17)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            let packed = PackedB::from_row_major(&b, n, k, n);
            for threads in [1, 2, 3] {
                let mut c = vec![0.5f32; m * n];
                gemm_packed_rows(&mut c, n, &a, k, m, &packed, true, threads);
                for i in (0..m).step_by(7) {
                    for j in 0..n {
                        let want: f64 = 0.5
                            + (0..k)
                                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                                .sum::<f64>();
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-4 * want.abs().max(1.0) * (k as f64).sqrt(),
                            "{m}x{k}x{n} threads {threads} [{i},{j}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn matches_naive_on_ragged_shapes() {
        for (m, k, n) in [
            (1, 1, 1),
            (6, 16, 16),
            (7, 5, 33),
            (13, 64, 256),
            (2, 3, 17),
            (9, 40, 48),
            (5, 300, 200),
            (17, 33, 100),
            (8, 7, 48),
            (32, 64, 2048),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0)
                .collect();
            let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect(); // [n, k]
            for packed in [
                PackedB::from_row_major(&b, n, k, n),
                PackedB::from_transposed(&bt, n, k),
            ] {
                for path in 0..4 {
                    let ldc = n + 3;
                    let mut c = vec![1.0f32; m * ldc];
                    let cp = CPtr(c.as_mut_ptr());
                    let all = (0, n.div_ceil(NR));
                    match path {
                        0 => gemm_packed(&mut c, ldc, &a, k, m, &packed, true, 1),
                        1 => gemm_packed(&mut c, ldc, &a, k, m, &packed, true, 2),
                        // SAFETY: c holds m rows of stride ldc >= n, a m rows of k.
                        2 => unsafe { gemm_panels_6x16(cp, ldc, &a, k, m, &packed, all) },
                        #[cfg(target_arch = "x86_64")]
                        _ if crate::kernels::has_avx512f() => {
                            // SAFETY: as above, and AVX-512F present.
                            unsafe { avx512::gemm_panels(cp, ldc, &a, k, m, &packed, all) }
                        }
                        _ => continue,
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let want: f64 = 1.0
                                + (0..k)
                                    .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                                    .sum::<f64>();
                            let got = c[i * ldc + j] as f64;
                            assert!(
                                (got - want).abs() < 1e-4 * want.abs().max(1.0),
                                "path {path}: {m}x{k}x{n} [{i},{j}]"
                            );
                        }
                        assert!(
                            c[i * ldc + n..i * ldc + ldc].iter().all(|&v| v == 1.0),
                            "padding touched"
                        );
                    }
                }
            }
        }
    }
}
