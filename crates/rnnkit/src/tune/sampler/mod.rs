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

mod grid;
mod normal;
mod random;
#[cfg(test)]
mod tests;
mod tpe;

use super::space::{Params, SearchSpace};
use crate::error::{Error, Result};
use grid::grid_params;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use random::random_params;
use serde::{Deserialize, Serialize};
use toml::Value;
use tpe::Tpe;

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

/// For people: `random`, `grid (3 points per continuous key)`, `TPE (10 random start-up
/// trials, 24 candidates, multivariate)`.
impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SamplerKind::Random => write!(f, "random"),
            SamplerKind::Grid { points } => {
                write!(f, "grid ({points} points per continuous key)")
            }
            SamplerKind::Tpe {
                startup_trials,
                candidates,
                multivariate,
            } => write!(
                f,
                "TPE ({startup_trials} random start-up trials, {candidates} candidates, {})",
                if multivariate {
                    "multivariate"
                } else {
                    "independent"
                }
            ),
        }
    }
}

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
