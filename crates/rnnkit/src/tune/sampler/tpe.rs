//! The tree-structured Parzen estimator (Optuna's `TPESampler`; the module doc says how).

use super::normal::{LN_SQRT_2PI, log_gauss_mass, log_sum_exp, truncated_normal};
use super::random::{int_log_bounds, random_params, random_value};
use super::{Observation, lookup};
use crate::tune::space::{Dist, Param, Params, SearchSpace};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use toml::Value;

/// TPE's settings.
pub(super) struct Tpe {
    pub(super) startup_trials: usize,
    pub(super) candidates: usize,
    pub(super) multivariate: bool,
}

impl Tpe {
    /// One trial's values.
    pub(super) fn params(
        &self,
        space: &SearchSpace,
        history: &[Observation],
        rng: &mut ChaCha8Rng,
    ) -> Params {
        if history.len() < self.startup_trials.max(1) {
            return random_params(space, rng);
        }
        let params = space.params();
        // Joint draw of the unconditional keys, when multivariate.
        let mut joint: Vec<Option<Value>> = vec![None; params.len()];
        if self.multivariate {
            let keys: Vec<(usize, Axis)> = params
                .iter()
                .enumerate()
                .filter(|(_, p)| p.when.is_empty())
                .filter_map(|(i, p)| Axis::of(&p.dist).map(|a| (i, a)))
                .collect();
            if let Some(values) = self.joint(params, &keys, history, rng) {
                for ((i, _), v) in keys.iter().zip(values) {
                    joint[*i] = Some(v);
                }
            }
        }
        // The rest key by key, in space order.
        let all: Vec<usize> = (0..history.len()).collect();
        let (below, above) = split(history, &all);
        let mut out = Params::new();
        for (p, joint) in params.iter().zip(joint) {
            if !space.is_active(p, &out) {
                continue;
            }
            let v = match joint {
                Some(v) => v,
                None => self.one_key(p, history, &below, &above, rng),
            };
            out.push((p.key.clone(), v));
        }
        out
    }

    /// The values of `keys` (indices into `params` with their axes) drawn jointly; `None` when
    /// too few observations have all of them.
    fn joint(
        &self,
        params: &[Param],
        keys: &[(usize, Axis)],
        history: &[Observation],
        rng: &mut ChaCha8Rng,
    ) -> Option<Vec<Value>> {
        if keys.is_empty() {
            return None;
        }
        // Observations with every key, as points.
        let (rows, points): (Vec<usize>, Vec<Vec<f64>>) = history
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let point: Option<Vec<f64>> = keys
                    .iter()
                    .map(|(k, axis)| lookup(&o.params, &params[*k].key).and_then(|v| axis.point(v)))
                    .collect();
                point.map(|pt| (i, pt))
            })
            .unzip();
        if rows.len() < self.startup_trials.max(1) {
            return None;
        }
        let (below, above) = split(history, &rows);
        let pick =
            |ix: &[usize]| -> Vec<Vec<f64>> { ix.iter().map(|&r| points[r].clone()).collect() };
        let axes: Vec<Axis> = keys.iter().map(|(_, a)| *a).collect();
        let best = self.best_candidate(&axes, &pick(&below), &pick(&above), rng);
        Some(axes.iter().zip(best).map(|(a, x)| a.value(x)).collect())
    }

    /// The value of one key, from the observations that have it. `below` and `above` index
    /// `history`.
    fn one_key(
        &self,
        p: &Param,
        history: &[Observation],
        below: &[usize],
        above: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Value {
        let Some(axis) = Axis::of(&p.dist) else {
            return random_value(&p.dist, rng);
        };
        let points = |ix: &[usize]| -> Vec<Vec<f64>> {
            ix.iter()
                .filter_map(|&i| lookup(&history[i].params, &p.key).and_then(|v| axis.point(v)))
                .map(|x| vec![x])
                .collect()
        };
        let l_obs = points(below);
        if l_obs.is_empty() {
            return random_value(&p.dist, rng);
        }
        let best = self.best_candidate(&[axis], &l_obs, &points(above), rng);
        axis.value(best[0])
    }

    /// Of `candidates` draws from l, the point with the largest `ln l − ln g`.
    fn best_candidate(
        &self,
        axes: &[Axis],
        l_obs: &[Vec<f64>],
        g_obs: &[Vec<f64>],
        rng: &mut ChaCha8Rng,
    ) -> Vec<f64> {
        let l = Parzen::new(axes, l_obs, self.multivariate);
        let g = Parzen::new(axes, g_obs, self.multivariate);
        let mut best = l.sample(axes, rng);
        let mut best_score = l.log_pdf(axes, &best) - g.log_pdf(axes, &best);
        for _ in 1..self.candidates {
            let x = l.sample(axes, rng);
            let score = l.log_pdf(axes, &x) - g.log_pdf(axes, &x);
            if score > best_score {
                (best, best_score) = (x, score);
            }
        }
        best
    }
}

