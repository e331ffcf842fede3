//! Samplers: how a study picks the next trial's values from the space and the results so far.
//!
//! Every sampler is a pure function of `(space, history, trial, seed)`. Its random numbers come
//! from a ChaCha8 stream seeded with a mix of `seed` and `trial` (the grid's order from `seed`
//! alone), so a study that is stopped and resumed, or replayed, proposes the same trials.
//!
//! | Kind | A trial's values |
//! |---|---|
//! | [`SamplerKind::Random`] | each active key drawn independently from its distribution |
//! | [`SamplerKind::Grid`] | combination `trial` of them all, in a seeded shuffled order |
//! | [`SamplerKind::Tpe`] | of `candidates` draws from l(x), the one with the largest l(x)/g(x) |
//!
//! # Random
//! uniform: `low + u·(high − low)`; loguniform: `exp` of a uniform in `[ln low, ln high]`; int:
//! uniform in `low..=high`; int_log: `round(exp(u))` for `u` uniform in
//! `[ln(low − ½), ln(high + ½)]`, clamped to `[low, high]` (Optuna's `RandomSampler`); choice:
//! uniform; fixed: its value.
//!
//! # Grid
//! Every combination over the conditional tree: a key inactive in a branch is absent there.
//! choice: its values; fixed: its value; int: every integer if there are at most `points`, else
//! `points` evenly spaced, rounded; uniform: `points` evenly spaced, both ends included (one
//! point: the midpoint); loguniform and int_log: the same in `ln x` (int_log rounded and
//! deduplicated). The combinations are listed depth first in space order, shuffled by
//! Fisher–Yates with `seed`, and trial `t` gets number `t`; `None` once they are used up. A grid
//! of more than [`MAX_GRID`] combinations is an error. (Optuna's `GridSampler` takes an
//! explicit list of values instead.)
//!
//! # TPE
//! Optuna's `TPESampler` with its defaults (`prior_weight = 1`, `consider_magic_clip`,
//! `consider_endpoints = False`, `gamma = default_gamma`, `weights = default_weights`):
//!
//! 1. Fewer than `startup_trials` observations (or none): a Random draw.
//! 2. Observations ranked by rung (higher first), then score (lower first, NaN last), as Optuna
//!    ranks pruned trials by `(−step, value)`. The first `min(⌈n/10⌉, 25)` (at least 1) are
//!    *below*, the rest *above*. A key's estimators then keep the observations that have it.
//! 3. Each side becomes a Parzen estimator, a mixture of one kernel per observation (in trial
//!    order) and one prior kernel. Weights: 1 per observation, except that on a side with more
//!    than 25 the oldest `n − 25` ramp linearly from `1/n` up to 1 (Optuna's `default_weights`);
//!    1 for the prior.
//!    - Numeric keys: Gaussians truncated to the range, in the transformed space (`ln x` for log
//!      kinds; integers on `[low − ½, high + ½]`, a candidate rounded and scored by the mass of
//!      its unit bin, as Optuna's discrete distributions). The prior sits mid-range with
//!      σ = width. σ of an observation: per key, the larger gap to its neighbours among the sorted
//!      centres (the prior's included, the range ends as outer neighbours; the smallest and the
//!      largest centre take their inner gap); with `multivariate = true`,
//!      `0.2 · n^(−1/(d+4)) · width` (Optuna's multivariate rule, a Scott-like rule; `d` = keys
//!      in the model, 1 for a key decided on its own, as Optuna's independent fallback). Either
//!      is then clipped to `[width / min(100, n + 2), width]` (Optuna's "magic clip";
//!      `n + 2` = 1 + kernels).
//!    - Choice keys: an observation's kernel puts weight 1 on its value and `1/(n+1)` on every
//!      choice (then normalized); the prior kernel is uniform. This is Optuna's form, close to
//!      "counts plus a prior of 1 spread evenly".
//!    - Fixed keys, and ranges with one value: that value.
//! 4. `candidates` draws from l (a kernel by weight, then every dimension from that kernel); the
//!    draw with the largest `ln l(x) − ln g(x)` wins (the first, on ties).
//! 5. `multivariate = true`: the keys without `when` are modelled jointly (a mixture of products,
//!    as Optuna's multivariate TPE) from the observations that have all of them; keys with `when`
//!    are then decided one by one, in space order, once their conditions can be read off the
//!    values chosen so far. `false`: every key on its own, in space order.
//!
//! Where this differs from Optuna:
//! - Which keys are joint is read from the space (the unconditional ones), not from the
//!   intersection of the keys of past trials. When fewer than `startup_trials` observations have
//!   all of them (a space that changed), they are decided key by key, as Optuna falls back to
//!   independent sampling.
//! - A key with no *below* observation (a conditional key never active among the best) is drawn
//!   as Random; Optuna would draw from the prior kernel alone.
//! - A history value that does not fit its key (wrong type, out of bounds, not a choice) is
//!   ignored for that key.
//! - Truncated Gaussians are drawn by rejection, and `erfc` is computed here (a series below 2.5,
//!   Laplace's continued fraction above), so the streams differ from SciPy's even where the
//!   distributions are the same.

use super::space::{Dist, Param, Params, SearchSpace};
use crate::error::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::f64::consts::{LN_2, PI, SQRT_2};
use toml::Value;

