//! The normal distribution: truncated draws, and its tails accurate far out (the kernels
//! reach 100 σ).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f64::consts::{LN_2, PI, SQRT_2};

/// A draw of N(mu, σ²) conditioned on `[a, b]`, by rejection. `mu` lies in `[a, b]` and
/// `σ ≤ b − a`, so a draw lands inside with probability above 0.19.
pub(super) fn truncated_normal(mu: f64, sigma: f64, a: f64, b: f64, rng: &mut ChaCha8Rng) -> f64 {
    for _ in 0..1000 {
        // Box–Muller; 1 − u is in (0, 1], so its ln is finite.
        let (u1, u2): (f64, f64) = (rng.random(), rng.random());
        let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * PI * u2).cos();
        let x = mu + sigma * z;
        if a <= x && x <= b {
            return x;
        }
    }
    mu.clamp(a, b)
}

/// `ln √(2π)`.
pub(super) const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln(e^{x_1} + e^{x_2} + ...)`, `−∞` for none.
pub(super) fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    max + xs.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `erfc(x)`, relative error about 1e-13 or better.
pub(super) fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < 2.5 {
        1.0 - erf_series(x)
    } else {
        log_erfc_tail(x).exp()
    }
}

/// `erf(x)` for `0 ≤ x < 2.5`: `2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (2n+1)!!` (all terms positive).
pub(super) fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= 2.0 * x2 / (2 * n + 1) as f64;
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    2.0 / PI.sqrt() * (-x2).exp() * sum
}

/// `ln erfc(x)` for `x ≥ 2.5`, by Laplace's continued fraction
/// `erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + ...))))` (48 terms: converged to
/// 1 ulp from 2.5 on).
pub(super) fn log_erfc_tail(x: f64) -> f64 {
    let mut k = x;
    for n in (1..=48).rev() {
        k = x + 0.5 * n as f64 / k;
    }
    -x * x - 0.5 * PI.ln() - k.ln()
}

/// `Φ(z)`, the standard normal CDF.
pub(super) fn ndtr(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// `ln Φ(z)`, accurate in both tails.
pub(super) fn log_ndtr(z: f64) -> f64 {
    let x = -z / SQRT_2;
    if x >= 2.5 {
        log_erfc_tail(x) - LN_2
    } else if z > 0.0 {
        (-0.5 * erfc(z / SQRT_2)).ln_1p()
    } else {
        (0.5 * erfc(x)).ln()
    }
}

/// `ln(1 − e^t)` for `t ≤ 0`.
pub(super) fn log1mexp(t: f64) -> f64 {
    if t > -LN_2 {
        (-t.exp_m1()).ln()
    } else {
        (-t.exp()).ln_1p()
    }
}

/// `ln(Φ(b) − Φ(a))` for `a ≤ b`, without cancellation in the tails (SciPy's and Optuna's
/// `_log_gauss_mass`).
pub(super) fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        let lb = log_ndtr(b);
        lb + log1mexp(log_ndtr(a) - lb)
    } else if a > 0.0 {
        log_gauss_mass(-b, -a)
    } else {
        (-ndtr(a) - ndtr(-b)).ln_1p()
    }
}
