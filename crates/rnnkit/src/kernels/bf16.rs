//! Mixed-precision products for `train.precision = "bf16"`: bfloat16 operands, f32 accumulation,
//! as PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)` runs its matrix products.
//!
//! `C[m, n] (+)= A[m, k] · B[k, n]` where `A` and `B` are rounded to bfloat16 (round to nearest
//! even) and every product and sum is in f32. The kernel is AVX512-BF16's `vdpbf16ps`: each f32
//! lane takes a pair of bf16 values of `A` and of `B` that are adjacent in `k` and adds both
//! products, so one instruction does twice the multiply-adds of an f32 FMA on the same register
//! width. Hence the layouts: `B` is packed once per pass into 16-column panels of `k`-pairs
//! (`[⌈n/16⌉][⌈k/2⌉][16]` 32-bit words, each word two bf16 of one column), and the rows of `A`
//! are rounded into `k`-pairs just before the product (a pass over `m·k` values against the
//! product's `m·k·n`).
//!
//! Where the CPU has AMX (Sapphire Rapids and later Xeons) the products run on its tiles
//! instead ([`amx`]): same operands, same per-pair arithmetic, 8× the multiply-adds per
//! instruction. Without AVX512-BF16 the same arithmetic runs in plain loops (slow; the models
//! fall back to f32 there, see [`has_bf16_dot`]); the tests compare the paths.

use std::cell::Cell;

#[cfg(target_arch = "x86_64")]
mod amx;

const NR: usize = 16;
/// Rows of `C` per register block (AVX-512 path).
const MR: usize = 8;
/// Panels of 16 columns per register block.
const NP: usize = 3;
const W: usize = NP * NR;

/// Whether the running CPU has AVX512-BF16 (`vdpbf16ps`), so bf16 products run at speed.
/// `RNNKIT_NO_AVX512=1` turns this off too.
///
/// ```
/// // Models asked for bf16 on a CPU without it train in f32 and say so.
/// let fast = rnnkit::kernels::bf16::has_bf16_dot();
/// assert_eq!(fast, fast);
/// ```
#[inline]
pub fn has_bf16_dot() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::has_avx512f() && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to the nearest bfloat16 (ties to even), as its 16 bits. NaN stays NaN.
///
/// ```
/// use rnnkit::kernels::bf16::{from_bf16, to_bf16};
/// assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
/// assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 512.0)), 1.0); // below half an ulp (1/128)
/// assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
/// ```
#[inline]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16; // quiet, keeps the sign
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// The f32 value of a bfloat16.
#[inline]
pub fn from_bf16(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// `x` rounded to bfloat16 and back: what a bf16 operand holds.
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    from_bf16(to_bf16(x))
}

/// Whether the bf16 products run on AMX tiles: the CPU has AMX-BF16, the OS granted tile
/// state, AVX512-BF16 is on (it rounds the operands) and `RNNKIT_NO_AMX=1` is not set.
///
/// ```
/// let tiles = rnnkit::kernels::bf16::has_amx();
/// assert!(!tiles || rnnkit::kernels::bf16::has_bf16_dot());
/// ```
#[inline]
pub fn has_amx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_bf16_dot() && amx::has_amx()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Pairs of `k` per panel, padded to whole AMX tiles (16 pairs) with zeros.
fn padded_pairs(k: usize) -> usize {
    k.div_ceil(2).div_ceil(16) * 16
}

/// A `[k, n]` matrix rounded to bfloat16 and packed for [`gemm_bf16`].
///
/// ```
/// use rnnkit::kernels::bf16::{PackedBf16, gemm_bf16};
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // W [2, 3] row-major
/// let wt = PackedBf16::from_transposed(&w, 2, 3); // packs Wᵀ [3, 2]
/// let x = [1.0f32, 1.0, 1.0]; // one row, k = 3
/// let mut y = [0.0f32; 2];
/// gemm_bf16(&mut y, 2, &x, 3, 1, &wt, false, 1);
/// assert_eq!(y, [6.0, 15.0]); // x · Wᵀ, exact: small integers are exact in bf16
/// ```
#[derive(Clone, Debug)]
pub struct PackedBf16 {
    data: Vec<u32>, // [⌈n/16⌉, kpp, 16], pairs past ⌈k/2⌉ zero
    k: usize,
    n: usize,
    /// Pairs per panel: `⌈k/2⌉` rounded up to a multiple of 16 (an AMX tile's rows).
    kpp: usize,
}

