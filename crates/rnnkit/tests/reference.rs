//! The fast path against the f64 reference implementation (`rnnkit::reference`, itself checked
//! by finite differences): every cell, layers, directions, lengths, initial states, projection,
//! no-bias, dropout, thread counts that split the batch, and the edge cases.

use ndarray::{Array3, ArrayD};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rnnkit::reference::{self, RefInputs, RefLayer, RefModel, RefUpstream};
use rnnkit::verify::worse;
use rnnkit::{CellKind, Init, Rnn, RnnConfig, RnnParams, RnnState, Upstream};

/// Scale-relative tolerance for f32 against f64: `max|diff| / max|want|`.
const TOL: f64 = 2e-5;
/// For saturated cells (pre-activations near ±50) f32 itself loses the small gradients that
/// survive: `1 − tanh²` of a value rounded to ±1 cancels. There the check is that values stay
/// finite and agree at the 1e-3 level of the tensor's scale (floored at 1e-4).
const SATURATED_TOL: f64 = 1e-3;

struct Case {
    config: RnnConfig,
    steps: usize,
    batch: usize,
    lengths: Option<Vec<usize>>,
    with_state: bool,
    /// Multiplies inputs and weights, to reach saturation.
    scale: f32,
}

fn to_ref(config: &RnnConfig, p: &RnnParams) -> RefModel {
    let v = |a: &[f32]| a.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    RefModel {
        config: config.clone(),
        layers: p
            .layers
            .iter()
            .map(|l| RefLayer {
                w_ih: v(l.weight_ih.as_slice().unwrap()),
                w_hh: v(l.weight_hh.as_slice().unwrap()),
                b_ih: l.bias_ih.as_ref().map(|b| v(b.as_slice().unwrap())),
                b_hh: l.bias_hh.as_ref().map(|b| v(b.as_slice().unwrap())),
                w_hr: l.weight_hr.as_ref().map(|w| v(w.as_slice().unwrap())),
            })
            .collect(),
    }
}

fn f64s<'a>(a: impl IntoIterator<Item = &'a f32>) -> Vec<f64> {
    a.into_iter().map(|&x| x as f64).collect()
}

fn check(name: &str, got: &[f64], want: &[f64], saturated: bool, failures: &mut Vec<String>) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let max_abs = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, worse);
    let (tol, floor) = if saturated {
        (SATURATED_TOL, 1e-4)
    } else {
        (TOL, 1e-6)
    };
    let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(floor);
    let nan = got.iter().any(|v| !v.is_finite());
    if nan || max_abs / scale > tol {
        failures.push(format!(
            "{name}: max|diff| {max_abs:.3e}, scale {scale:.3e}, finite {}",
            !nan
        ));
    }
}

