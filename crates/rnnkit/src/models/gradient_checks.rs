//! Finite-difference checks of every sequence model's gradients: each parameter and the input,
//! every cell kind, one and two directions, every pooling, padded batches.

use super::pooling::pool_forward;
use super::*;
use crate::config::{CellKind, RnnConfig};
use crate::module::{self, Grads, Module};
use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const EPS: f32 = 5e-3;

fn close(label: &str, an: f64, fd: f64) {
    let tol = 5e-3 + 5e-2 * an.abs().max(fd.abs());
    assert!(
        (an - fd).abs() <= tol,
        "{label}: analytic {an:.6e}, finite difference {fd:.6e}"
    );
}

/// Sets element `k` of parameter `name` to `value`; returns its old value.
fn set(m: &mut dyn Module, name: &str, k: usize, value: f32) -> f32 {
    let mut old = f32::NAN;
    m.visit_params_mut("", &mut |n, t| {
        if n == name {
            old = t.data[k];
            t.data[k] = value;
        }
    });
    old
}

/// Central differences of every parameter tensor (up to 10 elements each).
fn check_params<M: Module + Clone>(label: &str, m: &mut M, g: &Grads<M>, loss: impl Fn(&M) -> f64) {
    let grads = module::named_tensors(&g.0, "");
    for name in module::param_names(m, "") {
        let grad = &grads[&name];
        let len = grad.len();
        let stride = (len / 10).max(1);
        for k in (0..len).step_by(stride) {
            let orig = set(m, &name, k, f32::NAN);
            set(m, &name, k, orig + EPS);
            let up = loss(m);
            set(m, &name, k, orig - EPS);
            let down = loss(m);
            set(m, &name, k, orig);
            let fd = (up - down) / (2.0 * EPS as f64);
            let an = grad.iter().nth(k).copied().unwrap() as f64;
            close(&format!("{label} {name}[{k}]"), an, fd);
        }
    }
}

fn check_input(label: &str, x: &Array3<f32>, dx: &Array3<f32>, loss: impl Fn(&Array3<f32>) -> f64) {
    let mut x = x.clone();
    for (idx, &an) in dx.indexed_iter() {
        let orig = x[idx];
        x[idx] = orig + EPS;
        let up = loss(&x);
        x[idx] = orig - EPS;
        let down = loss(&x);
        x[idx] = orig;
        close(
            &format!("{label} input {idx:?}"),
            an as f64,
            (up - down) / (2.0 * EPS as f64),
        );
    }
}

fn features(t: usize, b: usize, i: usize, seed: u64) -> Array3<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    use rand::Rng;
    Array3::from_shape_fn((t, b, i), |_| rng.random_range(-1.0..1.0))
}

fn configs() -> Vec<(&'static str, RnnConfig)> {
    vec![
        (
            "lstm 2 layers",
            RnnConfig::new(CellKind::Lstm, 2, 3).num_layers(2),
        ),
        (
            "gru bidirectional",
            RnnConfig::new(CellKind::Gru, 2, 3).bidirectional(true),
        ),
    ]
}

const LENS: [usize; 3] = [4, 2, 3];

#[test]
fn classifier_gradients_every_pooling() {
    let x = features(4, 3, 2, 5);
    let labels = [1, 0, 2];
    for (name, cfg) in configs() {
        for pooling in [
            Pooling::Last,
            Pooling::Mean,
            Pooling::Max,
            Pooling::Attention,
        ] {
            let label = format!("classifier {name} {pooling:?}");
            let mut m =
                SequenceClassifier::new(InputSpec::Features, cfg.clone(), 3, pooling, 3).unwrap();
            let mut g = Grads::zeros_like(&m);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let (_, dx) = m
                .train_batch_with_input_grad(
                    SeqInput::Features(x.view()),
                    Some(&LENS),
                    &labels,
                    &mut g,
                    &mut rng,
                )
                .unwrap();
            let loss = |m: &SequenceClassifier, x: &Array3<f32>| {
                m.evaluate(SeqInput::Features(x.view()), Some(&LENS), &labels)
                    .unwrap()
                    .mean_nll()
            };
            check_params(&label, &mut m, &g, |m| loss(m, &x));
            check_input(&label, &x, &dx, |x| loss(&m, x));
            // Padded steps get no input gradient.
            for (b, &len) in LENS.iter().enumerate() {
                for t in len..4 {
                    assert!(dx.slice(ndarray::s![t, b, ..]).iter().all(|&v| v == 0.0));
                }
            }
        }
    }
}