impl PackedBf16 {
    /// Packs a row-major `b[k, n]` with row stride `ldb`.
    pub fn from_row_major(b: &[f32], ldb: usize, k: usize, n: usize) -> Self {
        assert!(k == 0 || n == 0 || b.len() >= (k - 1) * ldb + n);
        let (panels, kp, kpp) = (n.div_ceil(NR), k.div_ceil(2), padded_pairs(k));
        let mut data = vec![0u32; panels * kpp * NR];
        // Round a whole pair of rows at once, then deal its 16-word runs out to the panels.
        let mut row = vec![0u32; panels * NR];
        for q in 0..kp {
            let lo = &b[2 * q * ldb..][..n];
            let hi = (2 * q + 1 < k).then(|| &b[(2 * q + 1) * ldb..][..n]);
            round_pairs(&mut row[..n], lo, hi);
            for (panel, run) in row.chunks_exact(NR).enumerate() {
                data[(panel * kpp + q) * NR..][..NR].copy_from_slice(run);
            }
        }
        PackedBf16 { data, k, n, kpp }
    }

    /// Packs `wᵀ` for a row-major `w[rows, cols]`: the result is `[cols, rows]`.
    pub fn from_transposed(w: &[f32], rows: usize, cols: usize) -> Self {
        assert!(w.len() >= rows * cols);
        // Column j of the result is row j of `w`, and its k-pairs are adjacent in that row:
        // read each row once, in order, and scatter its pairs into lane j % 16 of its panel.
        let (k, n) = (cols, rows);
        let (panels, kpp) = (n.div_ceil(NR), padded_pairs(k));
        let mut data = vec![0u32; panels * kpp * NR];
        for (j, row) in w.chunks_exact(cols.max(1)).take(n).enumerate() {
            let lanes = &mut data[(j / NR) * kpp * NR + j % NR..];
            let (pairs, odd) = row[..k].as_chunks::<2>();
            for (slot, p) in lanes.iter_mut().step_by(NR).zip(pairs) {
                *slot = to_bf16(p[0]) as u32 | (to_bf16(p[1]) as u32) << 16;
            }
            if let [last] = odd {
                lanes[pairs.len() * NR] = to_bf16(*last) as u32;
            }
        }
        PackedBf16 { data, k, n, kpp }
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

thread_local! {
    /// The rounded rows of `A` of the last product on this thread, kept for the next one (the
    /// time loop calls with the same shape every step). Taken out while in use, so a product
    /// that runs nested inside another on this thread (rayon work stealing) gets a fresh one.
    static PAIRS: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with a scratch vector of `len` words from this thread's pool.
/// `f` writes every word it reads, so a reused buffer is not cleared.
fn with_pairs<R>(len: usize, f: impl FnOnce(&mut [u32]) -> R) -> R {
    let mut buf = PAIRS.with(Cell::take);
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let r = f(&mut buf[..len]);
    PAIRS.with(|p| p.set(buf));
    r
}

/// `c[m, n] (row stride ldc) (+)= a[m, k] (row stride lda) · b`, `a` and `b` in bfloat16.
///
/// `threads > 1` splits the work between threads when the product is worth it: by panels of
/// `b` for a few rows (a time step), by blocks of rows for many.
///
/// # Panics
/// If a slice is too short for its shape (an internal invariant).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedBf16,
    accumulate: bool,
    threads: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        k == 0 || (lda >= k && a.len() >= (m - 1) * lda + k),
        "gemm_bf16: a too short"
    );
    // Row-major pairs; on AMX with the panels' padded stride and zero rows up to whole tiles.
    let (stride, rows) = match has_amx() {
        true => (b.kpp, m.div_ceil(16) * 16),
        false => (k.div_ceil(2), m),
    };
    with_pairs(rows * stride, |pairs| {
        round_rows(pairs, stride, a, lda, m, k);
        pairs[m * stride..].fill(0);
        let a = Pairs {
            data: pairs,
            row_stride: stride,
            pair_stride: 1,
        };
        gemm_pairs(c, ldc, a, m, b, accumulate, threads);
    });
}

/// `c[m, n] (+)= aᵀ · b` where `a` is stored `[k, m]` (row stride `lda`): the weight-gradient
/// products (`dW = dGᵀ · X` over all steps of a sequence), `a` and `b` in bfloat16.
///
/// ```
/// use rnnkit::kernels::bf16::{PackedBf16, gemm_bf16_at};
/// let dg = [1.0f32, 2.0, 3.0, 4.0]; // [k = 2, m = 2]
/// let x = PackedBf16::from_row_major(&[1.0f32, 0.0, 0.0, 1.0], 2, 2, 2); // identity
/// let mut dw = [0.0f32; 4];
/// gemm_bf16_at(&mut dw, 2, &dg, 2, 2, &x, false, 1);
/// assert_eq!(dw, [1.0, 3.0, 2.0, 4.0]); // dgᵀ
/// ```
///
/// # Panics
/// If a slice is too short for its shape (an internal invariant).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16_at(
    c: &mut [f32],
    ldc: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedBf16,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || b.n == 0 {
        return;
    }
    with_pairs_t(a, lda, m, b.k, b.kpp, |pairs| {
        gemm_pairs(c, ldc, pairs, m, b, accumulate, threads)
    });
}

