//! The samplers' tests.

use super::grid::*;
use super::normal::*;
use super::tpe::*;
use super::*;
use crate::tune::space::{Dist, Param};
use rand::Rng;

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
    let ints = |v: Vec<Value>| -> Vec<i64> { v.iter().map(|x| x.as_integer().unwrap()).collect() };
    let floats = |v: Vec<Value>| -> Vec<f64> { v.iter().map(|x| x.as_float().unwrap()).collect() };
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

/// The start-up draws of every sampler that draws at random, pooled over many study seeds (as
/// the studies of `tools/tune_compare.py` draw them: a few trials per seed), follow the
/// log-uniform law of an `int_log` key: a Kolmogorov–Smirnov test on `ln x` against
/// `P(X ≤ k) = (ln(k + ½) − ln(low − ½)) / (ln(high + ½) − ln(low − ½))`, and no seed's first
/// trials lean as a group beyond what chance allows.
#[test]
fn int_log_start_up_draws_pass_a_kolmogorov_smirnov_test_across_seeds() {
    let space = space(
        r#"
"hidden" = { int_log = [32, 512] }
"lr" = { loguniform = [1e-4, 1e-1] }
"#,
    );
    let (low, high) = (32i64, 512i64);
    let (a, b) = ((low as f64 - 0.5).ln(), (high as f64 + 0.5).ln());
    let cdf = |k: i64| ((k as f64 + 0.5).ln() - a) / (b - a);
    for kind in [SamplerKind::Random, tpe(true), tpe(false)] {
        let (seeds, per_seed) = (600u64, 8usize);
        let mut draws = Vec::new();
        let mut seed_means = Vec::new();
        for seed in 0..seeds {
            let mut sum = 0.0;
            for t in 0..per_seed as u64 {
                let p = kind.sample(&space, &[], t, seed).unwrap().unwrap();
                let h = p[0].1.as_integer().unwrap();
                draws.push(h);
                sum += ((h as f64).ln() - a) / (b - a);
            }
            seed_means.push(sum / per_seed as f64);
        }
        draws.sort_unstable();
        let n = draws.len() as f64;
        let mut worst = 0.0f64;
        for (i, &k) in draws.iter().enumerate() {
            // At the last draw of each value the empirical CDF is (i + 1) / n.
            if draws.get(i + 1) != Some(&k) {
                worst = worst.max(((i + 1) as f64 / n - cdf(k)).abs());
            }
        }
        // The 0.1 % critical value of the KS statistic is 1.95 / √n (conservative for a
        // discrete law).
        assert!(
            worst < 1.95 / n.sqrt(),
            "{kind:?}: KS distance {worst} over {n} draws"
        );
        // Per seed, the mean position of 8 draws in [0, 1] has sd ≈ √(1/12/8) ≈ 0.102: the
        // seeds' means must spread like that, not more (correlated draws within a seed).
        let mean = seed_means.iter().sum::<f64>() / seeds as f64;
        let var = seed_means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / seeds as f64;
        let sd = var.sqrt();
        assert!((0.085..0.12).contains(&sd), "{kind:?}: per-seed sd {sd}");
    }
}
