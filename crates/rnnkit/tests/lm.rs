//! The whole training step of a language model (embedding → LSTM → decoder → cross-entropy,
//! clipping, SGD) against a committed PyTorch run: `tools/gen_lm_golden.py` (seed 20241124)
//! trained the same tiny model on the same stream for 10 truncated-BPTT steps and stored the
//! initial weights, the 10 losses and the final weights in `tests/fixtures/lm/tiny_lm.safetensors`.

use ndarray::ArrayD;
use rand::SeedableRng;
use rnnkit::data::stream::{ChunkLength, batchify, chunks};
use rnnkit::io::TensorFile;
use rnnkit::models::LanguageModel;
use rnnkit::module::{self, Grads, Module};
use rnnkit::{CellKind, RnnConfig, RnnState};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn meta(file: &TensorFile, key: &str) -> f64 {
    file.metadata[key].parse().unwrap()
}

#[test]
fn first_ten_losses_match_pytorch() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/lm/tiny_lm.safetensors");
    let file = TensorFile::read(&path).unwrap();
    let (vocab, embed, hidden, layers) = (
        meta(&file, "vocab") as usize,
        meta(&file, "embed") as usize,
        meta(&file, "hidden") as usize,
        meta(&file, "layers") as usize,
    );
    let (batch, bptt, lr, clip, steps) = (
        meta(&file, "batch") as usize,
        meta(&file, "bptt") as usize,
        meta(&file, "lr") as f32,
        meta(&file, "clip") as f32,
        meta(&file, "steps") as usize,
    );
    let weights: BTreeMap<String, ArrayD<f32>> = file
        .f32
        .iter()
        .filter(|(k, _)| !k.starts_with("final.") && k.as_str() != "losses")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cfg = RnnConfig::new(CellKind::Lstm, embed, hidden).num_layers(layers);
    let mut lm = LanguageModel::from_named(cfg.clone(), &weights).unwrap();
    assert_eq!(lm.vocab_size(), vocab);

    let stream: Vec<u32> = file.i64["stream"].iter().map(|&t| t as u32).collect();
    let data = batchify(&stream, batch).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let plan = chunks(data.nrows(), ChunkLength::Fixed(bptt), &mut rng).unwrap();
    let mut state = RnnState::zeros(&cfg, batch);
    let mut grads = Grads::zeros_like(&lm);
    let mut losses = Vec::new();
    for chunk in plan.iter().take(steps) {
        let x = data.slice(ndarray::s![chunk.start..chunk.start + chunk.len, ..]);
        let y = data.slice(ndarray::s![
            chunk.start + 1..chunk.start + chunk.len + 1,
            ..
        ]);
        grads.fill_zero();
        let out = lm
            .train_chunk(x, y, &mut state, &mut grads, &mut rng)
            .unwrap();
        losses.push(out.loss);
        // clip_grad_norm_(parameters, clip), then p -= lr · grad.
        let mut slices = grads.slices_mut();
        let norm = slices
            .iter()
            .flat_map(|s| s.iter())
            .map(|&g| (g as f64) * (g as f64))
            .sum::<f64>()
            .sqrt() as f32;
        let coef = clip / (norm + 1e-6);
        if coef < 1.0 {
            slices
                .iter_mut()
                .for_each(|s| s.iter_mut().for_each(|g| *g *= coef));
        }
        module::for_each_with_grad(&mut lm, &grads, |_, p, g| {
            p.iter_mut().zip(g).for_each(|(p, g)| *p -= lr * g)
        });
    }
    let want: Vec<f32> = file.f32["losses"].iter().copied().collect();
    for (i, (g, w)) in losses.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() < 2e-5,
            "step {i}: loss {g} vs PyTorch {w}\nall: {losses:?}\nwant: {want:?}"
        );
    }
    for (name, got) in module::named_tensors(&lm, "") {
        let want = &file.f32[&format!("final.{name}")];
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| f64::from((a - b).abs()))
            .fold(0.0, rnnkit::verify::worse);
        assert!(
            diff <= 1e-4 * f64::from(scale.max(1.0)),
            "{name}: max diff {diff} (scale {scale})"
        );
    }
}