fn run_case(case: &Case, threads: usize, seed: u64) -> Vec<String> {
    let cfg = &case.config;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut params = Init::default().params(cfg, seed).unwrap();
    params
        .tensors_mut()
        .flatten()
        .for_each(|v| *v *= case.scale);
    let rnn = Rnn::from_params(cfg.clone(), params).unwrap();
    let (t, b) = (case.steps, case.batch);
    let ld = cfg.num_layers * cfg.num_directions();
    let mut rand3 = |shape: (usize, usize, usize), s: f32| {
        Array3::from_shape_simple_fn(shape, || rng.random_range(-1.0f32..1.0) * s)
    };
    let x = rand3((t, b, cfg.input_size), case.scale);
    let state0 = case.with_state.then(|| RnnState {
        h: rand3((ld, b, cfg.h_out()), 1.0),
        c: cfg
            .cell
            .has_cell_state()
            .then(|| rand3((ld, b, cfg.hidden_size), 1.0)),
    });
    let dy = rand3((t, b, cfg.output_size()), 1.0);
    let dh_n = rand3((ld, b, cfg.h_out()), 1.0);
    let dc_n = rand3((ld, b, cfg.hidden_size), 1.0);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut drop_rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let (out, cache) = pool
        .install(|| {
            rnn.forward_train(
                x.view(),
                state0.as_ref(),
                case.lengths.as_deref(),
                &mut drop_rng,
            )
        })
        .unwrap();
    let upstream = Upstream {
        grad_output: dy.view(),
        grad_h_n: Some(dh_n.view()),
        grad_c_n: cfg.cell.has_cell_state().then(|| dc_n.view()),
    };
    let mut grads = RnnParams::zeros(cfg);
    let dx = pool
        .install(|| rnn.backward(&cache, &upstream, &mut grads))
        .unwrap();

    let model = to_ref(cfg, rnn.params());
    let inputs = RefInputs {
        t,
        b,
        input: f64s(&x),
        lengths: case.lengths.clone(),
        h0: state0.as_ref().map(|s| f64s(&s.h)),
        c0: state0.as_ref().and_then(|s| s.c.as_ref().map(f64s)),
        dropout_masks: rnn.dropout_masks(&cache).iter().map(f64s).collect(),
    };
    let want = reference::forward(&model, &inputs);
    let up = RefUpstream {
        grad_output: f64s(&dy),
        grad_h_n: f64s(&dh_n),
        grad_c_n: cfg.cell.has_cell_state().then(|| f64s(&dc_n)),
    };
    let wg = reference::backward(&model, &inputs, &up);

    let mut failures = Vec::new();
    let sat = case.scale > 1.0;
    check(
        "output",
        &f64s(&out.output),
        &want.output,
        sat,
        &mut failures,
    );
    check("h_n", &f64s(&out.state.h), &want.h_n, sat, &mut failures);
    if let (Some(c), Some(wc)) = (&out.state.c, &want.c_n) {
        check("c_n", &f64s(c), wc, sat, &mut failures);
    }
    check(
        "grad_input",
        &f64s(&dx.input),
        &wg.input,
        sat,
        &mut failures,
    );
    check("grad_h0", &f64s(&dx.h0), &wg.h0, sat, &mut failures);
    if let (Some(c), Some(wc)) = (&dx.c0, &wg.c0) {
        check("grad_c0", &f64s(c), wc, sat, &mut failures);
    }
    for (k, (g, w)) in grads.layers.iter().zip(&wg.layers).enumerate() {
        let fast = to_ref(
            cfg,
            &RnnParams {
                layers: vec![g.clone()],
            },
        );
        for ((name, a), (_, b)) in fast.layers[0].tensors().into_iter().zip(w.tensors()) {
            check(&format!("grad.{name}[{k}]"), a, b, sat, &mut failures);
        }
    }
    failures
}

/// Fails with every mismatch listed, worst differences per tensor included.
fn assert_no_mismatch(failed: &[String]) {
    assert!(
        failed.is_empty(),
        "{} mismatches:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

fn grid() -> Vec<Case> {
    let mut cases = Vec::new();
    for cell in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::RnnTanh,
        CellKind::RnnRelu,
    ] {
        for layers in [1, 2] {
            for bi in [false, true] {
                for lengths in [None, Some(vec![3, 6, 1, 6, 4, 2, 5, 6, 3])] {
                    for with_state in [false, true] {
                        cases.push(Case {
                            config: RnnConfig::new(cell, 5, 7)
                                .num_layers(layers)
                                .bidirectional(bi),
                            steps: 6,
                            batch: 9,
                            lengths: lengths.clone(),
                            with_state,
                            scale: 1.0,
                        });
                    }
                }
            }
        }
    }
    for (layers, bi) in [(1, false), (2, true)] {
        cases.push(Case {
            config: RnnConfig::new(CellKind::Lstm, 4, 6)
                .num_layers(layers)
                .bidirectional(bi)
                .proj_size(3),
            steps: 5,
            batch: 9,
            lengths: Some(vec![5, 2, 4, 1, 5, 3, 3, 2, 4]),
            with_state: true,
            scale: 1.0,
        });
    }
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
        cases.push(Case {
            config: RnnConfig::new(cell, 3, 4)
                .num_layers(2)
                .bidirectional(true)
                .bias(false),
            steps: 4,
            batch: 8,
            lengths: None,
            with_state: true,
            scale: 1.0,
        });
        cases.push(Case {
            config: RnnConfig::new(cell, 4, 5).num_layers(3).dropout(0.4),
            steps: 5,
            batch: 8,
            lengths: Some(vec![5, 1, 2, 5, 4, 3, 5, 2]),
            with_state: false,
            scale: 1.0,
        });
    }
    cases
}

#[test]
fn fast_path_matches_reference_on_the_grid() {
    let mut failed = Vec::new();
    for (i, case) in grid().iter().enumerate() {
        for threads in [1, 2, 3] {
            let f = run_case(case, threads, 100 + i as u64);
            if !f.is_empty() {
                failed.push(format!(
                    "{:?} T={} B={} lengths={:?} state={} threads={threads}:\n  {}",
                    case.config,
                    case.steps,
                    case.batch,
                    case.lengths,
                    case.with_state,
                    f.join("\n  ")
                ));
            }
        }
    }
    assert_no_mismatch(&failed);
}