/// Two weight-gradient products that share `a`: `c1 (+)= aᵀ · b1` and `c2 (+)= aᵀ · b2`,
/// `a` rounded (and on AMX transposed) once. An LSTM's `dW_ih = dGᵀ · X` and
/// `dW_hh = dGᵀ · H` share `dG`.
///
/// ```
/// use rnnkit::kernels::bf16::{PackedBf16, gemm_bf16_at2};
/// let dg = [1.0f32, 2.0, 3.0, 4.0]; // [k = 2, m = 2]
/// let eye = PackedBf16::from_row_major(&[1.0f32, 0.0, 0.0, 1.0], 2, 2, 2);
/// let ones = PackedBf16::from_row_major(&[1.0f32, 1.0], 1, 2, 1);
/// let (mut d1, mut d2) = ([0.0f32; 4], [0.0f32; 2]);
/// gemm_bf16_at2((&mut d1, 2, &eye), (&mut d2, 1, &ones), &dg, 2, 2, false, 1);
/// assert_eq!(d1, [1.0, 3.0, 2.0, 4.0]); // dgᵀ
/// assert_eq!(d2, [4.0, 6.0]); // column sums
/// ```
///
/// # Panics
/// If `b1` and `b2` differ in `k`, or a slice is too short for its shape.
#[allow(clippy::type_complexity)]
pub fn gemm_bf16_at2(
    (c1, ldc1, b1): (&mut [f32], usize, &PackedBf16),
    (c2, ldc2, b2): (&mut [f32], usize, &PackedBf16),
    a: &[f32],
    lda: usize,
    m: usize,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(b1.k, b2.k, "gemm_bf16_at2: the two products differ in k");
    assert_eq!(b1.kpp, b2.kpp);
    if m == 0 {
        return;
    }
    with_pairs_t(a, lda, m, b1.k, b1.kpp, |pairs| {
        if b1.n > 0 {
            gemm_pairs(c1, ldc1, pairs, m, b1, accumulate, threads);
        }
        if b2.n > 0 {
            gemm_pairs(c2, ldc2, pairs, m, b2, accumulate, threads);
        }
    });
}

/// Runs `f` with `aᵀ` (`a` stored `[k, m]`, row stride `lda`) rounded into pairs: row-major
/// with stride `kpp` and zero rows up to whole tiles on AMX, `k`-major elsewhere.
fn with_pairs_t(a: &[f32], lda: usize, m: usize, k: usize, kpp: usize, f: impl FnOnce(Pairs)) {
    assert!(
        k == 0 || (lda >= m && a.len() >= (k - 1) * lda + m),
        "gemm_bf16_at: a too short"
    );
    let kp = k.div_ceil(2);
    if has_amx() {
        // Tiles take `A` row-major: transpose while rounding, padded as in `gemm_bf16`.
        let (stride, rows) = (kpp, m.div_ceil(16) * 16);
        with_pairs(rows * stride, |pairs| {
            transpose_pairs(pairs, stride, a, lda, m, k);
            pairs[m * stride..].fill(0);
            f(Pairs {
                data: pairs,
                row_stride: stride,
                pair_stride: 1,
            })
        });
        return;
    }
    // `k`-major pairs (`[kp][m]`): rows 2q and 2q + 1 of `a` interleave into pair row q, so
    // the rounding reads and writes memory in order.
    with_pairs(m * kp, |pairs| {
        for (q, out) in pairs.chunks_exact_mut(m).enumerate() {
            let lo = &a[2 * q * lda..][..m];
            let hi = (2 * q + 1 < k).then(|| &a[(2 * q + 1) * lda..][..m]);
            round_pairs(out, lo, hi);
        }
        f(Pairs {
            data: pairs,
            row_stride: 1,
            pair_stride: m,
        })
    });
}