#[test]
fn tied_weights_get_both_gradients() {
    use rand::SeedableRng;
    // Untied with decoder.weight == embedding.weight computes the same function; tied, the one
    // matrix must receive the sum of the two gradients.
    let cfg = RnnConfig::new(CellKind::Gru, 6, 6);
    let mut untied = LanguageModel::new(9, cfg.clone(), 3).unwrap();
    let mut named = module::named_tensors(&untied, "");
    named.insert("decoder.weight".into(), named["embedding.weight"].clone());
    module::load_named(&mut untied, "", &named).unwrap();
    let mut tied = untied.clone();
    tied.tie().unwrap();
    let x = ndarray::Array2::from_shape_fn((5, 2), |(t, b)| ((t * 3 + b * 5) % 9) as u32);
    let y = ndarray::Array2::from_shape_fn((5, 2), |(t, b)| ((t * 7 + b) % 9) as u32);
    let run = |lm: &LanguageModel| {
        let mut state = RnnState::zeros(&cfg, 2);
        let mut grads = Grads::zeros_like(lm);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let out = lm
            .train_chunk(x.view(), y.view(), &mut state, &mut grads, &mut rng)
            .unwrap();
        (out.loss, grads)
    };
    let (loss_u, gu) = run(&untied);
    let (loss_t, gt) = run(&tied);
    assert_eq!(loss_u, loss_t);
    // The tied model's grads have no decoder.weight of their own (named_tensors gives the
    // alias, a copy of the embedding's gradient).
    let (gu, gt) = (
        module::named_tensors(&gu.0, ""),
        module::named_tensors(&gt.0, ""),
    );
    let sum = &gu["embedding.weight"] + &gu["decoder.weight"];
    let diff = (&gt["embedding.weight"] - &sum)
        .iter()
        .map(|v| f64::from(v.abs()))
        .fold(0.0, rnnkit::verify::worse);
    assert!(diff < 1e-6, "tied gradient differs from the sum by {diff}");
    for (name, g) in &gu {
        if name.starts_with("rnn.") || name == "decoder.bias" {
            assert_eq!(&gt[name], g, "{name}");
        }
    }
    // Saved like PyTorch's tied state_dict: both names, same values.
    let named = module::named_tensors(&tied, "");
    assert_eq!(named["decoder.weight"], named["embedding.weight"]);
    assert!(!tied.param_names().contains(&"decoder.weight".to_string()));
}

#[test]
fn gradients_with_every_dropout_match_finite_differences() {
    // Locked input/output masks, then per-element ones (PyTorch's nn.Dropout).
    for elementwise in [false, true] {
        check_dropout_gradients(elementwise);
    }
}