#[test]
fn edge_cases_match_reference() {
    let mut cases = Vec::new();
    for cell in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::RnnTanh,
        CellKind::RnnRelu,
    ] {
        let base = |i, h| RnnConfig::new(cell, i, h).num_layers(2).bidirectional(true);
        let c = |config, steps, batch, lengths, scale| Case {
            config,
            steps,
            batch,
            lengths,
            with_state: true,
            scale,
        };
        cases.push(c(base(3, 4), 1, 3, None, 1.0)); // T = 1
        cases.push(c(base(3, 4), 5, 1, Some(vec![3]), 1.0)); // B = 1
        cases.push(c(base(3, 1), 4, 3, None, 1.0)); // hidden 1
        cases.push(c(base(1, 4), 4, 3, None, 1.0)); // input 1
        cases.push(c(base(3, 4), 4, 5, Some(vec![1; 5]), 1.0)); // all lengths 1
        cases.push(c(base(3, 4), 4, 6, Some(vec![4, 2, 3, 1, 4, 2]), 40.0)); // saturation
    }
    let mut failed = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let f = run_case(case, 2, 7 + i as u64);
        if !f.is_empty() {
            failed.push(format!(
                "{:?} T={} B={}:\n  {}",
                case.config,
                case.steps,
                case.batch,
                f.join("\n  ")
            ));
        }
    }
    assert_no_mismatch(&failed);
}

#[test]
fn extreme_preactivations_stay_finite() {
    for cell in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::RnnTanh,
        CellKind::RnnRelu,
    ] {
        let cfg = RnnConfig::new(cell, 2, 3).num_layers(2);
        let rnn = Rnn::new(cfg.clone(), &Init::default(), 3).unwrap();
        // Inputs of ±50 through weights of ±1/√3 push pre-activations past ±50.
        let x = Array3::from_shape_fn(
            (6, 4, 2),
            |(t, b, i)| if (t + b + i) % 2 == 0 { 50.0 } else { -50.0 },
        );
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (out, cache) = rnn.forward_train(x.view(), None, None, &mut rng).unwrap();
        let dy = Array3::ones(out.output.dim());
        let mut grads = RnnParams::zeros(&cfg);
        let dx = rnn
            .backward(&cache, &Upstream::output_only(dy.view()), &mut grads)
            .unwrap();
        assert!(out.output.iter().all(|v| v.is_finite()), "{cell}: output");
        assert!(dx.input.iter().all(|v| v.is_finite()), "{cell}: grad input");
        assert!(
            grads.tensors().flatten().all(|v| v.is_finite()),
            "{cell}: weight grads"
        );
    }
}

#[test]
fn inference_and_streaming_equal_training_forward() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnRelu] {
        let cfg = RnnConfig::new(cell, 3, 5)
            .num_layers(2)
            .proj_size(if cell == CellKind::Lstm { 2 } else { 0 });
        let rnn = Rnn::new(cfg.clone(), &Init::default(), 11).unwrap();
        let x = Array3::from_shape_fn((7, 2, 3), |(t, b, i)| {
            ((t * 7 + b * 3 + i) as f32 * 0.37).sin()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (train, _) = rnn.forward_train(x.view(), None, None, &mut rng).unwrap();
        let infer = rnn.forward(x.view(), None, None).unwrap();
        assert_eq!(
            train.output, infer.output,
            "{cell}: inference differs from training forward"
        );
        assert_eq!(train.state, infer.state);
        let mut state = RnnState::zeros(&cfg, 2);
        for t in 0..7 {
            let y = rnn
                .step(x.index_axis(ndarray::Axis(0), t), &mut state)
                .unwrap();
            let want = infer.output.index_axis(ndarray::Axis(0), t);
            let diff = (&y - &want)
                .iter()
                .map(|v| f64::from(v.abs()))
                .fold(0.0, worse);
            assert!(diff < 1e-6, "{cell}: step {t} differs by {diff}");
        }
        assert!((&state.h - &infer.state.h).iter().all(|v| v.abs() < 1e-6));
    }
}

#[test]
fn backward_accumulates_into_gradient_buffers() {
    let cfg = RnnConfig::new(CellKind::Gru, 3, 4);
    let rnn = Rnn::new(cfg.clone(), &Init::default(), 5).unwrap();
    let x = Array3::from_shape_fn((4, 2, 3), |(t, b, i)| (t + 2 * b + 3 * i) as f32 * 0.1);
    let dy = Array3::ones((4, 2, 4));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (_, cache) = rnn.forward_train(x.view(), None, None, &mut rng).unwrap();
    let mut once = RnnParams::zeros(&cfg);
    rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut once)
        .unwrap();
    let mut twice = RnnParams::zeros(&cfg);
    for _ in 0..2 {
        rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut twice)
            .unwrap();
    }
    for (a, b) in once.tensors().zip(twice.tensors()) {
        for (x, y) in a.iter().zip(b) {
            assert!((2.0 * x - y).abs() <= 1e-6 * x.abs().max(1.0));
        }
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 4);
    let rnn = Rnn::new(cfg.clone(), &Init::default(), 5).unwrap();
    let x = Array3::<f32>::zeros((4, 2, 3));
    let msg = |r: rnnkit::Result<rnnkit::RnnOutput>| r.unwrap_err().to_string();
    assert!(msg(rnn.forward(Array3::zeros((4, 2, 5)).view(), None, None)).contains("input_size"));
    assert!(msg(rnn.forward(x.view(), None, Some(&[4, 0]))).contains("outside 1..=4"));
    assert!(msg(rnn.forward(x.view(), None, Some(&[4, 5]))).contains("outside 1..=4"));
    assert!(msg(rnn.forward(x.view(), None, Some(&[4]))).contains("1 lengths"));
    let bad_state = RnnState {
        h: Array3::zeros((1, 3, 4)),
        c: Some(Array3::zeros((1, 3, 4))),
    };
    assert!(msg(rnn.forward(x.view(), Some(&bad_state), None)).contains("initial state h"));
    let no_c = RnnState {
        h: Array3::zeros((1, 2, 4)),
        c: None,
    };
    assert!(msg(rnn.forward(x.view(), Some(&no_c), None)).contains("needs c"));
    assert!(
        RnnConfig::new(CellKind::Gru, 3, 4)
            .proj_size(2)
            .validate()
            .is_err()
    );
    assert!(
        RnnConfig::new(CellKind::Lstm, 3, 4)
            .proj_size(4)
            .validate()
            .is_err()
    );
    let _ = ArrayD::<f32>::zeros(vec![1]);
}

