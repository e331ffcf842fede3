//! int8 matrix-vector products for dynamically quantized inference, as PyTorch's
//! `quantize_dynamic` and onnxruntime's `DynamicQuantizeLSTM` do it: weights quantized once per
//! output row (symmetric, `w ≈ s_j · q`, `q ∈ [−127, 127]`), the activation vector quantized on
//! the fly per call (symmetric, `x ≈ s_x · p`, `p ∈ [−127, 127]`), integer dot products in i32,
//! and `y_j = s_x · s_j · Σ_k p_k q_jk` back in f32.
//!
//! Two layouts, each for its kernel, picked once at run time ([`Int8Kernel::detect`]):
//!
//! - **AVX-512 VNNI** (`vpdpbusd`: 64 unsigned × signed byte products summed by fours into 16
//!   i32 lanes per instruction). Rows in groups of 16, columns in fours: one 64-byte block holds
//!   `w[16g + r][4q + t]` at byte `4r + t`, so a broadcast of four activation bytes feeds 16
//!   outputs at once and no horizontal sums are needed. `vpdpbusd` wants unsigned activations:
//!   the kernel adds 128 to each and subtracts `128 · Σ_k q_jk`, precomputed per row.
//! - **AVX2** (and the scalar fallback): rows in groups of 8, columns in pairs; the bytes are
//!   sign-extended to i16 and multiplied with `vpmaddwd`, exactly (no saturating `vpmaddubsw`).
//!
//! Both compute the same integers, so every CPU gives the same results bit for bit.
//!
//! ```
//! use ndarray::array;
//! use rnnkit::kernels::int8::{Int8Matrix, QuantizedVector};
//!
//! let w = array![[1.0f32, -2.0, 0.5], [0.25, 0.0, -1.0]];
//! let q = Int8Matrix::quantize(w.view());
//! let x = QuantizedVector::quantize(&[2.0, 1.0, -4.0], q.cols_padded());
//! let mut y = [0.0f32; 2];
//! q.gemv(&x, &mut y, false);
//! assert!((y[0] - (2.0 - 2.0 - 2.0)).abs() < 0.05);
//! assert!((y[1] - (0.5 + 4.0)).abs() < 0.05);
//! ```

use ndarray::ArrayView2;

/// The int8 kernel a CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Kernel {
    /// AVX-512 VNNI (`vpdpbusd`).
    Vnni512,
    /// AVX2 (`vpmovsxbw` + `vpmaddwd`).
    Avx2,
    /// Plain Rust, the AVX2 layout.
    Scalar,
}

impl Int8Kernel {
    /// The best kernel this CPU has; `RNNKIT_NO_AVX512=1` rules out VNNI.
    pub fn detect() -> Int8Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if super::has_avx512f()
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                return Int8Kernel::Vnni512;
            }
            if std::is_x86_feature_detected!("avx2") {
                return Int8Kernel::Avx2;
            }
        }
        Int8Kernel::Scalar
    }

    /// `(rows per group, columns per block)` of its layout.
    fn block(self) -> (usize, usize) {
        match self {
            Int8Kernel::Vnni512 => (16, 4),
            Int8Kernel::Avx2 | Int8Kernel::Scalar => (8, 2),
        }
    }

    /// Its name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Int8Kernel::Vnni512 => "AVX-512 VNNI",
            Int8Kernel::Avx2 => "AVX2",
            Int8Kernel::Scalar => "scalar",
        }
    }
}

/// A weight matrix `[rows, cols]` quantized per row to int8, in its kernel's layout.
#[derive(Clone, Debug)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    /// Columns padded to the kernel's block (zeros), and rows to its group.
    cols_padded: usize,
    rows_padded: usize,
    kernel: Int8Kernel,
    data: Vec<i8>,
    /// `s_j` per row (padding rows 0).
    scales: Vec<f32>,
    /// `128 · Σ_k q_jk` per row, for VNNI's unsigned activations.
    offsets: Vec<i32>,
}

/// An activation vector quantized for [`Int8Matrix::gemv`]: `x ≈ scale · values`.
#[derive(Clone, Debug, Default)]
pub struct QuantizedVector {
    values: Vec<i8>,
    scale: f32,
}

/// Rounds `v / scale` to the nearest integer in `[−127, 127]`.
fn quantize_value(v: f32, inv_scale: f32) -> i8 {
    (v * inv_scale).round().clamp(-127.0, 127.0) as i8
}

