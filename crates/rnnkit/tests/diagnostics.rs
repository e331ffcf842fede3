//! Gradient-through-time diagnostics (`rnnkit::diagnostics`) against central finite
//! differences of the f64 reference, and gate statistics on models whose gates are known.

use ndarray::{Array2, Array3, Axis};
use rnnkit::data::series::WindowBatch;
use rnnkit::diagnostics::{GradientProfile, gate_stats, gradient_through_time, state_gradients};
use rnnkit::models::Forecaster;
use rnnkit::reference::{self, RefInputs, RefModel};
use rnnkit::verify::worse;
use rnnkit::{CellKind, Error, Init, LayerParams, Rnn, RnnConfig, RnnParams, WeightInit};

const T: usize = 8;
const B: usize = 3;
const I: usize = 2;
const H: usize = 5;

/// A reference model with f32-representable values and the engine stack over the same values.
fn models(cfg: &RnnConfig, seed: u64) -> (RefModel, Rnn) {
    let mut m = RefModel::random(cfg.clone(), seed, 0.6);
    for layer in &mut m.layers {
        for (_, t) in layer.tensors_mut() {
            t.iter_mut().for_each(|v| *v = f64::from(*v as f32));
        }
    }
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let mat = |v: &[f64], shape: (usize, usize)| Array2::from_shape_vec(shape, f32s(v)).unwrap();
    let d = cfg.num_directions();
    let layers = m
        .layers
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let z = LayerParams::zeros(cfg, k / d);
            LayerParams {
                weight_ih: mat(&l.w_ih, z.weight_ih.dim()),
                weight_hh: mat(&l.w_hh, z.weight_hh.dim()),
                bias_ih: l.b_ih.as_ref().map(|b| f32s(b).into()),
                bias_hh: l.b_hh.as_ref().map(|b| f32s(b).into()),
                weight_hr: l.w_hr.as_ref().map(|w| mat(w, z.weight_hr.unwrap().dim())),
            }
        })
        .collect();
    let rnn = Rnn::from_params(cfg.clone(), RnnParams { layers }).unwrap();
    (m, rnn)
}

fn inputs(steps: usize, batch: usize, feat: usize) -> Array3<f32> {
    Array3::from_shape_fn((steps, batch, feat), |(t, b, f)| {
        ((t * 13 + b * 5 + f * 3) as f32 * 0.71).sin()
    })
}

/// Reference run of steps `from..T` of `x` from the given states; returns `(h_n, c_n, output)`.
fn ref_run(
    m: &RefModel,
    x: &Array3<f32>,
    from: usize,
    to: usize,
    h0: Option<Vec<f64>>,
    c0: Option<Vec<f64>>,
) -> reference::RefOutputs {
    let (_, b, _) = x.dim();
    let seg: Vec<f64> = x
        .slice(ndarray::s![from..to, .., ..])
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let mut inp = RefInputs::new(to - from, b, seg);
    inp.h0 = h0;
    inp.c0 = c0;
    reference::forward(m, &inp)
}

/// `L(state after step T−1−d)` in f64, for the state given as flat `[L, B, P]` / `[L, B, H]`.
fn loss_from_state(
    m: &RefModel,
    x: &Array3<f32>,
    d: usize,
    h: &[f64],
    c: Option<&[f64]>,
    d_last: &Array2<f32>,
) -> f64 {
    let (steps, batch, _) = x.dim();
    let p = m.config.h_out();
    let layers = m.config.num_layers;
    let top: Vec<f64> = if d == 0 {
        h[(layers - 1) * batch * p..].to_vec()
    } else {
        let out = ref_run(
            m,
            x,
            steps - d,
            steps,
            Some(h.to_vec()),
            c.map(<[f64]>::to_vec),
        );
        out.output[(d - 1) * batch * p..].to_vec()
    };
    top.iter()
        .zip(d_last.iter())
        .map(|(y, g)| y * f64::from(*g))
        .sum()
}