/// Splits `rows` (indices into `history`, ascending) into below and above: positions in
/// `rows`, each ascending (trial order).
pub(super) fn split(history: &[Observation], rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let score = |r: usize| {
        let s = history[rows[r]].score;
        if s.is_nan() { f64::INFINITY } else { s }
    };
    let mut ranked: Vec<usize> = (0..rows.len()).collect();
    // Stable: ties keep trial order.
    ranked.sort_by(|&a, &b| {
        let (ra, rb) = (history[rows[a]].rung, history[rows[b]].rung);
        rb.cmp(&ra).then(score(a).total_cmp(&score(b)))
    });
    let n_below = n_below(rows.len()).min(rows.len());
    let mut below = ranked[..n_below].to_vec();
    let mut above = ranked[n_below..].to_vec();
    below.sort_unstable();
    above.sort_unstable();
    (below, above)
}

/// Optuna's `default_gamma`: `min(⌈n/10⌉, 25)`, at least 1.
pub(super) fn n_below(n: usize) -> usize {
    n.div_ceil(10).clamp(1, 25)
}

/// Optuna's `default_weights` of `n` observations in trial order: 1 each, except that past 25
/// the oldest `n − 25` ramp linearly from `1/n` up to 1.
pub(super) fn observation_weights(n: usize) -> Vec<f64> {
    if n <= 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let first = 1.0 / n as f64;
    (0..ramp)
        .map(|i| match ramp {
            1 => first,
            _ => first + (1.0 - first) * i as f64 / (ramp - 1) as f64,
        })
        .chain(std::iter::repeat_n(1.0, 25))
        .collect()
}

/// How TPE models one key. A point on an axis is a float in the transformed space (`ln x` for
/// loguniform), an integer's own value, or a choice's index.
#[derive(Clone, Copy, Debug)]
pub(super) enum Axis<'a> {
    /// A float; `log`: modelled in `ln x`.
    Float { low: f64, high: f64, log: bool },
    /// An integer, modelled on `[low − ½, high + ½]` (in `ln` when `log`).
    Int { low: i64, high: i64, log: bool },
    /// One of these values.
    Choice(&'a [Value]),
}

impl<'a> Axis<'a> {
    /// The axis of `dist`; `None` for a distribution with one value (drawn as Random) or a
    /// range too wide for `f64`.
    fn of(dist: &'a Dist) -> Option<Self> {
        let axis = match *dist {
            Dist::Uniform { low, high } => Axis::Float {
                low,
                high,
                log: false,
            },
            Dist::LogUniform { low, high } => Axis::Float {
                low,
                high,
                log: true,
            },
            Dist::Int { low, high } if low < high => Axis::Int {
                low,
                high,
                log: false,
            },
            Dist::IntLog { low, high } if low < high => Axis::Int {
                low,
                high,
                log: true,
            },
            Dist::Choice(ref v) if v.len() > 1 => Axis::Choice(v),
            _ => return None,
        };
        let (a, b) = axis.bounds();
        (b - a > 0.0 && (b - a).is_finite()).then_some(axis)
    }

    /// The transformed range: where the Gaussians live (for a choice, its index range).
    fn bounds(&self) -> (f64, f64) {
        match *self {
            Axis::Float {
                low,
                high,
                log: false,
            } => (low, high),
            Axis::Float {
                low,
                high,
                log: true,
            } => (low.ln(), high.ln()),
            Axis::Int {
                low,
                high,
                log: false,
            } => (low as f64 - 0.5, high as f64 + 0.5),
            Axis::Int {
                low,
                high,
                log: true,
            } => int_log_bounds(low, high),
            Axis::Choice(values) => (0.0, values.len() as f64 - 1.0),
        }
    }

    /// Where a point sits in the transformed range: `ln k` for an int_log integer `k`.
    fn centre(&self, x: f64) -> f64 {
        match *self {
            Axis::Int { log: true, .. } => x.ln(),
            _ => x,
        }
    }