impl QuantizedVector {
    /// Quantizes `x`, padded with zeros to `len` (a matrix's [`Int8Matrix::cols_padded`]).
    pub fn quantize(x: &[f32], len: usize) -> QuantizedVector {
        let mut q = QuantizedVector::default();
        q.quantize_from(x, len);
        q
    }

    /// [`QuantizedVector::quantize`] into this vector's buffer (no allocation once sized).
    pub fn quantize_from(&mut self, x: &[f32], len: usize) {
        assert!(len >= x.len(), "padded length below the vector's");
        let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        self.values.clear();
        self.values.resize(len, 0);
        if max == 0.0 || !max.is_finite() {
            // All zeros; a non-finite input gives a non-finite scale so the output shows it.
            self.scale = if max.is_finite() { 0.0 } else { f32::NAN };
            return;
        }
        self.scale = max / 127.0;
        let inv = 127.0 / max;
        for (q, &v) in self.values.iter_mut().zip(x) {
            *q = quantize_value(v, inv);
        }
    }

    /// The scale `s_x`.
    pub fn scale(&self) -> f32 {
        self.scale
    }
}

impl Int8Matrix {
    /// Quantizes `w` `[rows, cols]` per row for this CPU's kernel.
    pub fn quantize(w: ArrayView2<f32>) -> Int8Matrix {
        Int8Matrix::quantize_for(w, Int8Kernel::detect())
    }

    /// Quantizes `w` for `kernel` (tests compare kernels; a kernel the CPU lacks is never run:
    /// [`Int8Matrix::gemv`] falls back to the scalar code on the same layout's integers).
    pub fn quantize_for(w: ArrayView2<f32>, kernel: Int8Kernel) -> Int8Matrix {
        let (rows, cols) = w.dim();
        let (group, block) = kernel.block();
        let rows_padded = rows.div_ceil(group) * group;
        let cols_padded = cols.div_ceil(block).max(1) * block;
        let mut scales = vec![0.0f32; rows_padded];
        let mut offsets = vec![0i32; rows_padded];
        let mut q = vec![0i8; rows_padded * cols_padded];
        for (j, row) in w.rows().into_iter().enumerate() {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max == 0.0 {
                continue;
            }
            scales[j] = max / 127.0;
            let inv = 127.0 / max;
            let mut sum = 0i32;
            for (k, &v) in row.iter().enumerate() {
                let qv = quantize_value(v, inv);
                sum += i32::from(qv);
                q[layout_index(j, k, cols_padded, group, block)] = qv;
            }
            offsets[j] = 128 * sum;
        }
        Int8Matrix {
            rows,
            cols,
            cols_padded,
            rows_padded,
            kernel,
            data: q,
            scales,
            offsets,
        }
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Columns with padding: the length to quantize input vectors to.
    pub fn cols_padded(&self) -> usize {
        self.cols_padded
    }

    /// The kernel its layout serves.
    pub fn kernel(&self) -> Int8Kernel {
        self.kernel
    }

    /// Bytes of quantized weights (padding included).
    pub fn weight_bytes(&self) -> usize {
        self.data.len()
    }

    /// The weights as the products see them, `s_j · q_jk`, `[rows, cols]`.
    pub fn dequantize(&self) -> ndarray::Array2<f32> {
        let (group, block) = self.kernel.block();
        ndarray::Array2::from_shape_fn((self.rows, self.cols), |(j, k)| {
            self.scales[j]
                * f32::from(self.data[layout_index(j, k, self.cols_padded, group, block)])
        })
    }

    /// `y (+)= W x` for the quantized `x` (its length [`Int8Matrix::cols_padded`]); `y` has
    /// [`Int8Matrix::rows`] entries. Allocates nothing.
    pub fn gemv(&self, x: &QuantizedVector, y: &mut [f32], accumulate: bool) {
        assert_eq!(x.values.len(), self.cols_padded, "quantized input length");
        assert_eq!(y.len(), self.rows, "output length");
        let out = Epilogue {
            y,
            scales: &self.scales,
            sx: x.scale,
            accumulate,
        };
        let p = &x.values;
        match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Vnni512 if Int8Kernel::detect() == Int8Kernel::Vnni512 => {
                // SAFETY: the CPU has AVX-512F/BW/VNNI (checked just above); the layout's sizes
                // are what `quantize_for` built for this kernel.
                unsafe {
                    dot_vnni(
                        &self.data,
                        p,
                        &self.offsets,
                        self.rows_padded,
                        self.cols_padded,
                        out,
                    )
                }
            }
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx2 if std::is_x86_feature_detected!("avx2") => {
                // SAFETY: the CPU has AVX2 (checked just above); sizes as built.
                unsafe { dot_pairs_avx2(&self.data, p, self.rows_padded, self.cols_padded, out) }
            }
            Int8Kernel::Vnni512 => dot_scalar(
                &self.data,
                p,
                self.rows_padded,
                self.cols_padded,
                16,
                4,
                out,
            ),
            _ => dot_scalar(&self.data, p, self.rows_padded, self.cols_padded, 8, 2, out),
        }
    }
}