/// Central differences (f64) of the last-step loss with respect to the state at distance `d`.
fn fd_grads(
    m: &RefModel,
    x: &Array3<f32>,
    d: usize,
    d_last: &Array2<f32>,
) -> (Vec<f64>, Option<Vec<f64>>) {
    let (steps, batch, _) = x.dim();
    let cfg = &m.config;
    let (nh, nc) = (
        cfg.num_layers * batch * cfg.h_out(),
        cfg.num_layers * batch * cfg.hidden_size,
    );
    let lstm = cfg.cell == CellKind::Lstm;
    let (h, c) = if d == steps {
        (vec![0.0; nh], lstm.then(|| vec![0.0; nc]))
    } else {
        let out = ref_run(m, x, 0, steps - d, None, None);
        (out.h_n, out.c_n)
    };
    let eps = 1e-6;
    let diff = |hp: &[f64], cp: Option<&[f64]>, hm: &[f64], cm: Option<&[f64]>| {
        (loss_from_state(m, x, d, hp, cp, d_last) - loss_from_state(m, x, d, hm, cm, d_last))
            / (2.0 * eps)
    };
    let gh = (0..nh)
        .map(|k| {
            let (mut hp, mut hm) = (h.clone(), h.clone());
            hp[k] += eps;
            hm[k] -= eps;
            diff(&hp, c.as_deref(), &hm, c.as_deref())
        })
        .collect();
    let gc = c.as_ref().map(|c| {
        (0..nc)
            .map(|k| {
                let (mut cp, mut cm) = (c.clone(), c.clone());
                cp[k] += eps;
                cm[k] -= eps;
                diff(&h, Some(&cp), &h, Some(&cm))
            })
            .collect()
    });
    (gh, gc)
}

fn worst(got: &Array3<f32>, want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, worse);
    (err, scale)
}

fn d_last_for(p: usize) -> Array2<f32> {
    Array2::from_shape_fn((B, p), |(b, k)| ((b * 7 + k) as f32 * 1.3).cos())
}

#[test]
fn state_gradients_match_finite_differences_of_the_reference() {
    let cases = [
        RnnConfig::new(CellKind::RnnTanh, I, H),
        RnnConfig::new(CellKind::RnnTanh, I, H).num_layers(2),
        RnnConfig::new(CellKind::Lstm, I, H),
        RnnConfig::new(CellKind::Lstm, I, H).num_layers(2),
        RnnConfig::new(CellKind::Lstm, I, H).proj_size(3),
        RnnConfig::new(CellKind::Gru, I, H),
        RnnConfig::new(CellKind::Gru, I, H).num_layers(2),
    ];
    let x = inputs(T, B, I);
    let distances: Vec<usize> = (0..=T).collect();
    for (seed, cfg) in cases.iter().enumerate() {
        let (m, rnn) = models(cfg, 100 + seed as u64);
        let d_last = d_last_for(cfg.h_out());
        let grads = state_gradients(&rnn, x.view(), d_last.view(), &distances).unwrap();
        assert_eq!(grads.len(), distances.len());
        let profile = gradient_through_time(&rnn, x.view(), d_last.view(), &distances).unwrap();
        for (g, &d) in grads.iter().zip(&distances) {
            assert_eq!(g.distance, d);
            let (fh, fc) = fd_grads(&m, &x, d, &d_last);
            let (err, scale) = worst(&g.h, &fh);
            assert!(
                err <= 1e-4 + 1e-3 * scale,
                "{cfg:?} d = {d}: worst |dh − fd| {err:.3e} (scale {scale:.3e})"
            );
            assert_eq!(g.c.is_some(), fc.is_some());
            if let (Some(gc), Some(fc)) = (&g.c, &fc) {
                let (err, scale) = worst(gc, fc);
                assert!(
                    err <= 1e-4 + 1e-3 * scale,
                    "{cfg:?} d = {d}: worst |dc − fd| {err:.3e} (scale {scale:.3e})"
                );
            }
            // The profile's norm is the batch mean of per-example norms of the same gradient.
            let i = d; // distances are 0..=T in order
            let p = cfg.h_out();
            let per_example: f64 = (0..B)
                .map(|b| {
                    (0..cfg.num_layers)
                        .flat_map(|l| (0..p).map(move |k| (l * B + b) * p + k))
                        .map(|k| fh[k] * fh[k])
                        .sum::<f64>()
                        .sqrt()
                })
                .sum::<f64>()
                / B as f64;
            assert!(
                (profile.norm[i] - per_example).abs() <= 1e-4 + 1e-3 * per_example,
                "{cfg:?} d = {d}: norm {} vs fd {per_example}",
                profile.norm[i]
            );
            // Minkowski and the triangle inequality bound the stacked norm by the layers'.
            let squares: f64 = profile.per_layer.iter().map(|v| v[i].powi(2)).sum();
            let sum: f64 = profile.per_layer.iter().map(|v| v[i]).sum();
            assert!(squares.sqrt() <= profile.norm[i] * (1.0 + 1e-9) + 1e-12);
            assert!(profile.norm[i] <= sum * (1.0 + 1e-9) + 1e-12);
        }
        assert_eq!(profile.per_layer.len(), cfg.num_layers);
        assert_eq!(profile.cell_norm.is_some(), cfg.cell == CellKind::Lstm);
    }
}