    /// The point of a history value; `None` if it does not fit.
    fn point(&self, v: &Value) -> Option<f64> {
        match (*self, v) {
            (Axis::Float { low, high, log }, Value::Float(_) | Value::Integer(_)) => {
                let x = match *v {
                    Value::Float(f) => f,
                    Value::Integer(i) => i as f64,
                    _ => return None,
                };
                (low <= x && x <= high).then(|| if log { x.ln() } else { x })
            }
            (Axis::Int { low, high, .. }, Value::Integer(i)) => {
                (low <= *i && *i <= high).then_some(*i as f64)
            }
            (Axis::Choice(values), v) => values.iter().position(|c| c == v).map(|i| i as f64),
            _ => None,
        }
    }

    /// The value of a point.
    fn value(&self, x: f64) -> Value {
        match *self {
            Axis::Float { low, high, log } => {
                Value::Float(if log { x.exp() } else { x }.clamp(low, high))
            }
            Axis::Int { low, high, .. } => Value::Integer((x.round() as i64).clamp(low, high)),
            Axis::Choice(values) => {
                let i = (x.max(0.0) as usize).min(values.len() - 1);
                values[i].clone()
            }
        }
    }

    /// The point of a draw `x` in the transformed range: rounded for integers.
    fn snap(&self, x: f64) -> f64 {
        match *self {
            Axis::Float { .. } | Axis::Choice(_) => x,
            Axis::Int { low, high, log } => {
                let k = if log { x.exp() } else { x };
                (k.round() as i64).clamp(low, high) as f64
            }
        }
    }
}

/// The kernels of one axis of a Parzen estimator.
pub(super) enum Kernels {
    /// Gaussians truncated to `[a, b]` (the transformed range): centre, σ, and
    /// `ln(Φ(β) − Φ(α))` per kernel.
    Num {
        a: f64,
        b: f64,
        mu: Vec<f64>,
        sigma: Vec<f64>,
        log_z: Vec<f64>,
    },
    /// Per kernel, ln of each choice's probability.
    Cat { log_p: Vec<Vec<f64>> },
}

/// A mixture of products: kernel `k` has weight `w[k]` and, on each axis, `axes[d]`'s kernel `k`.
pub(super) struct Parzen {
    /// ln of the normalized weights: observations in trial order, then the prior.
    log_w: Vec<f64>,
    /// Cumulative normalized weights, to pick a kernel.
    cum_w: Vec<f64>,
    /// One set of kernels per axis.
    axes: Vec<Kernels>,
}

impl Parzen {
    /// The estimator of `obs` (points, one per observation, in trial order). `joint_bandwidth`:
    /// Optuna's multivariate σ rule instead of the neighbour gaps.
    fn new(axes: &[Axis], obs: &[Vec<f64>], joint_bandwidth: bool) -> Self {
        let n = obs.len();
        let mut w = observation_weights(n);
        w.push(1.0); // the prior
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let cum_w = w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect();
        let log_w = w.iter().map(|x| (x / total).ln()).collect();
        let kernels = axes
            .iter()
            .enumerate()
            .map(|(d, axis)| {
                let xs: Vec<f64> = obs.iter().map(|o| o[d]).collect();
                match *axis {
                    Axis::Choice(values) => Kernels::cat(&xs, values.len()),
                    _ => {
                        let (a, b) = axis.bounds();
                        let mus: Vec<f64> = xs.iter().map(|&x| axis.centre(x)).collect();
                        Kernels::num(&mus, a, b, joint_bandwidth.then_some(axes.len()))
                    }
                }
            })
            .collect();
        Parzen {
            log_w,
            cum_w,
            axes: kernels,
        }
    }

    /// One point: a kernel by weight, then each axis from that kernel.
    fn sample(&self, axes: &[Axis], rng: &mut ChaCha8Rng) -> Vec<f64> {
        let u: f64 = rng.random();
        let last = self.cum_w.len() - 1;
        let k = self.cum_w.iter().position(|&c| u < c).unwrap_or(last);
        axes.iter()
            .zip(&self.axes)
            .map(|(axis, kernels)| match kernels {
                Kernels::Num {
                    a, b, mu, sigma, ..
                } => axis.snap(truncated_normal(mu[k], sigma[k], *a, *b, rng)),
                Kernels::Cat { log_p } => {
                    let u: f64 = rng.random();
                    let mut acc = 0.0;
                    let row = &log_p[k];
                    row.iter()
                        .position(|lp| {
                            acc += lp.exp();
                            u < acc
                        })
                        .unwrap_or(row.len() - 1) as f64
                }
            })
            .collect()
    }