/// Turns integer dot products into outputs: `y_j (+)= s_x · s_j · acc_j` for the real rows.
struct Epilogue<'a> {
    y: &'a mut [f32],
    scales: &'a [f32],
    sx: f32,
    accumulate: bool,
}

impl Epilogue<'_> {
    /// Rows `first..first + acc.len()` (padding rows beyond `y` are dropped).
    #[inline(always)]
    fn put(&mut self, first: usize, acc: &[i32]) {
        let end = (first + acc.len()).min(self.y.len());
        if first >= end {
            return;
        }
        let ys = &mut self.y[first..end];
        let scales = &self.scales[first..end];
        for ((y, &s), &a) in ys.iter_mut().zip(scales).zip(acc) {
            let v = self.sx * s * a as f32;
            *y = if self.accumulate { *y + v } else { v };
        }
    }
}

/// Where `w[j][k]` sits in a layout of `group`-row groups and `block`-column blocks.
fn layout_index(j: usize, k: usize, cols_padded: usize, group: usize, block: usize) -> usize {
    let (g, r) = (j / group, j % group);
    let (q, t) = (k / block, k % block);
    ((g * (cols_padded / block) + q) * group + r) * block + t
}

/// Any layout, one integer at a time.
fn dot_scalar(
    w: &[i8],
    p: &[i8],
    rows: usize,
    kp: usize,
    group: usize,
    block: usize,
    mut out: Epilogue,
) {
    let mut acc = vec![0i32; group];
    for g in 0..rows / group {
        acc.fill(0);
        for q in 0..kp / block {
            let base = (g * (kp / block) + q) * group * block;
            for (r, a) in acc.iter_mut().enumerate() {
                for t in 0..block {
                    *a += i32::from(w[base + r * block + t]) * i32::from(p[q * block + t]);
                }
            }
        }
        out.put(g * group, &acc);
    }
}

/// VNNI: four 16-row groups at a time share each broadcast of four activation bytes.
///
/// # Safety
/// Needs AVX-512F/BW/VNNI; `w` is `rows × kp` bytes in the 16×4 layout, `p` has `kp` entries,
/// `offsets` `rows`; `rows` is a multiple of 16 and `kp` of 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_vnni(w: &[i8], p: &[i8], offsets: &[i32], rows: usize, kp: usize, mut out: Epilogue) {
    use std::arch::x86_64::*;
    let groups = rows / 16;
    let blocks = kp / 4;
    assert!(w.len() >= groups * blocks * 64 && p.len() >= kp && offsets.len() >= rows);
    let (wp, pp) = (w.as_ptr(), p.as_ptr());
    let mut acc = [0i32; 64];
    let mut g = 0;
    while g < groups {
        let n = (groups - g).min(4);
        let mut a = [_mm512_setzero_si512(); 4];
        for q in 0..blocks {
            // SAFETY: 4q + 4 <= kp <= p.len().
            let word = unsafe { pp.add(4 * q).cast::<i32>().read_unaligned() };
            // p + 128 as unsigned bytes: flip each byte's sign bit.
            let x = _mm512_set1_epi32(word ^ 0x8080_8080_u32 as i32);
            for (u, au) in a.iter_mut().enumerate().take(n) {
                // SAFETY: group g + u < groups and block q < blocks: inside w.
                let wv = unsafe { _mm512_loadu_si512(wp.add(((g + u) * blocks + q) * 64).cast()) };
                *au = _mm512_dpbusd_epi32(*au, x, wv);
            }
        }
        for (u, au) in a.iter().enumerate().take(n) {
            // SAFETY: rows (g + u)·16 .. +16 are inside offsets; acc has 64 entries.
            unsafe {
                let off = _mm512_loadu_si512(offsets.as_ptr().add((g + u) * 16).cast());
                _mm512_storeu_si512(
                    acc.as_mut_ptr().add(u * 16).cast(),
                    _mm512_sub_epi32(*au, off),
                );
            }
        }
        out.put(g * 16, &acc[..n * 16]);
        g += n;
    }
}