#[test]
fn distance_zero_is_d_last_on_the_top_layer() {
    let cfg = RnnConfig::new(CellKind::Gru, I, H).num_layers(2);
    let (_, rnn) = models(&cfg, 3);
    let x = inputs(T, B, I);
    let d_last = d_last_for(H);
    let g = state_gradients(&rnn, x.view(), d_last.view(), &[0]).unwrap();
    assert_eq!(g[0].h.index_axis(Axis(0), 1), d_last);
    assert!(g[0].h.index_axis(Axis(0), 0).iter().all(|&v| v == 0.0));
    let p = gradient_through_time(&rnn, x.view(), d_last.view(), &[0]).unwrap();
    assert_eq!(p.per_layer[0], vec![0.0]);
    assert_eq!(p.per_layer[1], p.norm);
}

#[test]
fn small_tanh_weights_make_the_gradient_vanish() {
    let init = Init {
        input: WeightInit::Uniform { a: 0.1 },
        recurrent: WeightInit::Uniform { a: 0.1 },
        ..Init::default()
    };
    let rnn = Rnn::new(RnnConfig::new(CellKind::RnnTanh, I, 8), &init, 11).unwrap();
    let x = inputs(40, B, I);
    let d_last = Array2::ones((B, 8));
    let p =
        gradient_through_time(&rnn, x.view(), d_last.view(), &[0, 1, 2, 5, 10, 20, 30]).unwrap();
    let rate = p.decay_rate().unwrap();
    assert!(rate < 1.0, "decay rate {rate}");
    assert!(p.norm[5] < 0.1 * p.norm[0], "norms {:?}", p.norm);
    // Monotone: a contraction at every step.
    assert!(p.norm.windows(2).all(|w| w[1] < w[0]), "norms {:?}", p.norm);
}

/// An LSTM whose forget gates are pinned open (bias_ih forget block = +10) in every layer.
fn saturated_forget_lstm(layers: usize) -> Rnn {
    let cfg = RnnConfig::new(CellKind::Lstm, I, H).num_layers(layers);
    let mut rnn = Rnn::new(cfg, &Init::default(), 9).unwrap();
    for lp in &mut rnn.params_mut().layers {
        let b = lp.bias_ih.as_mut().unwrap();
        b.slice_mut(ndarray::s![H..2 * H]).fill(10.0);
    }
    rnn
}

#[test]
fn an_open_forget_gate_carries_the_cell_gradient_far() {
    let rnn = saturated_forget_lstm(1);
    let x = inputs(40, B, I);
    let d_last = Array2::ones((B, H));
    let p = gradient_through_time(&rnn, x.view(), d_last.view(), &[1, 5, 10, 20, 30]).unwrap();
    let cell = p.cell_norm.as_ref().unwrap();
    assert!(cell[3] > 0.5 * cell[0], "cell norms {cell:?}");
    assert!(p.cell_decay_rate().unwrap() > 0.95);
}