/// `out[i] = bf16(lo[i]) | bf16(hi[i]) << 16` (`hi` absent: zeros), the pairs `vdpbf16ps` reads.
fn round_pairs(out: &mut [u32], lo: &[f32], hi: Option<&[f32]>) {
    let n = out.len();
    assert!(lo.len() >= n && hi.is_none_or(|h| h.len() >= n));
    #[cfg(target_arch = "x86_64")]
    if has_bf16_dot() {
        // SAFETY: AVX512-BF16 present; extents asserted above.
        unsafe { avx512::round_pairs(out, lo, hi) };
        return;
    }
    for (i, w) in out.iter_mut().enumerate() {
        let h = hi.map_or(0, |h| to_bf16(h[i]) as u32);
        *w = to_bf16(lo[i]) as u32 | h << 16;
    }
}

/// `pairs[r·stride + q]` = the pair (`a[2q, r]`, `a[2q + 1, r]`) for `a` stored `[k, m]` (row
/// stride `lda`): `aᵀ` rounded into row-major pairs, zero from pair `⌈k/2⌉` to `stride`
/// (`stride` a multiple of 16).
///
/// By 16 × 16 blocks: 16 pair rows are rounded into a block, which is written out transposed as
/// 16 runs of 16 words (a cache line each). Writing word by word down the columns instead
/// touches 16 lines per 16 words, and when `stride` is a multiple of 1 KB those lines fight
/// over the same cache sets.
fn transpose_pairs(pairs: &mut [u32], stride: usize, a: &[f32], lda: usize, m: usize, k: usize) {
    #[cfg(target_arch = "x86_64")]
    if has_bf16_dot() {
        // SAFETY: AVX512-BF16 present.
        unsafe { avx512::transpose_pairs(pairs, stride, a, lda, m, k) };
        return;
    }
    transpose_pairs_with(round_pairs, pairs, stride, a, lda, m, k);
}

/// [`transpose_pairs`] with the given rounding, inlined into its caller so the AVX-512 build
/// rounds without a call per 16 words.
#[inline(always)]
fn transpose_pairs_with(
    round: impl Fn(&mut [u32], &[f32], Option<&[f32]>),
    pairs: &mut [u32],
    stride: usize,
    a: &[f32],
    lda: usize,
    m: usize,
    k: usize,
) {
    const RB: usize = 16;
    assert!(stride.is_multiple_of(RB) && stride >= k.div_ceil(2));
    assert!(pairs.len() >= m * stride);
    let mut block = [[0u32; RB]; RB]; // [q][r]
    for r0 in (0..m).step_by(RB) {
        let rb = (m - r0).min(RB);
        for q0 in (0..stride).step_by(RB) {
            for (dq, words) in block.iter_mut().enumerate() {
                let q = q0 + dq;
                if 2 * q >= k {
                    words.fill(0);
                    continue;
                }
                let lo = &a[2 * q * lda + r0..][..rb];
                let hi = (2 * q + 1 < k).then(|| &a[(2 * q + 1) * lda + r0..][..rb]);
                round(&mut words[..rb], lo, hi);
            }
            for r in 0..rb {
                let out = &mut pairs[(r0 + r) * stride + q0..][..RB];
                for (o, words) in out.iter_mut().zip(&block) {
                    *o = words[r];
                }
            }
        }
    }
}

/// Rounds `m` rows of `a` (stride `lda`, `k` values) into `k`-pairs, `stride ≥ ⌈k/2⌉` words
/// per row, zero past `⌈k/2⌉`.
fn round_rows(pairs: &mut [u32], stride: usize, a: &[f32], lda: usize, m: usize, k: usize) {
    let kp = k.div_ceil(2);
    for (r, out) in pairs.chunks_exact_mut(stride).enumerate().take(m) {
        let (out, pad) = out.split_at_mut(kp);
        pad.fill(0);
        let row = &a[r * lda..r * lda + k];
        #[cfg(target_arch = "x86_64")]
        if has_bf16_dot() {
            // SAFETY: AVX512-BF16 present; `out` holds ⌈k/2⌉ words for the k values of `row`.
            unsafe { avx512::round_row(out, row) };
            continue;
        }
        for (q, w) in out.iter_mut().enumerate() {
            let lo = to_bf16(row[2 * q]) as u32;
            let hi = row.get(2 * q + 1).map_or(0, |&v| to_bf16(v) as u32);
            *w = lo | hi << 16;
        }
    }
}