/// AVX2: bytes sign-extended to i16, `vpmaddwd` by column pairs; four 8-row groups at a time.
///
/// # Safety
/// Needs AVX2; `w` is `rows × kp` bytes in the 8×2 layout, `p` has `kp` entries; `rows` is a
/// multiple of 8 and `kp` of 2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_pairs_avx2(w: &[i8], p: &[i8], rows: usize, kp: usize, mut out: Epilogue) {
    use std::arch::x86_64::*;
    let groups = rows / 8;
    let blocks = kp / 2;
    assert!(w.len() >= groups * blocks * 16 && p.len() >= kp);
    let wp = w.as_ptr();
    let mut acc = [0i32; 32];
    let mut g = 0;
    while g < groups {
        let n = (groups - g).min(4);
        let mut a = [_mm256_setzero_si256(); 4];
        for q in 0..blocks {
            // An activation pair as two i16 in one i32, broadcast.
            let word = (i32::from(p[2 * q]) & 0xffff) | (i32::from(p[2 * q + 1]) << 16);
            let x = _mm256_set1_epi32(word);
            for (u, au) in a.iter_mut().enumerate().take(n) {
                // SAFETY: group g + u < groups and block q < blocks: 16 bytes inside w.
                let bytes = unsafe { _mm_loadu_si128(wp.add(((g + u) * blocks + q) * 16).cast()) };
                let wv = _mm256_cvtepi8_epi16(bytes);
                *au = _mm256_add_epi32(*au, _mm256_madd_epi16(wv, x));
            }
        }
        for (u, au) in a.iter().enumerate().take(n) {
            // SAFETY: acc has 32 entries, u < 4.
            unsafe { _mm256_storeu_si256(acc.as_mut_ptr().add(u * 8).cast(), *au) };
        }
        out.put(g * 8, &acc[..n * 8]);
        g += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
    }

    #[test]
    fn every_kernel_computes_the_same_integers_as_the_definition() {
        for (rows, cols) in [(1, 1), (5, 3), (16, 4), (37, 29), (1024, 256), (3, 130)] {
            let w = random(rows, cols, rows as u64);
            let x: Vec<f32> = random(1, cols, 99).iter().copied().collect();
            let mut results = Vec::new();
            for kernel in [Int8Kernel::Scalar, Int8Kernel::Avx2, Int8Kernel::Vnni512] {
                let m = Int8Matrix::quantize_for(w.view(), kernel);
                let xq = QuantizedVector::quantize(&x, m.cols_padded());
                let mut y = vec![0.0f32; rows];
                m.gemv(&xq, &mut y, false);
                // The definition: dequantized weights times dequantized activations, in f64.
                let wd = m.dequantize();
                for (j, &got) in y.iter().enumerate() {
                    let want: f64 = (0..cols)
                        .map(|k| {
                            f64::from(wd[[j, k]]) * f64::from(xq.scale * f32::from(xq.values[k]))
                        })
                        .sum();
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{kernel:?} {rows}x{cols} row {j}: {got} vs {want}"
                    );
                }
                results.push(y);
            }
            assert_eq!(
                results[0], results[1],
                "{rows}x{cols}: AVX2 differs from scalar"
            );
            assert_eq!(
                results[0], results[2],
                "{rows}x{cols}: VNNI differs from scalar"
            );
        }
    }

    #[test]
    fn quantization_error_is_within_half_a_step_per_weight() {
        let w = random(64, 100, 3);
        let m = Int8Matrix::quantize(w.view());
        let d = m.dequantize();
        for (row, drow) in w.rows().into_iter().zip(d.rows()) {
            let step = row.iter().fold(0.0f32, |a, v| a.max(v.abs())) / 127.0;
            for (a, b) in row.iter().zip(drow) {
                assert!((a - b).abs() <= 0.5 * step * (1.0 + 1e-6));
            }
        }
    }

    #[test]
    fn zero_and_non_finite_inputs_give_zero_and_non_finite_outputs() {
        let m = Int8Matrix::quantize(random(4, 6, 1).view());
        let mut y = [1.0f32; 4];
        m.gemv(
            &QuantizedVector::quantize(&[0.0; 6], m.cols_padded()),
            &mut y,
            false,
        );
        assert_eq!(y, [0.0; 4]);
        let mut bad = [0.0f32; 6];
        bad[2] = f32::INFINITY;
        m.gemv(
            &QuantizedVector::quantize(&bad, m.cols_padded()),
            &mut y,
            false,
        );
        assert!(y.iter().all(|v| !v.is_finite()));
    }
}
