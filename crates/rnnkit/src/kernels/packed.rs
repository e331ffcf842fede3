//! Weights packed once per pass for the time loop's products, in the pass's precision: the one
//! type the recurrent layers hold, so a layer's code reads the same in f32 and bf16.

use super::bf16::{PackedBf16, gemm_bf16};
use super::small_gemm::{PackedB, gemm_packed, gemm_packed_rows};
use crate::precision::Precision;

/// A `[k, n]` weight matrix packed for repeated products `C (+)= A · B`, in f32
/// ([`PackedB`]) or bfloat16 ([`PackedBf16`]).
///
/// ```
/// use rnnkit::Precision;
/// use rnnkit::kernels::packed::PackedWeights;
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // W [2, 3]
/// for precision in [Precision::F32, Precision::Bf16] {
///     let wt = PackedWeights::from_transposed(&w, 2, 3, precision);
///     let mut y = [0.0f32; 2];
///     wt.gemm(&mut y, 2, &[1.0, 1.0, 1.0], 3, 1, false, 1);
///     assert_eq!(y, [6.0, 15.0]);
/// }
/// ```
#[derive(Clone, Debug)]
pub enum PackedWeights {
    /// f32 panels.
    F32(PackedB),
    /// bfloat16 `k`-pair panels.
    Bf16(PackedBf16),
}

impl PackedWeights {
    /// Packs a row-major `b[k, n]` (row stride `ldb`).
    pub fn from_row_major(b: &[f32], ldb: usize, k: usize, n: usize, p: Precision) -> Self {
        match p {
            Precision::F32 => PackedWeights::F32(PackedB::from_row_major(b, ldb, k, n)),
            Precision::Bf16 => PackedWeights::Bf16(PackedBf16::from_row_major(b, ldb, k, n)),
        }
    }

    /// Packs `wᵀ` of a row-major `w[rows, cols]`.
    pub fn from_transposed(w: &[f32], rows: usize, cols: usize, p: Precision) -> Self {
        match p {
            Precision::F32 => PackedWeights::F32(PackedB::from_transposed(w, rows, cols)),
            Precision::Bf16 => PackedWeights::Bf16(PackedBf16::from_transposed(w, rows, cols)),
        }
    }

    /// `c[m, n] (+)= a[m, k] · B` for a few rows (one time step).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &self,
        c: &mut [f32],
        ldc: usize,
        a: &[f32],
        lda: usize,
        m: usize,
        accumulate: bool,
        threads: usize,
    ) {
        match self {
            PackedWeights::F32(b) => gemm_packed(c, ldc, a, lda, m, b, accumulate, threads),
            PackedWeights::Bf16(b) => gemm_bf16(c, ldc, a, lda, m, b, accumulate, threads),
        }
    }

    /// The same for many rows (all steps of a sequence at once).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm_rows(
        &self,
        c: &mut [f32],
        ldc: usize,
        a: &[f32],
        lda: usize,
        m: usize,
        accumulate: bool,
        threads: usize,
    ) {
        match self {
            PackedWeights::F32(b) => gemm_packed_rows(c, ldc, a, lda, m, b, accumulate, threads),
            PackedWeights::Bf16(b) => gemm_bf16(c, ldc, a, lda, m, b, accumulate, threads),
        }
    }
}