    /// ln of the density (the mass, on integer and choice axes) at `x`.
    fn log_pdf(&self, axes: &[Axis], x: &[f64]) -> f64 {
        let terms: Vec<f64> = self
            .log_w
            .iter()
            .enumerate()
            .map(|(k, lw)| {
                lw + axes
                    .iter()
                    .zip(&self.axes)
                    .zip(x)
                    .map(|((axis, kernels), &xd)| kernels.log_pdf(axis, k, xd))
                    .sum::<f64>()
            })
            .collect();
        log_sum_exp(&terms)
    }
}

impl Kernels {
    /// Truncated Gaussians at `mus` (transformed) plus the prior, on `[a, b]`. `joint`: the number
    /// of axes modelled jointly, for Optuna's multivariate σ; `None`: neighbour gaps.
    pub(super) fn num(mus: &[f64], a: f64, b: f64, joint: Option<usize>) -> Self {
        let n = mus.len();
        let width = b - a;
        let mut sigma = match joint {
            Some(d) => {
                let s = 0.2 * (n.max(1) as f64).powf(-1.0 / (d as f64 + 4.0)) * width;
                vec![s; n]
            }
            None => neighbour_sigmas(mus, a, b),
        };
        let min_sigma = width / (n as f64 + 2.0).min(100.0);
        for s in &mut sigma {
            *s = s.clamp(min_sigma, width);
        }
        let mut mu = mus.to_vec();
        mu.push(0.5 * (a + b));
        sigma.push(width);
        let log_z = mu
            .iter()
            .zip(&sigma)
            .map(|(m, s)| log_gauss_mass((a - m) / s, (b - m) / s))
            .collect();
        Kernels::Num {
            a,
            b,
            mu,
            sigma,
            log_z,
        }
    }

    /// Choice kernels of observed indices `xs` among `m` choices, plus the uniform prior.
    fn cat(xs: &[f64], m: usize) -> Self {
        let n_kernels = xs.len() + 1;
        let spread = 1.0 / n_kernels as f64;
        let row = |x: f64| -> Vec<f64> {
            let total = 1.0 + spread * m as f64;
            (0..m)
                .map(|c| {
                    let w = if c as f64 == x { 1.0 + spread } else { spread };
                    (w / total).ln()
                })
                .collect()
        };
        let mut log_p: Vec<Vec<f64>> = xs.iter().map(|&x| row(x)).collect();
        log_p.push(vec![-(m as f64).ln(); m]);
        Kernels::Cat { log_p }
    }

    /// ln of kernel `k`'s density at point `x` (mass for integers and choices).
    fn log_pdf(&self, axis: &Axis, k: usize, x: f64) -> f64 {
        match self {
            Kernels::Num {
                mu, sigma, log_z, ..
            } => {
                let (m, s) = (mu[k], sigma[k]);
                match *axis {
                    Axis::Int { log, .. } => {
                        let (lo, hi) = if log {
                            ((x - 0.5).ln(), (x + 0.5).ln())
                        } else {
                            (x - 0.5, x + 0.5)
                        };
                        log_gauss_mass((lo - m) / s, (hi - m) / s) - log_z[k]
                    }
                    _ => {
                        let z = (x - m) / s;
                        -0.5 * z * z - s.ln() - LN_SQRT_2PI - log_z[k]
                    }
                }
            }
            Kernels::Cat { log_p } => {
                let row = &log_p[k];
                if x >= 0.0 && (x as usize) < row.len() {
                    row[x as usize]
                } else {
                    f64::NEG_INFINITY
                }
            }
        }
    }
}

/// Optuna's per-key σ: the larger gap from each centre to its neighbours among the sorted
/// centres and the prior's (`(a + b)/2`), with `a` and `b` as the outer neighbours; the smallest
/// and the largest centre take their inner gap (`consider_endpoints = False`).
pub(super) fn neighbour_sigmas(mus: &[f64], a: f64, b: f64) -> Vec<f64> {
    let mut all = mus.to_vec();
    all.push(0.5 * (a + b));
    let m = all.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| all[i].total_cmp(&all[j]));
    // [m + 2]: a, the sorted centres, b
    let mut s = Vec::with_capacity(m + 2);
    s.push(a);
    s.extend(order.iter().map(|&i| all[i]));
    s.push(b);
    let mut sorted_sigma: Vec<f64> = (1..=m)
        .map(|i| (s[i] - s[i - 1]).max(s[i + 1] - s[i]))
        .collect();
    if m >= 2 {
        sorted_sigma[0] = s[2] - s[1];
        sorted_sigma[m - 1] = s[m] - s[m - 1];
    }
    let mut sigma = vec![0.0; m];
    for (rank, &i) in order.iter().enumerate() {
        sigma[i] = sorted_sigma[rank];
    }
    sigma.truncate(mus.len());
    sigma
}