/// The destination pointer, shareable between threads that write disjoint parts.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the threads that share it write disjoint rows or columns.
unsafe impl Send for CPtr {}
unsafe impl Sync for CPtr {}

impl CPtr {
    /// The pointer `rows` rows of stride `ld` further on.
    ///
    /// # Safety
    /// The result stays inside the destination.
    unsafe fn rows_on(self, rows: usize, ld: usize) -> CPtr {
        // SAFETY: the caller's contract.
        CPtr(unsafe { self.0.add(rows * ld) })
    }
}

/// The rounded `A` operand: the pair `q` of row `r` is the word `r·row_stride + q·pair_stride`
/// (row-major pairs for a time step's rows, `k`-major for the weight gradients' `dGᵀ`).
#[derive(Clone, Copy)]
struct Pairs<'a> {
    data: &'a [u32],
    row_stride: usize,
    pair_stride: usize,
}

impl<'a> Pairs<'a> {
    /// The operand from row `r0` on.
    fn skip_rows(self, r0: usize) -> Pairs<'a> {
        Pairs {
            data: &self.data[r0 * self.row_stride..],
            ..self
        }
    }

    /// Whether `rows` rows of `kp` pairs are inside.
    fn holds(&self, rows: usize, kp: usize) -> bool {
        rows == 0
            || kp == 0
            || self.data.len() > (rows - 1) * self.row_stride + (kp - 1) * self.pair_stride
    }
}

/// `c[m, n] (+)= a[m, kp pairs] · b`, split between threads.
fn gemm_pairs(
    c: &mut [f32],
    ldc: usize,
    pairs: Pairs,
    m: usize,
    b: &PackedBf16,
    accumulate: bool,
    threads: usize,
) {
    let (k, n, kp) = (b.k, b.n, b.k.div_ceil(2));
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "gemm_bf16: c too short"
    );
    assert!(pairs.holds(m, kp), "gemm_bf16: a too short");
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
    let worth = m * n * k >= 1 << 17;
    // Many rows: blocks of rows, about 128 KB of `A` each, a multiple of the register block.
    // On AMX, whole pairs of tiles (32 rows), so no block but the last has padding rows.
    let unit = if has_amx() { 32 } else { MR };
    let block = ((128 * 1024 / 4 / kp) / unit * unit).clamp(unit, 256);
    if threads > 1 && worth && m >= 2 * block {
        use rayon::prelude::*;
        let blocks = m.div_ceil(block);
        (0..blocks).into_par_iter().for_each(|blk| {
            let (r0, r1) = (blk * block, ((blk + 1) * block).min(m));
            // SAFETY: extents checked above; blocks write disjoint rows.
            unsafe {
                panels_pairs(
                    cp.rows_on(r0, ldc),
                    ldc,
                    pairs.skip_rows(r0),
                    r1 - r0,
                    b,
                    (0, panels),
                )
            }
        });
    } else if threads > 1 && worth && panels >= 4 {
        let half = panels / 2;
        rayon::join(
            // SAFETY: extents checked above; the halves write disjoint panels of each row.
            || unsafe { panels_pairs(cp, ldc, pairs, m, b, (0, half)) },
            || unsafe { panels_pairs(cp, ldc, pairs, m, b, (half, panels)) },
        );
    } else {
        // SAFETY: extents checked above.
        unsafe { panels_pairs(cp, ldc, pairs, m, b, (0, panels)) };
    }
}

