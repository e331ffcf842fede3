//! Exported ONNX models run in tract (pure Rust) and agree with rnnkit: every cell kind ×
//! one or two directions × equal or variable lengths × zero or given initial state × LSTM
//! projection, each model kind, and step-by-step streaming with the state fed back.
//!
//! tract runs ONNX's recurrent operators only with a constant `sequence_lens`, so the
//! operator form is checked without `lengths` and variable lengths through the `Scan` form;
//! `tools/onnx_check.py` checks the operator form with lengths in onnxruntime. tract's `RNN`
//! operator also ignores `activations` (always tanh), so a ReLU RNN is checked here in the
//! `Scan` form only.

use ndarray::{Array2, Array3, ArrayD, IxDyn, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rnnkit::export::{OnnxOptions, Recurrence, ToOnnx};
use rnnkit::models::{
    Forecaster, InputSpec, LanguageModel, Pooling, SeqInput, SequenceClassifier, SequenceTagger,
};
use rnnkit::{CellKind, Init, Rnn, RnnConfig, RnnState};
use tract_onnx::prelude::*;

/// Runs `bytes` in tract on `inputs` (concrete shapes) and returns every output.
fn run(bytes: &[u8], inputs: Vec<Tensor>) -> Vec<ArrayD<f32>> {
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the model");
    for (i, t) in inputs.iter().enumerate() {
        let fact = InferenceFact::dt_shape(t.datum_type(), t.shape());
        model = model.with_input_fact(i, fact).expect("input fact");
    }
    let plan = model
        .into_optimized()
        .expect("tract optimizes the model")
        .into_runnable()
        .expect("runnable");
    let outs = plan
        .run(inputs.into_iter().map(|t| t.into_tvalue()).collect())
        .expect("tract runs the model");
    outs.iter()
        .map(|t| {
            t.to_plain_array_view::<f32>()
                .expect("f32 outputs")
                .to_owned()
                .into_dimensionality::<IxDyn>()
                .unwrap()
        })
        .collect()
}

fn tensor<D: ndarray::Dimension>(a: ndarray::Array<f32, D>) -> Tensor {
    Tensor::from(a.into_dyn())
}

fn lengths_tensor(lengths: &[usize]) -> Tensor {
    let v: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
    Tensor::from(ndarray::Array1::from(v).into_dyn())
}

fn random3(rng: &mut ChaCha8Rng, shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_fn(shape, |_| rng.random_range(-1.0..1.0))
}

/// Asserts `got` equals `want` within 1e-5 relative (1e-6 absolute near zero).
fn assert_close(got: &ArrayD<f32>, want: &ArrayD<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        let tol = 1e-5 * w.abs() + 1e-6;
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {i}: tract {g}, rnnkit {w} (diff {})",
            (g - w).abs()
        );
    }
}

/// The inputs after `input`: lengths (when exported with them), h0, c0 (LSTM).
fn state_inputs(state: &RnnState, lengths: Option<&[usize]>) -> Vec<Tensor> {
    let mut v = Vec::new();
    if let Some(l) = lengths {
        v.push(lengths_tensor(l));
    }
    v.push(tensor(state.h.clone()));
    if let Some(c) = &state.c {
        v.push(tensor(c.clone()));
    }
    v
}

fn random_state(rng: &mut ChaCha8Rng, cfg: &RnnConfig, batch: usize, given: bool) -> RnnState {
    let mut state = RnnState::zeros(cfg, batch);
    if given {
        state.h.mapv_inplace(|_| rng.random_range(-1.0..1.0));
        if let Some(c) = &mut state.c {
            c.mapv_inplace(|_| rng.random_range(-1.0..1.0));
        }
    }
    state
}