/// A finished or pruned trial as a sampler sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Its values (active keys only).
    pub params: Params,
    /// The highest rung it completed (0 = the first). Trials that reached a higher rung rank
    /// above those that stopped lower, whatever their scores.
    pub rung: usize,
    /// Its score at that rung, oriented so that lower is better (a maximized metric is negated).
    pub score: f64,
}

/// `[sampler]` of a study file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SamplerKind {
    /// Independent uniform draws.
    Random,
    /// Every combination, in a seeded shuffled order; continuous keys take `points` evenly
    /// spaced values (in log space for log distributions).
    Grid {
        /// Values per continuous or integer key. Default 3.
        #[serde(default = "default_points")]
        points: usize,
    },
    /// Tree-structured Parzen estimator (Bergstra et al., 2011; Optuna's defaults).
    Tpe {
        /// Random trials before the model is used. Default 10.
        #[serde(default = "default_startup")]
        startup_trials: usize,
        /// Candidates drawn from l(x) per key; the best l/g wins. Default 24.
        #[serde(default = "default_candidates")]
        candidates: usize,
        /// Score candidates jointly over all keys instead of key by key. Default true.
        #[serde(default = "default_true")]
        multivariate: bool,
    },
}

fn default_points() -> usize {
    3
}
fn default_startup() -> usize {
    10
}
fn default_candidates() -> usize {
    24
}
fn default_true() -> bool {
    true
}

impl Default for SamplerKind {
    fn default() -> Self {
        SamplerKind::Tpe {
            startup_trials: default_startup(),
            candidates: default_candidates(),
            multivariate: true,
        }
    }
}

/// Picks trials' values.
pub trait Sampler {
    /// The values of trial number `trial` (0, 1, 2, ...) given the results so far; `None`
    /// when the sampler has nothing new to offer (a grid that is exhausted). A pure function
    /// of its arguments and `seed`.
    fn sample(
        &self,
        space: &SearchSpace,
        history: &[Observation],
        trial: u64,
        seed: u64,
    ) -> Result<Option<Params>>;
}

/// The most combinations a grid may have; a larger one is an error, not a study that never ends.
pub const MAX_GRID: u64 = 1_000_000;

impl SamplerKind {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`]: `points = 0` for a grid, `candidates = 0` for TPE.
    pub fn validate(&self) -> Result<()> {
        match *self {
            SamplerKind::Grid { points: 0 } => Err(Error::Config(
                "sampler.points = 0: a grid needs at least 1 value per key (default 3)".into(),
            )),
            SamplerKind::Tpe { candidates: 0, .. } => Err(Error::Config(
                "sampler.candidates = 0: TPE needs at least 1 candidate per draw (default 24)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Dispatches to the random, grid and TPE samplers described in the module docs.
///
/// `history` should list the trials in the order they started: TPE gives the oldest of a long
/// *above* set less weight.
///
/// ```
/// use rnnkit::tune::{Observation, Sampler, SamplerKind, SearchSpace};
/// let space = SearchSpace::parse_table(
///     &toml::from_str(r#"
/// "train.optimizer.lr" = { loguniform = [1e-4, 1e-2] }
/// "model.hidden_size" = { int_log = [16, 256] }
/// "#).unwrap(),
///     |_| 0,
/// )
/// .unwrap();
/// let tpe = SamplerKind::default();
/// let mut history = Vec::new();
/// for trial in 0..15 {
///     let params = tpe.sample(&space, &history, trial, 7).unwrap().unwrap();
///     let lr = params[0].1.as_float().unwrap();
///     assert!((1e-4..=1e-2).contains(&lr));
///     // Same arguments, same values.
///     assert_eq!(Some(params.clone()), tpe.sample(&space, &history, trial, 7).unwrap());
///     history.push(Observation { params, rung: 0, score: (lr.ln() - 1e-3f64.ln()).abs() });
/// }
/// // A 1-point grid has one combination, then nothing.
/// let grid = SamplerKind::Grid { points: 1 };
/// assert!(grid.sample(&space, &[], 0, 7).unwrap().is_some());
/// assert!(grid.sample(&space, &[], 1, 7).unwrap().is_none());
/// ```
impl Sampler for SamplerKind {
    fn sample(
        &self,
        space: &SearchSpace,
        history: &[Observation],
        trial: u64,
        seed: u64,
    ) -> Result<Option<Params>> {
        self.validate()?;
        // A deserialized space has not been checked; the samplers below rely on valid bounds.
        for p in space.params() {
            p.dist.validate().map_err(|e| {
                let msg = match e {
                    Error::Config(m) => m,
                    other => other.to_string(),
                };
                Error::Config(format!("space \"{}\": {msg}", p.key))
            })?;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, trial));
        match *self {
            SamplerKind::Random => Ok(Some(random_params(space, &mut rng))),
            SamplerKind::Grid { points } => grid_params(space, points, trial, seed),
            SamplerKind::Tpe {
                startup_trials,
                candidates,
                multivariate,
            } => {
                let tpe = Tpe {
                    startup_trials,
                    candidates,
                    multivariate,
                };
                Ok(Some(tpe.params(space, history, &mut rng)))
            }
        }
    }
}

