//! Fast, vectorizable `exp`, `sigmoid` and `tanh` for f32.
//!
//! libm's `expf`/`tanhf` are opaque calls that stop the gate loops from vectorizing, and at
//! `H <= 256` they cost more than the recurrent GEMM. These are branch-free polynomial forms
//! (Cephes `expf`, Eigen's rational `tanh`) with errors of a few ulp, well inside f32 parity with
//! PyTorch. They are `#[inline(always)]` so they vectorize inside the dispatched kernels.

// Coefficients are kept as published (Cephes, Eigen), digits beyond f32 included.
#![allow(clippy::excessive_precision)]

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// 1.5 * 2^23: adding it rounds a float to the nearest integer, kept in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `e^x`, relative error about 2e-7; saturates to `e^88` and `e^-87`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0); // NaN stays NaN, so divergence is still seen
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * (r * r) + r + 1.0;
    // 2^n built from the integer left in t's mantissa bits.
    let pow2n = f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    e * pow2n
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent (Eigen's 13/6 rational approximation; absolute error below 4e-7, about
/// 6 ulp near ±1; exactly ±1 beyond |x| ≈ 7.9).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = -2.760_768_5e-16_f32;
    p = p * x2 + 2.000_187_9e-13;
    p = p * x2 + -8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= x;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347_1e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525_2e-3;
    p / q
}

/// `max(x, 0)`.
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    x.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::worse;

    fn sweep() -> impl Iterator<Item = f32> {
        (-200_000..=200_000).map(|i| i as f32 * 5e-4)
    }

    #[test]
    fn exp_is_accurate() {
        let worst = sweep()
            .filter(|x| x.abs() < 80.0)
            .map(|x| ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs())
            .fold(0.0, worse);
        assert!(worst < 5e-7, "worst relative error {worst}");
    }

    #[test]
    fn sigmoid_and_tanh_are_accurate() {
        let mut worst_s = 0.0f64;
        let mut worst_t = 0.0f64;
        for x in sweep() {
            let xd = x as f64;
            worst_s = worse(
                worst_s,
                (sigmoid(x) as f64 - 1.0 / (1.0 + (-xd).exp())).abs(),
            );
            worst_t = worse(worst_t, (tanh(x) as f64 - xd.tanh()).abs());
        }
        assert!(worst_s < 2e-7, "sigmoid worst abs error {worst_s}");
        assert!(worst_t < 4e-7, "tanh worst abs error {worst_t}");
        // Relative accuracy near zero matters for tanh (small pre-activations are common).
        for x in [1e-8f32, 1e-5, 1e-3, -2e-4] {
            let rel = ((tanh(x) as f64 - (x as f64).tanh()) / (x as f64).tanh()).abs();
            assert!(rel < 1e-6, "tanh({x}) relative error {rel}");
        }
    }

    #[test]
    fn extremes_are_finite_and_saturate() {
        for x in [-1e30f32, -100.0, -50.0, 50.0, 100.0, 1e30] {
            assert!(exp(x).is_finite());
            assert!((0.0..=1.0).contains(&sigmoid(x)));
            assert!((-1.0..=1.0).contains(&tanh(x)));
        }
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
        assert_eq!(sigmoid(50.0), 1.0);
        assert!(sigmoid(-50.0) < 1e-21);
    }
}
