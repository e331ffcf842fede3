//! The random sampler's draws (see the module's table for each distribution).

use super::lerp;
use crate::tune::space::{Dist, Params, SearchSpace};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use toml::Value;

/// One random draw of every active key, in space order.
pub(super) fn random_params(space: &SearchSpace, rng: &mut ChaCha8Rng) -> Params {
    let mut out = Params::new();
    for p in space.params() {
        if space.is_active(p, &out) {
            out.push((p.key.clone(), random_value(&p.dist, rng)));
        }
    }
    out
}

/// One draw of `dist` (already validated: ranges not empty, log bounds positive).
pub(super) fn random_value(dist: &Dist, rng: &mut ChaCha8Rng) -> Value {
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
pub(super) fn int_log_bounds(low: i64, high: i64) -> (f64, f64) {
    ((low as f64 - 0.5).ln(), (high as f64 + 0.5).ln())
}

/// `round(exp(x))` in `[low, high]`.
pub(super) fn round_exp(x: f64, low: i64, high: i64) -> i64 {
    (x.exp().round() as i64).clamp(low, high)
}