/// SplitMix64's finalizer: a bijection on `u64` that scatters nearby inputs.
fn splitmix64(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The RNG seed of trial `trial` of a study seeded `seed`.
fn mix(seed: u64, trial: u64) -> u64 {
    splitmix64(seed ^ splitmix64(trial))
}

/// `a + t·(b − a)` without overflow for huge ranges, kept inside `[a, b]`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    ((1.0 - t) * a + t * b).clamp(a.min(b), a.max(b))
}

/// The value of a key in `params`.
fn lookup<'a>(params: &'a Params, key: &str) -> Option<&'a Value> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

// ------------------------------------------------------------------------------------------
// Random

/// One random draw of every active key, in space order.
fn random_params(space: &SearchSpace, rng: &mut ChaCha8Rng) -> Params {
    let mut out = Params::new();
    for p in space.params() {
        if space.is_active(p, &out) {
            out.push((p.key.clone(), random_value(&p.dist, rng)));
        }
    }
    out
}

/// One draw of `dist` (already validated: ranges not empty, log bounds positive).
fn random_value(dist: &Dist, rng: &mut ChaCha8Rng) -> Value {
    match *dist {
        Dist::Uniform { low, high } => Value::Float(lerp(low, high, rng.random())),
        Dist::LogUniform { low, high } => Value::Float(
            lerp(low.ln(), high.ln(), rng.random())
                .exp()
                .clamp(low, high),
        ),
        Dist::Int { low, high } => Value::Integer(rng.random_range(low..=high)),
        Dist::IntLog { low, high } => {
            let (a, b) = int_log_bounds(low, high);
            Value::Integer(round_exp(lerp(a, b, rng.random()), low, high))
        }
        Dist::Choice(ref values) => match values.len() {
            0 => Value::Array(Vec::new()), // unreachable after validation
            n => values[rng.random_range(0..n)].clone(),
        },
        Dist::Fixed(ref v) => v.clone(),
    }
}

/// `[ln(low − ½), ln(high + ½)]`: the range an int_log key is drawn and modelled on.
fn int_log_bounds(low: i64, high: i64) -> (f64, f64) {
    ((low as f64 - 0.5).ln(), (high as f64 + 0.5).ln())
}

/// `round(exp(x))` in `[low, high]`.
fn round_exp(x: f64, low: i64, high: i64) -> i64 {
    (x.exp().round() as i64).clamp(low, high)
}

// ------------------------------------------------------------------------------------------
// Grid

/// Combination number `trial` of the grid, in the order shuffled by `seed`.
fn grid_params(
    space: &SearchSpace,
    points: usize,
    trial: u64,
    seed: u64,
) -> Result<Option<Params>> {
    let params = space.params();
    // More than MAX_GRID values of one key already make the grid too big.
    let points = points.min(MAX_GRID as usize + 1);
    let values: Vec<Vec<Value>> = params
        .iter()
        .map(|p| grid_values(&p.dist, points))
        .collect();
    let too_big = |count: String| {
        Error::Config(format!(
            "the grid has {count} combinations, more than the limit of 1,000,000: lower \
             sampler.points, use choice lists, or use kind = \"random\" or \"tpe\""
        ))
    };
    // The unconditional keys alone bound the count from below.
    let floor = params
        .iter()
        .zip(&values)
        .filter(|(p, _)| p.when.is_empty())
        .fold(1u64, |acc, (_, v)| acc.saturating_mul(v.len() as u64));
    if floor > MAX_GRID {
        return Err(too_big(format!("at least {floor}")));
    }
    let len = grid_count(space, &values, 0, &mut Params::new(), MAX_GRID);
    if len > MAX_GRID {
        return Err(too_big("over 1,000,000".into()));
    }
    if trial >= len {
        return Ok(None);
    }
    // Fisher–Yates over the combination numbers, with the seed alone: every trial of a study
    // sees the same order.
    let len = len as usize;
    let mut order: Vec<u32> = (0..len as u32).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..len).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let mut rank = u64::from(order[trial as usize]);
    // Walk down the tree, skipping whole subtrees until `rank` falls inside one.
    let mut drawn = Params::new();
    for (i, (p, vals)) in params.iter().zip(&values).enumerate() {
        if !space.is_active(p, &drawn) {
            continue;
        }
        let mut found = false;
        for v in vals {
            drawn.push((p.key.clone(), v.clone()));
            let below = grid_count(space, &values, i + 1, &mut drawn, u64::MAX);
            if rank < below {
                found = true;
                break;
            }
            rank -= below;
            drawn.pop();
        }
        if !found {
            return Err(Error::Config(format!(
                "grid: combination {trial} not found under \"{}\" (a bug in the grid sampler)",
                p.key
            )));
        }
    }
    Ok(Some(drawn))
}

/// The combinations of keys `i..` given the values `drawn` before them; stops counting once past
/// `cap`.
fn grid_count(
    space: &SearchSpace,
    values: &[Vec<Value>],
    i: usize,
    drawn: &mut Params,
    cap: u64,
) -> u64 {
    let params = space.params();
    let Some(p) = params.get(i) else {
        return 1;
    };
    if !space.is_active(p, drawn) {
        return grid_count(space, values, i + 1, drawn, cap);
    }
    let mut total = 0u64;
    for v in &values[i] {
        drawn.push((p.key.clone(), v.clone()));
        total = total.saturating_add(grid_count(space, values, i + 1, drawn, cap));
        drawn.pop();
        if total > cap {
            break;
        }
    }
    total
}

