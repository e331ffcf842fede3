//! The grid sampler: every combination over the conditional tree, in a seeded order.

use super::random::round_exp;
use super::{MAX_GRID, lerp};
use crate::error::{Error, Result};
use crate::tune::space::{Dist, Params, SearchSpace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use toml::Value;

/// Combination number `trial` of the grid, in the order shuffled by `seed`.
pub(super) fn grid_params(
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
pub(super) fn grid_count(
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
pub(super) fn grid_values(dist: &Dist, points: usize) -> Vec<Value> {
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