#[test]
fn streaming_works_for_the_smallest_sizes() {
    for (h, proj) in [(1, 0), (2, 1), (3, 0)] {
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
            let proj = if cell == CellKind::Lstm { proj } else { 0 };
            let cfg = RnnConfig::new(cell, 1, h).num_layers(2).proj_size(proj);
            let rnn = Rnn::new(cfg.clone(), &Init::default(), 2).unwrap();
            let x = Array3::from_shape_fn((4, 1, 1), |(t, _, _)| t as f32 * 0.3 - 0.5);
            let whole = rnn.forward(x.view(), None, None).unwrap();
            let mut state = RnnState::zeros(&cfg, 1);
            for t in 0..4 {
                let y = rnn
                    .step(x.index_axis(ndarray::Axis(0), t), &mut state)
                    .unwrap();
                let want = whole.output.index_axis(ndarray::Axis(0), t);
                assert!(
                    (&y - &want).iter().all(|v| v.abs() < 1e-6),
                    "{cell} h={h} proj={proj}"
                );
            }
        }
    }
}

#[test]
fn misuse_is_reported_not_panicked() {
    let a = Rnn::new(RnnConfig::new(CellKind::Lstm, 3, 4), &Init::default(), 1).unwrap();
    let mut b = Rnn::new(RnnConfig::new(CellKind::Lstm, 3, 5), &Init::default(), 1).unwrap();
    let x = Array3::<f32>::zeros((2, 1, 3));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (out, cache) = a.forward_train(x.view(), None, None, &mut rng).unwrap();
    let dy = Array3::<f32>::zeros(out.output.dim());
    let mut grads = RnnParams::zeros(b.config());
    let err = b
        .backward(&cache, &Upstream::output_only(dy.view()), &mut grads)
        .unwrap_err();
    assert!(err.to_string().contains("another shape"), "{err}");
    assert!(b.set_dropout(1.5).is_err());
    assert!(b.set_dropout(f32::NAN).is_err());
    b.params_mut().layers[0].weight_hh = ndarray::Array2::zeros((4, 4));
    let err = b.forward(x.view(), None, None).unwrap_err().to_string();
    assert!(
        err.contains("weight_hh_l0") && err.contains("[4, 4]"),
        "{err}"
    );
    let err = RnnConfig::new(CellKind::Lstm, 1 << 30, 1 << 30)
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
    // Sizes whose products overflow usize (from a case file's metadata, say) are errors too.
    for (i, h, layers) in [
        (usize::MAX, 8, 1),
        (4, usize::MAX / 2, 1),
        (4, 8, usize::MAX / 2 + 1),
    ] {
        let err = RnnConfig::new(CellKind::Gru, i, h)
            .num_layers(layers)
            .bidirectional(true)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }
}