#[test]
fn classifier_token_input_gradients() {
    let ids = Array2::<u32>::from_shape_fn((4, 3), |(t, b)| ((t * 3 + b) % 6) as u32);
    let tokens = InputSpec::Tokens {
        vocab: 6,
        padding_idx: Some(0),
    };
    let cfg = RnnConfig::new(CellKind::Lstm, 2, 3).bidirectional(true);
    let mut m = SequenceClassifier::new(tokens, cfg, 2, Pooling::Mean, 1).unwrap();
    let mut g = Grads::zeros_like(&m);
    let labels = [1, 0, 1];
    m.train_batch(
        SeqInput::Tokens(ids.view()),
        Some(&LENS),
        &labels,
        &mut g,
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap();
    assert!(
        module::named_tensors(&g.0, "")["embedding.weight"]
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .all(|&v| v == 0.0)
    );
    check_params("classifier tokens", &mut m, &g, |m| {
        m.evaluate(SeqInput::Tokens(ids.view()), Some(&LENS), &labels)
            .unwrap()
            .mean_nll()
    });
}

#[test]
fn tagger_gradients() {
    let x = features(4, 3, 2, 7);
    let tags = Array2::<usize>::from_shape_fn((4, 3), |(t, b)| (t + 2 * b) % 3);
    for (name, cfg) in configs() {
        let label = format!("tagger {name}");
        let mut m = SequenceTagger::new(InputSpec::Features, cfg, 3, 2).unwrap();
        let mut g = Grads::zeros_like(&m);
        let (out, dx) = m
            .train_batch_with_input_grad(
                SeqInput::Features(x.view()),
                Some(&LENS),
                tags.view(),
                &mut g,
                &mut ChaCha8Rng::seed_from_u64(0),
            )
            .unwrap();
        assert_eq!(out.count, 9);
        let loss = |m: &SequenceTagger, x: &Array3<f32>| {
            m.evaluate(SeqInput::Features(x.view()), Some(&LENS), tags.view())
                .unwrap()
                .mean_nll()
        };
        check_params(&label, &mut m, &g, |m| loss(m, &x));
        check_input(&label, &x, &dx, |x| loss(&m, x));
    }
}

#[test]
fn forecaster_gradients() {
    let x = features(4, 3, 2, 9);
    let y = features(3, 2, 2, 10); // [B, horizon, targets]
    for (name, cfg) in configs() {
        let label = format!("forecaster {name}");
        let mut m = Forecaster::new(cfg, 2, 2, 4).unwrap();
        let mut g = Grads::zeros_like(&m);
        let (out, dx) = m
            .train_batch_with_input_grad(
                x.view(),
                Some(&LENS),
                y.view(),
                &mut g,
                &mut ChaCha8Rng::seed_from_u64(0),
            )
            .unwrap();
        assert_eq!(out.count, 12);
        let loss = |m: &Forecaster, x: &Array3<f32>| {
            let o = m.evaluate(x.view(), Some(&LENS), y.view()).unwrap();
            o.sum / o.count as f64
        };
        check_params(&label, &mut m, &g, |m| loss(m, &x));
        check_input(&label, &x, &dx, |x| loss(&m, x));
        assert_eq!(
            m.predict(x.view(), Some(&LENS)).unwrap().shape(),
            &[3, 2, 2]
        );
    }
}

#[test]
fn padded_steps_change_nothing() {
    let x = features(4, 3, 2, 11);
    let mut x2 = x.clone();
    for (b, &len) in LENS.iter().enumerate() {
        for t in len..4 {
            x2.slice_mut(ndarray::s![t, b, ..]).fill(100.0);
        }
    }
    let labels = [0, 1, 1];
    for (_, cfg) in configs() {
        for pooling in [
            Pooling::Last,
            Pooling::Mean,
            Pooling::Max,
            Pooling::Attention,
        ] {
            let m =
                SequenceClassifier::new(InputSpec::Features, cfg.clone(), 2, pooling, 3).unwrap();
            let run = |x: &Array3<f32>| {
                let mut g = Grads::zeros_like(&m);
                m.train_batch(
                    SeqInput::Features(x.view()),
                    Some(&LENS),
                    &labels,
                    &mut g,
                    &mut ChaCha8Rng::seed_from_u64(0),
                )
                .unwrap();
                (
                    m.predict(SeqInput::Features(x.view()), Some(&LENS))
                        .unwrap(),
                    g,
                )
            };
            let ((p1, g1), (p2, g2)) = (run(&x), run(&x2));
            assert_eq!(p1, p2, "{pooling:?}");
            assert_eq!(
                module::named_tensors(&g1.0, ""),
                module::named_tensors(&g2.0, "")
            );
        }
        let t = SequenceTagger::new(InputSpec::Features, cfg.clone(), 2, 0).unwrap();
        let tags = Array2::<usize>::zeros((4, 3));
        let e1 = t
            .evaluate(SeqInput::Features(x.view()), Some(&LENS), tags.view())
            .unwrap();
        let e2 = t
            .evaluate(SeqInput::Features(x2.view()), Some(&LENS), tags.view())
            .unwrap();
        assert_eq!(e1, e2);
        let f = Forecaster::new(cfg, 2, 1, 0).unwrap();
        assert_eq!(
            f.predict(x.view(), Some(&LENS)).unwrap(),
            f.predict(x2.view(), Some(&LENS)).unwrap()
        );
    }
}

#[test]
fn bidirectional_last_is_h_n_of_each_direction() {
    let x = features(4, 3, 2, 12);
    let cfg = RnnConfig::new(CellKind::Gru, 2, 3).bidirectional(true);
    let m = SequenceClassifier::new(InputSpec::Features, cfg, 2, Pooling::Last, 0).unwrap();
    let out = m.rnn().forward(x.view(), None, Some(&LENS)).unwrap();
    let (pooled, _) = pool_forward(Pooling::Last, None, out.output.view(), &LENS, true).unwrap();
    for b in 0..3 {
        for k in 0..3 {
            assert_eq!(pooled[[b, k]], out.state.h[[0, b, k]]);
            assert_eq!(pooled[[b, 3 + k]], out.state.h[[1, b, k]]);
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let x = features(4, 3, 2, 1);
    let cfg = RnnConfig::new(CellKind::Lstm, 2, 3);
    let m = SequenceClassifier::new(InputSpec::Features, cfg.clone(), 2, Pooling::Max, 0).unwrap();
    let mut g = Grads::zeros_like(&m);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let fx = SeqInput::Features(x.view());
    assert!(m.train_batch(fx, None, &[0, 1], &mut g, &mut rng).is_err()); // labels
    assert!(
        m.train_batch(fx, Some(&[4, 0, 1]), &[0, 1, 1], &mut g, &mut rng)
            .is_err()
    );
    assert!(
        m.train_batch(fx, Some(&[5, 1, 1]), &[0, 1, 1], &mut g, &mut rng)
            .is_err()
    );
    assert!(
        m.train_batch(fx, Some(&[4, 1]), &[0, 1, 1], &mut g, &mut rng)
            .is_err()
    );
    assert!(
        m.train_batch(fx, None, &[0, 1, 2], &mut g, &mut rng)
            .is_err()
    ); // class 2 of 2
    let ids = Array2::<u32>::zeros((4, 3));
    assert!(m.predict(SeqInput::Tokens(ids.view()), None).is_err());
    let wide = features(4, 3, 5, 1);
    assert!(m.predict(SeqInput::Features(wide.view()), None).is_err());
    let empty = Array3::<f32>::zeros((0, 3, 2));
    assert!(m.predict(SeqInput::Features(empty.view()), None).is_err());
    let other =
        SequenceClassifier::new(InputSpec::Features, cfg.clone(), 3, Pooling::Max, 0).unwrap();
    let mut g3 = Grads::zeros_like(&other);
    assert!(
        m.train_batch(fx, None, &[0, 1, 1], &mut g3, &mut rng)
            .is_err()
    ); // grads shape

    let tok = SequenceTagger::new(
        InputSpec::Tokens {
            vocab: 3,
            padding_idx: None,
        },
        cfg.clone(),
        2,
        0,
    )
    .unwrap();
    assert!(tok.predict(fx, None).is_err());
    let bad_ids = Array2::<u32>::from_elem((4, 3), 7);
    assert!(tok.predict(SeqInput::Tokens(bad_ids.view()), None).is_err());
    let tags = Array2::<usize>::zeros((3, 3));
    assert!(
        tok.evaluate(SeqInput::Tokens(ids.view()), None, tags.view())
            .is_err()
    );

    let f = Forecaster::new(cfg.clone(), 2, 2, 0).unwrap();
    let mut gf = Grads::zeros_like(&f);
    let y = Array3::<f32>::zeros((3, 2, 1));
    assert!(
        f.train_batch(x.view(), None, y.view(), &mut gf, &mut rng)
            .is_err()
    );
    assert!(Forecaster::new(cfg.clone(), 0, 2, 0).is_err());
    assert!(SequenceClassifier::new(InputSpec::Features, cfg, 0, Pooling::Last, 0).is_err());
}