/// The grid's values of one key (at least one; `points ≥ 1`).
fn grid_values(dist: &Dist, points: usize) -> Vec<Value> {
    // `points` evenly spaced in [a, b], both ends exact; one point: the midpoint.
    let spaced = |a: f64, b: f64| -> Vec<f64> {
        if points == 1 {
            return vec![0.5 * a + 0.5 * b];
        }
        (0..points)
            .map(|k| match k {
                0 => a,
                k if k == points - 1 => b,
                k => lerp(a, b, k as f64 / (points - 1) as f64),
            })
            .collect()
    };
    let count = |low: i64, high: i64| i128::from(high) - i128::from(low) + 1;
    let mut out: Vec<Value> = match *dist {
        Dist::Uniform { low, high } => spaced(low, high).into_iter().map(Value::Float).collect(),
        Dist::LogUniform { low, high } => {
            let mut xs: Vec<f64> = spaced(low.ln(), high.ln())
                .into_iter()
                .map(|x| x.exp().clamp(low, high))
                .collect();
            if points > 1 {
                // exp(ln x) need not give x back.
                xs[0] = low;
                xs[points - 1] = high;
            }
            xs.into_iter().map(Value::Float).collect()
        }
        Dist::Int { low, high } | Dist::IntLog { low, high }
            if count(low, high) <= points as i128 =>
        {
            (low..=high).map(Value::Integer).collect()
        }
        Dist::Int { low, high } => {
            let (lo, span) = (i128::from(low), i128::from(high) - i128::from(low));
            if points == 1 {
                vec![Value::Integer((lo + span / 2) as i64)]
            } else {
                // low + round(k·span / (points − 1)), in integers.
                let m = points as i128 - 1;
                (0..points as i128)
                    .map(|k| Value::Integer((lo + (2 * k * span + m) / (2 * m)) as i64))
                    .collect()
            }
        }
        Dist::IntLog { low, high } => spaced((low as f64).ln(), (high as f64).ln())
            .into_iter()
            .map(|x| Value::Integer(round_exp(x, low, high)))
            .collect(),
        Dist::Choice(ref values) => values.clone(),
        Dist::Fixed(ref v) => vec![v.clone()],
    };
    if !matches!(dist, Dist::Choice(_)) {
        out.dedup();
    }
    out
}

// ------------------------------------------------------------------------------------------
// TPE

/// TPE's settings.
struct Tpe {
    startup_trials: usize,
    candidates: usize,
    multivariate: bool,
}