/// `C[:, panels p0..p1] += A · B[:, panels p0..p1]`.
///
/// # Safety
/// `c` valid for `m` rows of stride `ldc ≥ n`; no other thread touches these columns meanwhile;
/// `pairs` holds `m` rows of `⌈k/2⌉` pairs.
unsafe fn panels_pairs(
    c: CPtr,
    ldc: usize,
    pairs: Pairs,
    m: usize,
    b: &PackedBf16,
    range: (usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if has_amx() && pairs.pair_stride == 1 && pairs.row_stride == b.kpp {
        // SAFETY: same contract; AMX present; the operand is laid out as `gemm_bf16` pads it.
        unsafe { amx::panels(c, ldc, pairs, m, b, range) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_bf16_dot() {
        // SAFETY: same contract; AVX512-BF16 present.
        unsafe { avx512::panels(c, ldc, pairs, m, b, range) };
        return;
    }
    // SAFETY: same contract.
    unsafe { panels_plain(c, ldc, pairs, m, b, range) }
}

/// [`panels_pairs`] in plain loops, with `vdpbf16ps`'s arithmetic: per pair, both products
/// added to the f32 accumulator.
///
/// # Safety
/// As [`panels_pairs`].
unsafe fn panels_plain(
    c: CPtr,
    ldc: usize,
    pairs: Pairs,
    m: usize,
    b: &PackedBf16,
    (p0, p1): (usize, usize),
) {
    let (kp, kpp) = (b.k.div_ceil(2), b.kpp);
    for panel in p0..p1 {
        let j0 = panel * NR;
        let width = (b.n - j0).min(NR);
        let bp = &b.data[panel * kpp * NR..(panel + 1) * kpp * NR];
        for r in 0..m {
            let mut acc = [0.0f32; NR];
            for q in 0..kp {
                let av = pairs.data[r * pairs.row_stride + q * pairs.pair_stride];
                let (a0, a1) = (from_bf16(av as u16), from_bf16((av >> 16) as u16));
                for (acc, &bv) in acc.iter_mut().zip(&bp[q * NR..(q + 1) * NR]) {
                    let (b0, b1) = (from_bf16(bv as u16), from_bf16((bv >> 16) as u16));
                    *acc += a0 * b0 + a1 * b1;
                }
            }
            // SAFETY: row r < m, columns j0..j0 + width <= n, exclusively ours.
            let out = unsafe { std::slice::from_raw_parts_mut(c.0.add(r * ldc + j0), width) };
            for (o, v) in out.iter_mut().zip(&acc) {
                *o += v;
            }
        }
    }
}

/// The AVX512-BF16 path: a block of up to 8 rows × 3 panels (48 columns) of `C` in 24 `zmm`
/// registers; per `k`-pair three loads of `B`, eight broadcasts of an `A` pair, 24 `vdpbf16ps`.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{CPtr, MR, NP, NR, PackedBf16, Pairs, W};
    use std::arch::x86_64::*;

    /// Rounds one row of f32 into bf16 pairs, 16 values per instruction.
    ///
    /// # Safety
    /// AVX512-BF16 present; `out` holds at least `⌈row.len()/2⌉` words.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    pub unsafe fn round_row(out: &mut [u32], row: &[f32]) {
        let k = row.len();
        assert!(out.len() >= k.div_ceil(2));
        let full = k / 16 * 16;
        // SAFETY: 16 values read at p < full ≤ k; 8 words written at p/2 < ⌈k/2⌉.
        unsafe {
            for p in (0..full).step_by(16) {
                let v = _mm512_loadu_ps(row.as_ptr().add(p));
                let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
                _mm256_storeu_si256(out.as_mut_ptr().add(p / 2) as *mut __m256i, h);
            }
        }
        for q in full / 2..k.div_ceil(2) {
            let lo = super::to_bf16(row[2 * q]) as u32;
            let hi = row.get(2 * q + 1).map_or(0, |&v| super::to_bf16(v) as u32);
            out[q] = lo | hi << 16;
        }
    }

    /// [`super::transpose_pairs`] with the rounding below inlined.
    ///
    /// # Safety
    /// AVX512-BF16 present.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    pub unsafe fn transpose_pairs(
        pairs: &mut [u32],
        stride: usize,
        a: &[f32],
        lda: usize,
        m: usize,
        k: usize,
    ) {
        // SAFETY: AVX512-BF16 present; `round` gets slices of equal length.
        let round =
            |o: &mut [u32], lo: &[f32], hi: Option<&[f32]>| unsafe { round_pairs(o, lo, hi) };
        super::transpose_pairs_with(round, pairs, stride, a, lda, m, k);
    }

    /// `out[i] = bf16(lo[i]) | bf16(hi[i]) << 16`, 16 words per step.
    ///
    /// # Safety
    /// AVX512-BF16 present; `lo` (and `hi`) hold at least `out.len()` values.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    #[inline]
    pub unsafe fn round_pairs(out: &mut [u32], lo: &[f32], hi: Option<&[f32]>) {
        let n = out.len();
        let full = n / 16 * 16;
        debug_assert!(lo.len() >= n && hi.is_none_or(|h| h.len() >= n));
        // SAFETY: 16 values read and written at i < full ≤ n (caller's contract).
        unsafe {
            for i in (0..full).step_by(16) {
                let l = _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(
                    _mm512_cvtneps_pbh(_mm512_loadu_ps(lo.as_ptr().add(i))),
                ));
                let w = match hi {
                    Some(hi) => {
                        let h = _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(
                            _mm512_cvtneps_pbh(_mm512_loadu_ps(hi.as_ptr().add(i))),
                        ));
                        _mm512_or_si512(l, _mm512_slli_epi32::<16>(h))
                    }
                    None => l,
                };
                _mm512_storeu_si512(out.as_mut_ptr().add(i) as *mut _, w);
            }
        }
        for i in full..n {
            let h = hi.map_or(0, |h| super::to_bf16(h[i]) as u32);
            out[i] = super::to_bf16(lo[i]) as u32 | h << 16;
        }
    }

    /// # Safety
    /// As [`super::panels_pairs`], and AVX512-BF16 present.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn panels(
        c: CPtr,
        ldc: usize,
        pairs: Pairs,
        m: usize,
        b: &PackedBf16,
        (p0, p1): (usize, usize),
    ) {
        let (kp, kpp) = (b.k.div_ceil(2), b.kpp);
        let mut tmp = [0.0f32; MR * W];
        let mut panel = p0;
        while panel < p1 {
            let np = (p1 - panel).min(NP);
            let j0 = panel * NR;
            let width = (b.n - j0).min(np * NR);
            let bp = &b.data[panel * kpp * NR..(panel + np) * kpp * NR];
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let a = pairs.skip_rows(i);
                assert!(a.holds(rows, kp));
                // SAFETY: `a` holds `rows` rows of kp pairs, `bp` np panels; AVX512-BF16.
                unsafe {
                    match np {
                        3 => tile_rows::<3>(&mut tmp, a, (kp, kpp), rows, bp),
                        2 => tile_rows::<2>(&mut tmp, a, (kp, kpp), rows, bp),
                        _ => tile_rows::<1>(&mut tmp, a, (kp, kpp), rows, bp),
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
    /// AVX512-BF16 present; `a` holds `rows ≤ 8` rows of `kp` pairs; `bp` `P` panels of
    /// `kpp * 16` words (`kp ≤ kpp`).
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile_rows<const P: usize>(
        tmp: &mut [f32; MR * W],
        a: Pairs,
        kp: (usize, usize),
        rows: usize,
        bp: &[u32],
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            match rows {
                8 => tile::<8, P>(tmp, a, kp, bp),
                7 => tile::<7, P>(tmp, a, kp, bp),
                6 => tile::<6, P>(tmp, a, kp, bp),
                5 => tile::<5, P>(tmp, a, kp, bp),
                4 => tile::<4, P>(tmp, a, kp, bp),
                3 => tile::<3, P>(tmp, a, kp, bp),
                2 => tile::<2, P>(tmp, a, kp, bp),
                _ => tile::<1, P>(tmp, a, kp, bp),
            }
        }
    }

    /// The `R × 16P` micro-kernel, the block kept in registers.
    ///
    /// # Safety
    /// As [`tile_rows`] with `rows = R`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile<const R: usize, const P: usize>(
        tmp: &mut [f32; MR * W],
        a: Pairs,
        (kp, kpp): (usize, usize),
        bp: &[u32],
    ) {
        assert!(a.holds(R, kp) && kp <= kpp && bp.len() >= P * kpp * NR);
        let (ap, bptr) = (a.data.as_ptr(), bp.as_ptr());
        let (rs, qs) = (a.row_stride, a.pair_stride);
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        // SAFETY: offsets stay below R·kp in a and P·kpp·16 in bp (asserted above).
        unsafe {
            for q in 0..kp {
                let mut bv = [_mm512_setzero_si512(); P];
                for (s, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm512_loadu_si512(bptr.add(s * kpp * NR + q * NR) as *const _);
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*ap.add(r * rs + q * qs) as i32));
                    for (acc, bv) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_dpbf16_ps(
                            *acc,
                            av,
                            std::mem::transmute::<__m512i, __m512bh>(*bv),
                        );
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (s, acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(tmp.as_mut_ptr().add(r * W + s * NR), *acc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, salt: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7 + salt) % 23) as f32 - 11.0) / 7.3 + (i % 5) as f32 * 1e-3)
            .collect()
    }

    /// `Σ round(a)·round(b)` in f64, and the sum of magnitudes (the scale of f32 rounding).
    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut want = vec![0.0; m * n];
        let mut mag = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    let v = round_bf16(a[i * k + p]) as f64 * round_bf16(b[p * n + j]) as f64;
                    want[i * n + j] += v;
                    mag[i * n + j] += v.abs();
                }
            }
        }
        (want, mag)
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is exactly half way between 1 and 1 + 2^-7: ties go to the even (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // 1 + 3·2^-8 is half way between 1 + 2^-7 and 1 + 2^-6: the even one is 1 + 2^-6.
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY); // rounds up past the top
    }

    #[test]
    fn products_match_the_rounded_reference_on_ragged_shapes() {
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 17),
            (8, 64, 48),
            (9, 33, 100),
            (20, 650, 130),
            (300, 40, 50),
            (600, 17, 33),
        ] {
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            let bt: Vec<f32> = (0..k * n).map(|i| b[(i % k) * n + i / k]).collect(); // [n, k]
            let (want, mag) = reference(&a, &b, m, k, n);
            let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect(); // [k, m]
            for packed in [
                PackedBf16::from_row_major(&b, n, k, n),
                PackedBf16::from_transposed(&bt, n, k),
            ] {
                // 0, 1: the public products (on AMX where present); 2: plain loops; 3: the
                // AVX512-BF16 kernel, also where AMX would take the public ones.
                for (path, threads) in [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (3, 1)] {
                    if path == 3 && !has_bf16_dot() {
                        continue;
                    }
                    let ldc = n + 3;
                    let mut c = vec![1.0f32; m * ldc];
                    match path {
                        0 => gemm_bf16(&mut c, ldc, &a, k, m, &packed, true, threads),
                        1 => gemm_bf16_at(&mut c, ldc, &at, m, m, &packed, true, threads),
                        _ => {
                            let kp = k.div_ceil(2);
                            let mut pairs = vec![0; m * kp];
                            round_rows(&mut pairs, kp, &a, k, m, k);
                            let pairs = Pairs {
                                data: &pairs,
                                row_stride: kp,
                                pair_stride: 1,
                            };
                            let cp = CPtr(c.as_mut_ptr());
                            #[cfg(target_arch = "x86_64")]
                            if path == 3 {
                                let all = (0, n.div_ceil(NR));
                                // SAFETY: as below; AVX512-BF16 present (checked above).
                                unsafe { avx512::panels(cp, ldc, pairs, m, &packed, all) };
                            }
                            // SAFETY: c holds m rows of stride ldc >= n; pairs m rows of kp.
                            if path == 2 {
                                unsafe {
                                    panels_plain(
                                        CPtr(c.as_mut_ptr()),
                                        ldc,
                                        pairs,
                                        m,
                                        &packed,
                                        (0, n.div_ceil(NR)),
                                    )
                                };
                            }
                        }
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let (w, s) = (1.0 + want[i * n + j], 1.0 + mag[i * n + j]);
                            let got = c[i * ldc + j] as f64;
                            assert!(
                                (got - w).abs() <= 2e-6 * s,
                                "path {path} threads {threads}: {m}x{k}x{n} [{i},{j}] {got} vs {w}"
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

    #[test]
    fn transposed_pairs_are_the_pairs_of_the_transpose() {
        for (m, k) in [(1, 1), (5, 3), (16, 32), (17, 33), (40, 70)] {
            let a = data(k * m, 5); // [k, m]
            let stride = padded_pairs(k);
            let mut pairs = vec![7u32; m * stride];
            transpose_pairs(&mut pairs, stride, &a, m, m, k);
            for r in 0..m {
                for q in 0..stride {
                    let at = |p: usize| {
                        if p < k {
                            to_bf16(a[p * m + r]) as u32
                        } else {
                            0
                        }
                    };
                    let want = at(2 * q) | at(2 * q + 1) << 16;
                    assert_eq!(pairs[r * stride + q], want, "{m}x{k}: row {r}, pair {q}");
                }
            }
        }
    }

    #[test]
    fn overwrite_mode_ignores_what_was_there() {
        let (m, k, n) = (4, 6, 20);
        let (a, b) = (data(m * k, 3), data(k * n, 4));
        let packed = PackedBf16::from_row_major(&b, n, k, n);
        let mut c = vec![f32::NAN; m * n];
        gemm_bf16(&mut c, n, &a, k, m, &packed, false, 1);
        let (want, mag) = reference(&a, &b, m, k, n);
        for ((g, w), s) in c.iter().zip(&want).zip(&mag) {
            assert!((*g as f64 - w).abs() <= 2e-6 * (1.0 + s));
        }
    }
}