fn check_dropout_gradients(elementwise: bool) {
    use rand::SeedableRng;
    use rnnkit::models::LmDropout;
    let cfg = RnnConfig::new(CellKind::Gru, 4, 5)
        .num_layers(2)
        .dropout(0.25);
    let mut lm = LanguageModel::new(7, cfg.clone(), 11).unwrap();
    lm.set_dropout(LmDropout {
        words: 0.2,
        input: 0.3,
        output: 0.3,
        weight_hh: 0.25,
        elementwise,
    })
    .unwrap();
    let x = ndarray::Array2::from_shape_fn((3, 2), |(t, b)| ((t * 2 + b * 3) % 7) as u32);
    let y = ndarray::Array2::from_shape_fn((3, 2), |(t, b)| ((t + 4 * b + 1) % 7) as u32);
    // Reseeding makes every evaluation draw the same masks, so the loss is a fixed function.
    let eval = |lm: &LanguageModel| {
        let mut state = RnnState::zeros(&cfg, 2);
        let mut grads = Grads::zeros_like(lm);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let out = lm
            .train_chunk(x.view(), y.view(), &mut state, &mut grads, &mut rng)
            .unwrap();
        (out.loss as f64, grads)
    };
    let (_, grads) = eval(&lm);
    let names = lm.param_names();
    let analytic: Vec<Vec<f32>> = grads.slices().into_iter().map(|s| s.to_vec()).collect();
    let eps = 1e-2f32;
    let mut worst = 0.0f64;
    // Sets element `i` of parameter `name`, returning the old value.
    let set = |m: &mut LanguageModel, name: &str, i: usize, v: f32| {
        let mut old = f32::NAN;
        m.visit_params_mut("", &mut |n, t| {
            if n == name {
                old = std::mem::replace(&mut t.data[i], v);
            }
        });
        old
    };
    for (k, name) in names.iter().enumerate() {
        for idx in [0usize, 3, 7, 12] {
            let mut probe = lm.clone();
            let i = idx % analytic[k].len();
            let base = set(&mut probe, name, i, f32::NAN);
            set(&mut probe, name, i, base + eps);
            let (lp, _) = eval(&probe);
            set(&mut probe, name, i, base - eps);
            let (lm_, _) = eval(&probe);
            let numeric = (lp - lm_) / (2.0 * eps as f64);
            let a = analytic[k][i] as f64;
            let err = (numeric - a).abs() / (1e-3 + a.abs().max(numeric.abs()));
            worst = rnnkit::verify::worse(worst, err);
            assert!(
                err < 0.05,
                "{name}[{i}] (elementwise {elementwise}): analytic {a:e}, numeric {numeric:e}"
            );
        }
    }
    assert!(worst < 0.05);
}

#[test]
fn sizes_too_large_to_allocate_are_config_errors_not_aborts() {
    // A word-level vocabulary with a hidden size a typo made huge: the decoder alone would be
    // 133 GB. Each is refused before anything is allocated.
    let cases = [
        (33_278, RnnConfig::new(CellKind::Lstm, 200, 1_000_000)),
        (33_278, RnnConfig::new(CellKind::Lstm, 1 << 40, 8)),
        (1 << 33, RnnConfig::new(CellKind::Lstm, 8, 16)),
        (usize::MAX, RnnConfig::new(CellKind::Gru, 8, 16)),
    ];
    for (vocab, rnn) in cases {
        let err = LanguageModel::new(vocab, rnn.clone(), 0).unwrap_err();
        assert!(err.to_string().contains("too large"), "{rnn:?}: {err}");
    }
}

#[test]
fn weights_in_any_memory_layout_load_and_train() {
    let rnn = RnnConfig::new(CellKind::Lstm, 4, 6);
    let lm = LanguageModel::new(9, rnn.clone(), 0).unwrap();
    let mut named = module::named_tensors(&lm, "");
    // The same [9, 6] decoder weight stored column-major, as a transposed array arrives.
    let w = named["decoder.weight"].clone();
    let column_major = w.t().as_standard_layout().into_owned().reversed_axes();
    assert!(!column_major.is_standard_layout() && column_major == w);
    named.insert("decoder.weight".into(), column_major);
    let mut loaded = LanguageModel::from_named(rnn.clone(), &named).unwrap();
    assert_eq!(loaded.decoder_weight(), lm.decoder_weight());
    assert!(loaded.decoder_weight().is_standard_layout());

    // A training step and the optimizer's view of the parameters as flat slices.
    let x = ndarray::Array2::from_shape_fn((3, 2), |(t, b)| ((t + b) % 9) as u32);
    let y = ndarray::Array2::from_shape_fn((3, 2), |(t, b)| ((t + 2 * b + 1) % 9) as u32);
    let mut state = RnnState::zeros(&rnn, 2);
    let mut grads = Grads::zeros_like(&loaded);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    loaded
        .train_chunk(x.view(), y.view(), &mut state, &mut grads, &mut rng)
        .unwrap();
    let n: usize = module::params_with_grads(&mut loaded, &grads)
        .iter()
        .map(|(_, p, _)| p.len())
        .sum();
    assert_eq!(n, module::num_params(&lm));
}