#[test]
fn gate_stats_are_fractions_and_see_a_saturated_forget_gate() {
    let x = inputs(T, B, I);
    for cfg in [
        RnnConfig::new(CellKind::Lstm, I, H).num_layers(2),
        RnnConfig::new(CellKind::Gru, I, H).num_layers(2),
    ] {
        let rnn = Rnn::new(cfg.clone(), &Init::default(), 4).unwrap();
        let stats = gate_stats(&rnn, x.view()).unwrap();
        assert_eq!(stats.len(), 2);
        let names: Vec<&str> = stats[1].gates.iter().map(|g| g.gate.as_str()).collect();
        let want: &[&str] = if cfg.cell == CellKind::Lstm {
            &["input", "forget", "output"]
        } else {
            &["reset", "update"]
        };
        assert_eq!(names, want);
        for (l, s) in stats.iter().enumerate() {
            assert_eq!(s.layer, l);
            for g in &s.gates {
                assert!((0.0..=1.0).contains(&g.mean), "{g:?}");
                assert!((0.0..=1.0).contains(&g.frac_high), "{g:?}");
                assert!((0.0..=1.0).contains(&g.frac_low), "{g:?}");
                assert!(g.frac_high + g.frac_low <= 1.0, "{g:?}");
                // PyTorch's default init keeps gates away from saturation.
                assert!(g.mean > 0.2 && g.mean < 0.8, "{g:?}");
            }
        }
    }
    let rnn = Rnn::new(RnnConfig::new(CellKind::RnnTanh, I, H), &Init::default(), 4).unwrap();
    assert!(gate_stats(&rnn, x.view()).unwrap().is_empty());

    let stats = gate_stats(&saturated_forget_lstm(2), x.view()).unwrap();
    for s in &stats {
        let f = s.gate("forget").unwrap();
        assert!(f.mean > 0.99, "{f:?}");
        assert!(f.frac_high > 0.999 && f.frac_low == 0.0, "{f:?}");
        let i = s.gate("input").unwrap();
        assert!(i.frac_high < 0.5, "{i:?}");
    }
}

#[test]
fn forecaster_gradient_profile_uses_the_mse_gradient_through_the_head() {
    let model = Forecaster::new(RnnConfig::new(CellKind::Lstm, I, H), 2, 1, 5).unwrap();
    let batch = WindowBatch {
        inputs: inputs(T, B, I),
        targets: Array2::from_shape_fn((B, 2), |(b, k)| (b + k) as f32 * 0.5),
    };
    let p = model.gradient_profile(&batch, &[0, 3, T]).unwrap();
    // By hand: ŷ = head(y_{T−1}), dŷ = 2 (ŷ − y) / (B·H·K), d_last = dŷ W.
    let pred = model
        .predict(batch.inputs.view(), None)
        .unwrap()
        .into_shape_with_order((B, 2))
        .unwrap();
    let dpred = (&pred - &batch.targets) * (2.0 / (B * 2) as f32);
    let d_last = dpred.dot(model.head().weight());
    let want =
        gradient_through_time(model.rnn(), batch.inputs.view(), d_last.view(), &[0, 3, T]).unwrap();
    for (a, b) in p.norm.iter().zip(&want.norm) {
        assert!((a - b).abs() <= 1e-6 * b.max(1e-3), "{p:?} vs {want:?}");
    }
    let bad = WindowBatch {
        inputs: batch.inputs.clone(),
        targets: Array2::zeros((B, 3)),
    };
    assert!(matches!(
        model.gradient_profile(&bad, &[0]),
        Err(Error::Shape(_))
    ));
}

#[test]
fn dropout_is_off_and_bad_arguments_are_errors() {
    let x = inputs(T, B, I);
    let d_last = d_last_for(H);
    let cfg = RnnConfig::new(CellKind::Gru, I, H).num_layers(2);
    let (_, rnn) = models(&cfg, 8);
    let mut with_dropout = rnn.clone();
    with_dropout.set_dropout(0.5).unwrap();
    let a = gradient_through_time(&rnn, x.view(), d_last.view(), &[1, 4, T]).unwrap();
    let b = gradient_through_time(&with_dropout, x.view(), d_last.view(), &[1, 4, T]).unwrap();
    assert_eq!(a, b);

    let json = a.to_json();
    let back: GradientProfile = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);

    assert!(matches!(
        gradient_through_time(&rnn, x.view(), d_last.view(), &[T + 1]),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        gradient_through_time(&rnn, x.view(), Array2::zeros((B, H + 1)).view(), &[1]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        gradient_through_time(&rnn, inputs(T, B, I + 1).view(), d_last.view(), &[1]),
        Err(Error::Shape(_))
    ));
    let bi = Rnn::new(cfg.bidirectional(true), &Init::default(), 1).unwrap();
    assert!(matches!(
        gradient_through_time(&bi, x.view(), Array2::zeros((B, H)).view(), &[1]),
        Err(Error::Config(_))
    ));
    assert!(matches!(gate_stats(&bi, x.view()), Err(Error::Config(_))));
}