impl Tpe {
    /// One trial's values.
    fn params(&self, space: &SearchSpace, history: &[Observation], rng: &mut ChaCha8Rng) -> Params {
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
fn split(history: &[Observation], rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
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
fn n_below(n: usize) -> usize {
    n.div_ceil(10).clamp(1, 25)
}

/// Optuna's `default_weights` of `n` observations in trial order: 1 each, except that past 25
/// the oldest `n − 25` ramp linearly from `1/n` up to 1.
fn observation_weights(n: usize) -> Vec<f64> {
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
enum Axis<'a> {
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
enum Kernels {
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
struct Parzen {
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
    fn num(mus: &[f64], a: f64, b: f64, joint: Option<usize>) -> Self {
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
fn neighbour_sigmas(mus: &[f64], a: f64, b: f64) -> Vec<f64> {
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

/// A draw of N(mu, σ²) conditioned on `[a, b]`, by rejection. `mu` lies in `[a, b]` and
/// `σ ≤ b − a`, so a draw lands inside with probability above 0.19.
fn truncated_normal(mu: f64, sigma: f64, a: f64, b: f64, rng: &mut ChaCha8Rng) -> f64 {
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

// ------------------------------------------------------------------------------------------
// The normal distribution's tails, accurate far out (the kernels reach 100 σ).

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln(e^{x_1} + e^{x_2} + ...)`, `−∞` for none.
fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    max + xs.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `erfc(x)`, relative error about 1e-13 or better.
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < 2.5 {
        1.0 - erf_series(x)
    } else {
        log_erfc_tail(x).exp()
    }
}

/// `erf(x)` for `0 ≤ x < 2.5`: `2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (2n+1)!!` (all terms positive).
fn erf_series(x: f64) -> f64 {
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
fn log_erfc_tail(x: f64) -> f64 {
    let mut k = x;
    for n in (1..=48).rev() {
        k = x + 0.5 * n as f64 / k;
    }
    -x * x - 0.5 * PI.ln() - k.ln()
}

/// `Φ(z)`, the standard normal CDF.
fn ndtr(z: f64) -> f64 {
    0.5 * erfc(-z / SQRT_2)
}

/// `ln Φ(z)`, accurate in both tails.
fn log_ndtr(z: f64) -> f64 {
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
fn log1mexp(t: f64) -> f64 {
    if t > -LN_2 {
        (-t.exp_m1()).ln()
    } else {
        (-t.exp()).ln_1p()
    }
}

/// `ln(Φ(b) − Φ(a))` for `a ≤ b`, without cancellation in the tails (SciPy's and Optuna's
/// `_log_gauss_mass`).
fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        let lb = log_ndtr(b);
        lb + log1mexp(log_ndtr(a) - lb)
    } else if a > 0.0 {
        log_gauss_mass(-b, -a)
    } else {
        (-ndtr(a) - ndtr(-b)).ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(text: &str) -> SearchSpace {
        SearchSpace::parse_table(&toml::from_str(text).unwrap(), |_| 0).unwrap()
    }

    /// Every kind of distribution, and conditions on a choice and on an integer.
    const ALL_KINDS: &str = r#"
"cell" = { choice = ["lstm", "gru", "rnn"] }
"lr" = { loguniform = [1e-4, 1e-1] }
"dropout" = { uniform = [0.0, 0.5] }
"layers" = { int = [1, 4] }
"hidden" = { int_log = [8, 1024] }
"clip" = { fixed = 1.0 }
"proj" = { int = [0, 64], when = { "cell" = "lstm" } }
"nonlinearity" = { choice = ["tanh", "relu"], when = { "cell" = "rnn" } }
"inter_dropout" = { uniform = [0.0, 0.3], when = { "layers" = [2, 3, 4] } }
"proj_lr" = { loguniform = [1e-3, 1.0], when = { "proj" = [0, 1, 2, 3] } }
"#;

    fn tpe(multivariate: bool) -> SamplerKind {
        SamplerKind::Tpe {
            startup_trials: 10,
            candidates: 24,
            multivariate,
        }
    }

    fn all_samplers() -> Vec<SamplerKind> {
        vec![
            SamplerKind::Random,
            SamplerKind::Grid { points: 3 },
            tpe(true),
            tpe(false),
        ]
    }

    /// Whether `v` is a value `dist` can take (type and bounds).
    fn fits(dist: &Dist, v: &Value) -> bool {
        match (dist, v) {
            (Dist::Uniform { low, high }, Value::Float(x)) => low <= x && x <= high,
            (Dist::LogUniform { low, high }, Value::Float(x)) => *x > 0.0 && low <= x && x <= high,
            (Dist::Int { low, high } | Dist::IntLog { low, high }, Value::Integer(i)) => {
                low <= i && i <= high
            }
            (Dist::Choice(c), v) => c.contains(v),
            (Dist::Fixed(f), v) => f == v,
            _ => false,
        }
    }

    /// `params` has exactly the active keys, in space order, each with a value it can take.
    fn assert_valid(space: &SearchSpace, params: &Params, what: &str) {
        let mut drawn = Params::new();
        let mut rest = params.iter().peekable();
        for p in space.params() {
            let active = space.is_active(p, &drawn);
            match rest.peek() {
                Some((k, v)) if *k == p.key => {
                    assert!(active, "{what}: \"{k}\" present but inactive in {params:?}");
                    assert!(
                        fits(&p.dist, v),
                        "{what}: \"{k}\" = {v} outside {:?}",
                        p.dist
                    );
                    drawn.push((k.clone(), v.clone()));
                    rest.next();
                }
                _ => assert!(!active, "{what}: \"{}\" missing from {params:?}", p.key),
            }
        }
        assert!(
            rest.next().is_none(),
            "{what}: unknown or misordered keys in {params:?}"
        );
    }

    /// Random trials of `space` with made-up scores and rungs (a few NaN), plus junk values
    /// TPE must ignore.
    fn made_up_history(space: &SearchSpace, n: u64, seed: u64) -> Vec<Observation> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut history: Vec<Observation> = (0..n)
            .map(|t| {
                let params = SamplerKind::Random
                    .sample(space, &[], t, seed)
                    .unwrap()
                    .unwrap();
                let score = if t % 13 == 5 {
                    f64::NAN
                } else {
                    rng.random::<f64>()
                };
                Observation {
                    params,
                    rung: rng.random_range(0..3),
                    score,
                }
            })
            .collect();
        history[1]
            .params
            .push(("not.in.space".into(), Value::from(3)));
        if let Some(p) = history[2].params.iter_mut().find(|(k, _)| k == "lr") {
            p.1 = Value::from("fast");
        }
        if let Some(p) = history[3].params.iter_mut().find(|(k, _)| k == "layers") {
            p.1 = Value::from(99);
        }
        history
    }

    #[test]
    fn same_arguments_same_values_and_trials_differ() {
        let space = space(ALL_KINDS);
        let history = made_up_history(&space, 30, 1);
        for kind in all_samplers() {
            let a = kind.sample(&space, &history, 31, 5).unwrap();
            let b = kind.sample(&space, &history, 31, 5).unwrap();
            assert!(a.is_some(), "{kind:?}");
            assert_eq!(a, b, "{kind:?}");
            let c = kind.sample(&space, &history, 32, 5).unwrap();
            assert_ne!(a, c, "{kind:?}: trials 31 and 32 gave the same values");
            let d = kind.sample(&space, &history, 31, 6).unwrap();
            assert_ne!(a, d, "{kind:?}: seeds 5 and 6 gave the same values");
        }
    }

    #[test]
    fn tpe_before_startup_is_random() {
        let space = space(ALL_KINDS);
        let history = made_up_history(&space, 9, 2);
        for t in 0..20 {
            assert_eq!(
                tpe(true).sample(&space, &history, t, 3).unwrap(),
                SamplerKind::Random.sample(&space, &history, t, 3).unwrap()
            );
        }
    }

    #[test]
    fn every_sampler_respects_bounds_types_and_conditions() {
        let space = space(ALL_KINDS);
        let mut seen_proj = 0;
        for seed in 0..40 {
            let history = made_up_history(&space, 12 + seed, seed);
            for kind in all_samplers() {
                for trial in [0, 1, 17, 40] {
                    let what = format!("{kind:?} seed {seed} trial {trial}");
                    let params = kind.sample(&space, &history, trial, seed).unwrap().unwrap();
                    assert_valid(&space, &params, &what);
                    seen_proj += usize::from(lookup(&params, "proj_lr").is_some());
                }
            }
        }
        // The condition on an integer value was exercised.
        assert!(seen_proj > 0);
    }

    #[test]
    fn extreme_ranges_and_unchecked_spaces_do_not_panic() {
        let param = |key: &str, dist: Dist| Param {
            key: key.into(),
            dist,
            when: Vec::new(),
            line: 0,
        };
        let space = SearchSpace::new(vec![
            param(
                "wide",
                Dist::Uniform {
                    low: -1e308,
                    high: 1e308,
                },
            ),
            param(
                "tiny",
                Dist::LogUniform {
                    low: 1e-300,
                    high: 1e300,
                },
            ),
            param(
                "all",
                Dist::Int {
                    low: i64::MIN,
                    high: i64::MAX,
                },
            ),
            param(
                "big",
                Dist::IntLog {
                    low: 1,
                    high: i64::MAX,
                },
            ),
            param("one", Dist::Int { low: 4, high: 4 }),
            param(
                "point",
                Dist::Uniform {
                    low: 0.5,
                    high: 0.5,
                },
            ),
        ])
        .unwrap();
        let history = made_up_history(&space, 20, 3);
        for kind in all_samplers() {
            for trial in 0..5 {
                let params = kind.sample(&space, &history, trial, 1).unwrap().unwrap();
                assert_valid(&space, &params, &format!("{kind:?} trial {trial}"));
            }
        }
        // A space read with serde skips `SearchSpace::new`'s checks; sampling still checks.
        let unchecked: SearchSpace = serde_json::from_str(
            r#"{"params":[{"key":"a","dist":{"int":{"low":5,"high":1}},"when":[],"line":0}]}"#,
        )
        .unwrap();
        for kind in all_samplers() {
            let e = kind.sample(&unchecked, &[], 0, 0).unwrap_err();
            assert!(e.to_string().contains("space \"a\": int = [5, 1]"), "{e}");
        }
    }

    #[test]
    fn log_scales_are_uniform_in_ln() {
        let space = space(
            r#"
"lr" = { loguniform = [1e-4, 1.0] }
"hidden" = { int_log = [1, 1024] }
"#,
        );
        let n = 4000;
        let (mut small_lr, mut small_hidden) = (0, 0);
        for t in 0..n {
            let p = SamplerKind::Random
                .sample(&space, &[], t, 9)
                .unwrap()
                .unwrap();
            small_lr += usize::from(p[0].1.as_float().unwrap() < 1e-2);
            small_hidden += usize::from(p[1].1.as_integer().unwrap() <= 32);
        }
        // Half of ln[1e-4, 1] lies below 1e-2 (a linear scale: 1 %).
        let f = small_lr as f64 / n as f64;
        assert!((0.46..0.54).contains(&f), "loguniform: {f} below 1e-2");
        // (ln 32.5 − ln 0.5) / (ln 1024.5 − ln 0.5) = 0.547 (a linear scale: 3 %).
        let f = small_hidden as f64 / n as f64;
        assert!((0.50..0.59).contains(&f), "int_log: {f} at most 32");
    }

    #[test]
    fn grid_of_two_by_three_choices() {
        let space = space(
            r#"
"a" = { choice = [1, 2] }
"b" = { choice = ["x", "y", "z"] }
"#,
        );
        let grid = SamplerKind::Grid { points: 3 };
        let orders: Vec<Vec<Params>> = (0..4)
            .map(|seed| {
                let combos: Vec<Params> = (0..6)
                    .map(|t| grid.sample(&space, &[], t, seed).unwrap().unwrap())
                    .collect();
                for (i, c) in combos.iter().enumerate() {
                    assert_valid(&space, c, "grid");
                    assert!(!combos[..i].contains(c), "seed {seed}: {c:?} twice");
                }
                assert_eq!(grid.sample(&space, &[], 6, seed).unwrap(), None);
                assert_eq!(grid.sample(&space, &[], 1000, seed).unwrap(), None);
                combos
            })
            .collect();
        assert!(
            orders.iter().any(|o| *o != orders[0]),
            "the seed does not change the order"
        );
    }

    #[test]
    fn grid_leaves_out_inactive_keys() {
        let space = space(
            r#"
"cell" = { choice = ["lstm", "gru"] }
"proj" = { int = [0, 8], when = { "cell" = "lstm" } }
"#,
        );
        let grid = SamplerKind::Grid { points: 3 };
        let mut combos: Vec<Params> = (0..)
            .map_while(|t| grid.sample(&space, &[], t, 4).unwrap())
            .collect();
        combos.sort_by_key(|c| format!("{c:?}"));
        let p = |cell: &str, proj: Option<i64>| -> Params {
            let mut v = vec![("cell".to_string(), Value::from(cell))];
            v.extend(proj.map(|x| ("proj".to_string(), Value::from(x))));
            v
        };
        let mut want = vec![
            p("gru", None),
            p("lstm", Some(0)),
            p("lstm", Some(4)),
            p("lstm", Some(8)),
        ];
        want.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(combos, want);
    }

    #[test]
    fn grid_values_per_distribution() {
        let ints =
            |v: Vec<Value>| -> Vec<i64> { v.iter().map(|x| x.as_integer().unwrap()).collect() };
        let floats =
            |v: Vec<Value>| -> Vec<f64> { v.iter().map(|x| x.as_float().unwrap()).collect() };
        assert_eq!(
            ints(grid_values(&Dist::Int { low: 1, high: 3 }, 5)),
            [1, 2, 3]
        );
        assert_eq!(
            ints(grid_values(&Dist::Int { low: 0, high: 100 }, 5)),
            [0, 25, 50, 75, 100]
        );
        assert_eq!(
            ints(grid_values(&Dist::Int { low: -3, high: 4 }, 3)),
            [-3, 1, 4]
        );
        assert_eq!(ints(grid_values(&Dist::Int { low: 0, high: 10 }, 1)), [5]);
        assert_eq!(
            ints(grid_values(&Dist::IntLog { low: 1, high: 100 }, 3)),
            [1, 10, 100]
        );
        // Rounded and deduplicated: 1, 1.33, 1.78, 2.37, 3.16, 4.22, 5.62, 7.50, 10.
        assert_eq!(
            ints(grid_values(&Dist::IntLog { low: 1, high: 10 }, 9)),
            [1, 2, 3, 4, 6, 7, 10]
        );
        assert_eq!(
            ints(grid_values(&Dist::IntLog { low: 1, high: 16 }, 5)),
            [1, 2, 4, 8, 16]
        );
        assert_eq!(
            floats(grid_values(
                &Dist::Uniform {
                    low: 0.0,
                    high: 0.5
                },
                3
            )),
            [0.0, 0.25, 0.5]
        );
        assert_eq!(
            floats(grid_values(
                &Dist::Uniform {
                    low: 0.0,
                    high: 0.5
                },
                1
            )),
            [0.25]
        );
        let lr = floats(grid_values(
            &Dist::LogUniform {
                low: 1e-4,
                high: 1e-2,
            },
            3,
        ));
        assert_eq!((lr[0], lr[2]), (1e-4, 1e-2));
        assert!((lr[1] / 1e-3 - 1.0).abs() < 1e-12, "{lr:?}");
        let mid = floats(grid_values(
            &Dist::LogUniform {
                low: 1e-4,
                high: 1e-2,
            },
            1,
        ));
        assert!((mid[0] / 1e-3 - 1.0).abs() < 1e-12, "{mid:?}");
        assert_eq!(
            floats(grid_values(
                &Dist::Uniform {
                    low: 1.0,
                    high: 1.0
                },
                4
            )),
            [1.0]
        );
    }

    #[test]
    fn oversize_grids_and_bad_settings_are_errors() {
        // 10⁷ combinations of unconditional keys.
        let text: String = (0..7)
            .map(|i| format!("\"k{i}\" = {{ uniform = [0, 1] }}\n"))
            .collect();
        let big = space(&text);
        let e = SamplerKind::Grid { points: 10 }
            .sample(&big, &[], 0, 0)
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("1,000,000"), "{e}");
        // 1 + 32⁴ = 1,048,577 combinations, all but one behind a condition.
        let text = r#"
"a" = { choice = [1, 2] }
"b" = { uniform = [0, 1], when = { "a" = 1 } }
"c" = { uniform = [0, 1], when = { "a" = 1 } }
"d" = { uniform = [0, 1], when = { "a" = 1 } }
"e" = { uniform = [0, 1], when = { "a" = 1 } }
"#;
        let e = SamplerKind::Grid { points: 32 }
            .sample(&space(text), &[], 0, 0)
            .unwrap_err();
        assert!(e.to_string().contains("1,000,000"), "{e}");
        // 1 + 31⁴ = 923,522 is allowed.
        let last = SamplerKind::Grid { points: 31 }.sample(&space(text), &[], 923_521, 0);
        assert!(last.unwrap().is_some());
        let small = space(ALL_KINDS);
        assert!(
            SamplerKind::Grid { points: 0 }
                .sample(&small, &[], 0, 0)
                .is_err()
        );
        let no_candidates = SamplerKind::Tpe {
            startup_trials: 0,
            candidates: 0,
            multivariate: true,
        };
        assert!(no_candidates.sample(&small, &[], 0, 0).is_err());
    }

    #[test]
    fn split_ranks_rung_first_then_score() {
        let obs = |rung: usize, score: f64| Observation {
            params: Params::new(),
            rung,
            score,
        };
        // 20 observations: 2 below. The rung-1 trial wins despite its score; NaN never wins.
        let mut history: Vec<Observation> = (0..20).map(|i| obs(0, i as f64)).collect();
        history[7] = obs(1, 100.0);
        history[0] = obs(0, f64::NAN);
        let rows: Vec<usize> = (0..20).collect();
        let (below, above) = split(&history, &rows);
        assert_eq!(below, [1, 7]);
        assert_eq!(above.len(), 18);
        assert!(above.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            (n_below(1), n_below(10), n_below(11), n_below(1000)),
            (1, 1, 2, 25)
        );
        let w = observation_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-15 && (w[4] - 1.0).abs() < 1e-15 && w[29] == 1.0);
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
        assert_eq!(observation_weights(26)[0], 1.0 / 26.0);
    }

    #[test]
    fn neighbour_bandwidths_follow_optuna() {
        // Centres 1/8, 7/8 and the prior 1/2 on [0, 1]: gaps 1/8 | 3/8 | 3/8 | 1/8.
        // Ends take their inner gap (3/8); the prior's own σ is the width.
        assert_eq!(neighbour_sigmas(&[0.875, 0.125], 0.0, 1.0), [0.375, 0.375]);
        // Centres 1/4, 3/8 and the prior 1/2: the smallest, 1/4, takes its inner gap 1/8, not
        // the 1/4 to the end of the range.
        assert_eq!(neighbour_sigmas(&[0.25, 0.375], 0.0, 1.0), [0.125, 0.125]);
        let Kernels::Num { sigma, .. } = Kernels::num(&[0.875, 0.125], 0.0, 1.0, None) else {
            panic!()
        };
        assert_eq!(sigma, [0.375, 0.375, 1.0]);
        // Clip from below: width / min(100, n + 2).
        let Kernels::Num { sigma, .. } = Kernels::num(&[0.5, 0.5, 0.5], 0.0, 1.0, None) else {
            panic!()
        };
        assert_eq!(sigma, [0.2, 0.2, 0.2, 1.0]);
        // Multivariate: 0.2 · n^(−1/(d+4)) · width.
        let Kernels::Num { sigma, .. } = Kernels::num(&[0.1; 16], 0.0, 2.0, Some(4)) else {
            panic!()
        };
        assert!((sigma[0] - 0.2 * 16f64.powf(-1.0 / 8.0) * 2.0).abs() < 1e-15);
    }

    #[test]
    fn normal_tails_are_accurate() {
        // Reference values: Python's math.erfc.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.5, 4.069_520_174_449_59e-4),
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (-1.0, 1.842_700_792_949_715),
        ] {
            let got = erfc(x);
            assert!(
                (got / want - 1.0).abs() < 1e-12,
                "erfc({x}) = {got}, want {want}"
            );
        }
        // ln Φ(−40) = −800 − ln 40 − ln √(2π) + ln(1 − 1/1600 + 3/1600² − ...).
        let series = 1.0 - 1.0 / 1600.0 + 3.0 / 1600f64.powi(2) - 15.0 / 1600f64.powi(3);
        let want = -800.0 - 40f64.ln() - LN_SQRT_2PI + series.ln();
        assert!((log_ndtr(-40.0) - want).abs() < 1e-9, "{}", log_ndtr(-40.0));
        // A bin 60 σ out still has a finite ln mass, equal from both sides.
        let far = log_gauss_mass(60.0, 61.0);
        assert!(far.is_finite() && far < -1800.0, "{far}");
        assert!((far - log_gauss_mass(-61.0, -60.0)).abs() < 1e-9);
        // The middle: Φ(1) − Φ(−1).
        assert!((log_gauss_mass(-1.0, 1.0).exp() - 0.682_689_492_137_085_9).abs() < 1e-14);
    }

    #[test]
    fn serde_defaults() {
        let k: SamplerKind = toml::from_str("kind = \"tpe\"").unwrap();
        assert_eq!(k, SamplerKind::default());
        let g: SamplerKind = toml::from_str("kind = \"grid\"").unwrap();
        assert_eq!(g, SamplerKind::Grid { points: 3 });
        assert!(toml::from_str::<SamplerKind>("kind = \"tpe\"\ncandidate = 3").is_err());
    }

    /// `(ln lr − ln 3e-3)² + (h − 200)²/1e4`: best at lr = 3e-3, h = 200.
    fn toy_score(p: &Params) -> f64 {
        let lr = lookup(p, "lr").and_then(Value::as_float).unwrap();
        let h = lookup(p, "h").and_then(Value::as_integer).unwrap() as f64;
        (lr.ln() - 3e-3f64.ln()).powi(2) + (h - 200.0).powi(2) / 1e4
    }

    /// The best score of a 60-trial sequential study.
    fn best_of_study(kind: &SamplerKind, space: &SearchSpace, seed: u64) -> f64 {
        let mut history: Vec<Observation> = Vec::new();
        for trial in 0..60 {
            let params = kind.sample(space, &history, trial, seed).unwrap().unwrap();
            let score = toy_score(&params);
            history.push(Observation {
                params,
                rung: 0,
                score,
            });
        }
        history
            .iter()
            .map(|o| o.score)
            .fold(f64::INFINITY, f64::min)
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    }

    #[test]
    fn tpe_beats_random_on_a_toy_objective() {
        let space = space(
            r#"
"lr" = { loguniform = [1e-5, 1e-1] }
"h" = { int = [16, 512] }
"#,
        );
        let seeds = 0..15;
        let med = |kind: SamplerKind| {
            median(
                seeds
                    .clone()
                    .map(|s| best_of_study(&kind, &space, s))
                    .collect(),
            )
        };
        let random = med(SamplerKind::Random);
        let joint = med(tpe(true));
        let per_key = med(tpe(false));
        eprintln!(
            "median best of 60 trials over 15 seeds: random {random:.5}, TPE multivariate \
             {joint:.5}, TPE per key {per_key:.5}"
        );
        assert!(
            joint < random,
            "multivariate TPE {joint} vs random {random}"
        );
        assert!(per_key < random, "per-key TPE {per_key} vs random {random}");
    }
}