/// With `RNNKIT_ONNX_GRID=DIR`, writes the grid's models and, beside each, its inputs and
/// rnnkit's outputs, for `tools/onnx_check.py --grid DIR` to run in onnxruntime.
fn save_for_onnxruntime(
    name: &str,
    onnx: &rnnkit::export::OnnxModel,
    x: &Array3<f32>,
    lengths: Option<&[usize]>,
    state: &RnnState,
    want: &rnnkit::RnnOutput,
) {
    let Some(dir) = std::env::var_os("RNNKIT_ONNX_GRID") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    onnx.write(&dir.join(format!("{name}.onnx"))).unwrap();
    let mut file = rnnkit::io::TensorFile::default();
    file.f32.insert("input".into(), x.clone().into_dyn());
    file.f32.insert("h0".into(), state.h.clone().into_dyn());
    if let Some(c) = &state.c {
        file.f32.insert("c0".into(), c.clone().into_dyn());
    }
    if let Some(l) = lengths {
        let v: Vec<i64> = l.iter().map(|&n| n as i64).collect();
        file.i64
            .insert("lengths".into(), ndarray::Array1::from(v).into_dyn());
    }
    file.f32
        .insert("want.output".into(), want.output.clone().into_dyn());
    file.f32
        .insert("want.h_n".into(), want.state.h.clone().into_dyn());
    if let Some(c) = &want.state.c {
        file.f32.insert("want.c_n".into(), c.clone().into_dyn());
    }
    file.write(&dir.join(format!("{name}.safetensors")))
        .unwrap();
}

#[test]
fn the_stack_grid_runs_in_tract_as_in_rnnkit() {
    let (t, b, i) = (6, 3, 4);
    let mut cases = 0;
    let cells = [
        (CellKind::Lstm, 0),
        (CellKind::Lstm, 3),
        (CellKind::Gru, 0),
        (CellKind::RnnTanh, 0),
        (CellKind::RnnRelu, 0),
    ];
    for (seed, ((cell, proj), bidirectional, given)) in cells
        .iter()
        .flat_map(|c| [false, true].map(move |bi| (c, bi)))
        .flat_map(|(c, bi)| [false, true].map(move |g| (*c, bi, g)))
        .enumerate()
    {
        let cfg = RnnConfig::new(cell, i, 5)
            .num_layers(2)
            .proj_size(proj)
            .bidirectional(bidirectional);
        let rnn = Rnn::new(cfg.clone(), &Init::default(), seed as u64).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed as u64);
        let x = random3(&mut rng, (t, b, i));
        let state = random_state(&mut rng, &cfg, b, given);
        let label = format!("{cell} proj {proj} bidirectional {bidirectional} given state {given}");

        for (recurrence, lengths) in [
            (Recurrence::Operators, None),
            (Recurrence::Scan, None),
            (Recurrence::Scan, Some(vec![6, 2, 4])),
            (Recurrence::Operators, Some(vec![6, 2, 4])),
        ] {
            let options = OnnxOptions {
                recurrence,
                lengths: lengths.is_some(),
            };
            let onnx = rnn.to_onnx(&options).unwrap();
            let want = rnn
                .forward(x.view(), Some(&state), lengths.as_deref())
                .unwrap();
            let name = format!(
                "{cell}-proj{proj}-{}-{}-{recurrence:?}-{}",
                if bidirectional { "bi" } else { "uni" },
                if given { "state" } else { "zero" },
                if lengths.is_some() { "lengths" } else { "full" },
            );
            save_for_onnxruntime(&name, &onnx, &x, lengths.as_deref(), &state, &want);
            if recurrence == Recurrence::Operators
                && (lengths.is_some() || cell == CellKind::RnnRelu)
            {
                // tract takes only a constant `sequence_lens`, and its `RNN` ignores the
                // `activations` attribute (always tanh; tract-onnx 0.23,
                // onnx/src/ops/rec/rnn.rs): onnxruntime checks these (`--grid`).
                continue;
            }
            let bytes = onnx.to_bytes();
            let mut inputs = vec![tensor(x.clone())];
            inputs.extend(state_inputs(&state, lengths.as_deref()));
            let got = run(&bytes, inputs);
            let what = format!("{label}, {recurrence:?}, lengths {lengths:?}");
            assert_close(
                &got[0],
                &want.output.clone().into_dyn(),
                &format!("{what}: output"),
            );
            assert_close(
                &got[1],
                &want.state.h.clone().into_dyn(),
                &format!("{what}: h_n"),
            );
            if let Some(c) = &want.state.c {
                assert_close(&got[2], &c.clone().into_dyn(), &format!("{what}: c_n"));
            }
            cases += 1;
        }
    }
    // 5 cells × 2 directions × 2 states × 4 forms, less the operators with lengths (20) and
    // the ReLU RNN's operators without (4).
    assert_eq!(cases, 5 * 2 * 2 * 4 - 20 - 4);
}

fn ids(rng: &mut ChaCha8Rng, t: usize, b: usize, vocab: usize) -> Array2<u32> {
    Array2::from_shape_fn((t, b), |_| rng.random_range(0..vocab as u32))
}

fn ids_tensor(x: &Array2<u32>) -> Tensor {
    Tensor::from(x.mapv(i64::from).into_dyn())
}

#[test]
fn a_language_model_streams_step_by_step_as_over_the_whole_sequence() {
    for (cell, tied) in [(CellKind::Lstm, false), (CellKind::Gru, true)] {
        let (t, b, vocab) = (7, 2, 11);
        let mut lm =
            LanguageModel::new(vocab, RnnConfig::new(cell, 6, 6).num_layers(2), 3).unwrap();
        if tied {
            lm.tie().unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = ids(&mut rng, t, b, vocab);
        let want = lm.logits(x.view(), None).unwrap().into_dyn();
        let options = OnnxOptions {
            lengths: false,
            ..OnnxOptions::default()
        };
        let bytes = lm.to_onnx(&options).unwrap().to_bytes();

        // The whole sequence in one call.
        let state = RnnState::zeros(lm.rnn().config(), b);
        let mut inputs = vec![ids_tensor(&x)];
        inputs.extend(state_inputs(&state, None));
        let got = run(&bytes, inputs);
        assert_close(&got[0], &want, &format!("{cell} tied {tied}: logits"));

        // One step per call, the state fed back.
        let mut h = state.h.clone().into_dyn();
        let mut c = state.c.clone().map(|c| c.into_dyn());
        for step in 0..t {
            let mut inputs = vec![ids_tensor(&x.slice(s![step..step + 1, ..]).to_owned())];
            inputs.push(Tensor::from(h.clone()));
            if let Some(c) = &c {
                inputs.push(Tensor::from(c.clone()));
            }
            let out = run(&bytes, inputs);
            let want_step = want.slice(s![step..step + 1, .., ..]).to_owned().into_dyn();
            assert_close(&out[0], &want_step, &format!("{cell} step {step}"));
            h = out[1].clone();
            c = c.map(|_| out[2].clone());
        }
    }
}

#[test]
fn classifiers_with_every_pooling_run_in_tract_as_in_rnnkit() {
    let (t, b, vocab) = (5, 3, 9);
    let lengths = [5usize, 1, 3];
    for (k, pooling) in [
        Pooling::Last,
        Pooling::Mean,
        Pooling::Max,
        Pooling::Attention,
    ]
    .into_iter()
    .enumerate()
    {
        for bidirectional in [false, true] {
            let cfg = RnnConfig::new(CellKind::Lstm, 4, 5).bidirectional(bidirectional);
            let spec = InputSpec::Tokens {
                vocab,
                padding_idx: Some(0),
            };
            let clf = SequenceClassifier::new(spec, cfg.clone(), 4, pooling, k as u64).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
            let x = ids(&mut rng, t, b, vocab);
            let label = format!("{pooling:?} bidirectional {bidirectional}");
            let state = RnnState::zeros(&cfg, b);

            // Variable lengths through the Scan form.
            let want = clf
                .predict(SeqInput::Tokens(x.view()), Some(&lengths))
                .unwrap()
                .into_dyn();
            let options = OnnxOptions {
                recurrence: Recurrence::Scan,
                lengths: true,
            };
            let bytes = clf.to_onnx(&options).unwrap().to_bytes();
            let mut inputs = vec![ids_tensor(&x)];
            inputs.extend(state_inputs(&state, Some(&lengths)));
            assert_close(&run(&bytes, inputs)[0], &want, &format!("{label}, scan"));

            // Full lengths through the operators.
            let want = clf
                .predict(SeqInput::Tokens(x.view()), None)
                .unwrap()
                .into_dyn();
            let options = OnnxOptions {
                lengths: false,
                ..OnnxOptions::default()
            };
            let bytes = clf.to_onnx(&options).unwrap().to_bytes();
            let mut inputs = vec![ids_tensor(&x)];
            inputs.extend(state_inputs(&state, None));
            assert_close(
                &run(&bytes, inputs)[0],
                &want,
                &format!("{label}, operators"),
            );
        }
    }
}

#[test]
fn feature_models_run_in_tract_as_in_rnnkit() {
    let (t, b, i) = (6, 2, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = random3(&mut rng, (t, b, i));
    let lengths = [6usize, 4];
    let options = OnnxOptions {
        recurrence: Recurrence::Scan,
        lengths: true,
    };

    let cfg = RnnConfig::new(CellKind::Gru, i, 5).num_layers(2);
    let forecaster = Forecaster::new(cfg.clone(), 3, 2, 0).unwrap();
    let want = forecaster
        .predict(x.view(), Some(&lengths))
        .unwrap()
        .into_dyn();
    let mut inputs = vec![tensor(x.clone())];
    inputs.extend(state_inputs(&RnnState::zeros(&cfg, b), Some(&lengths)));
    let got = run(&forecaster.to_onnx(&options).unwrap().to_bytes(), inputs);
    assert_close(&got[0], &want, "forecaster");

    let cfg = RnnConfig::new(CellKind::Lstm, i, 5).bidirectional(true);
    let tagger = SequenceTagger::new(InputSpec::Features, cfg.clone(), 4, 1).unwrap();
    let want = tagger
        .predict(SeqInput::Features(x.view()), Some(&lengths))
        .unwrap();
    let mut inputs = vec![tensor(x.clone())];
    inputs.extend(state_inputs(&RnnState::zeros(&cfg, b), Some(&lengths)));
    let got = run(&tagger.to_onnx(&options).unwrap().to_bytes(), inputs);
    // rnnkit's rows are `t·B + b`; padded steps hold the head's bias in both.
    let want = want.into_shape_with_order((t, b, 4)).unwrap().into_dyn();
    assert_close(&got[0], &want, "tagger");
}

#[test]
fn stacks_without_biases_run_in_tract_as_in_rnnkit() {
    let (t, b, i) = (4, 2, 3);
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
        let mut cfg = RnnConfig::new(cell, i, 4).num_layers(2).bidirectional(true);
        cfg.bias = false;
        let rnn = Rnn::new(cfg.clone(), &Init::default(), 9).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x = random3(&mut rng, (t, b, i));
        let state = random_state(&mut rng, &cfg, b, true);
        for (recurrence, lengths) in [
            (Recurrence::Operators, None),
            (Recurrence::Scan, Some(vec![4, 2])),
        ] {
            let options = OnnxOptions {
                recurrence,
                lengths: lengths.is_some(),
            };
            let want = rnn
                .forward(x.view(), Some(&state), lengths.as_deref())
                .unwrap();
            let mut inputs = vec![tensor(x.clone())];
            inputs.extend(state_inputs(&state, lengths.as_deref()));
            let got = run(&rnn.to_onnx(&options).unwrap().to_bytes(), inputs);
            let what = format!("{cell} without biases, {recurrence:?}");
            assert_close(&got[0], &want.output.into_dyn(), &what);
            assert_close(&got[1], &want.state.h.into_dyn(), &what);
        }
    }
}
