//! The sequence trainer (padded batches and windows): it learns, resumes bit-identically,
//! keeps the best weights, and its checkpoints carry PyTorch names.

use ndarray::Array2;
use rnnkit::data::batch::ClassBatches;
use rnnkit::data::batch::{BatcherConfig, Example, PadConfig};
use rnnkit::data::series::WindowBatches;
use rnnkit::data::series::Windows;
use rnnkit::models::{Forecaster, InputSpec, Pooling, SequenceClassifier};
use rnnkit::module;
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::train::{Silent, TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rnnkit-seq-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Label = whether token 3 occurs; lengths 1..=8.
fn examples(n: u32, salt: u32) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let len = 1 + (i * 5 + salt) % 8;
            let ids: Vec<u32> = (0..len).map(|t| 1 + (i * 7 + t * 3 + salt) % 6).collect();
            let label = ids.contains(&3) as usize;
            Example::class(ids, label)
        })
        .collect()
}

fn classifier() -> SequenceClassifier {
    let tokens = InputSpec::Tokens {
        vocab: 7,
        padding_idx: Some(0),
    };
    let rnn = RnnConfig::new(CellKind::Lstm, 8, 16)
        .num_layers(2)
        .dropout(0.2);
    SequenceClassifier::new(tokens, rnn, 2, Pooling::Last, 3).unwrap()
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 1e-2,
            ..Default::default()
        }),
        patience: None,
        ..Default::default()
    }
}

fn batches(ex: Vec<Example>) -> ClassBatches {
    let cfg = BatcherConfig {
        batch_size: 16,
        seed: 5,
        ..Default::default()
    };
    ClassBatches::new(ex, cfg, PadConfig::default()).unwrap()
}

#[test]
fn classifier_learns_and_resumes_bit_identical() {
    let train = batches(examples(96, 0));
    let valid = ClassBatches::in_order(examples(48, 1), 64, PadConfig::default()).unwrap();

    let mut full = Trainer::new(classifier(), config(6), None).unwrap();
    let summary = full.run(&train, &valid, Some(&valid), &mut Silent).unwrap();
    let test = summary.test.unwrap();
    assert!(test.accuracy > 0.8, "the task is learnable: {test:?}");

    // Stop after 17 steps (mid-epoch), resume from the checkpoint, finish.
    let dir = temp_dir("resume");
    let mut first = Trainer::new(
        classifier(),
        TrainConfig {
            max_steps: Some(17),
            ..config(6)
        },
        Some(dir.clone()),
    )
    .unwrap();
    let s = first.run(&train, &valid, None, &mut Silent).unwrap();
    assert!(s.interrupted);
    let ck = dir.join("checkpoints/latest.safetensors");
    let mut resumed = Trainer::resume(classifier(), &ck, Some(config(6)), Some(dir)).unwrap();
    assert_eq!(resumed.progress().step, 17);
    resumed
        .run(&train, &valid, Some(&valid), &mut Silent)
        .unwrap();
    let (a, b) = (
        module::named_tensors(full.model(), ""),
        module::named_tensors(resumed.model(), ""),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(*v == b[k], "{k} differs after resume");
    }
}

#[test]
fn stop_signal_stops_before_the_next_step_with_a_checkpoint() {
    let train = batches(examples(96, 0));
    let valid = ClassBatches::in_order(examples(48, 1), 64, PadConfig::default()).unwrap();
    let dir = temp_dir("signal");
    let mut trainer = Trainer::new(classifier(), config(6), Some(dir.clone())).unwrap();
    // Raised before the run, as by a Ctrl-C during start-up: no step is taken.
    trainer.stop_signal().request();
    let s = trainer
        .run(&train, &valid, Some(&valid), &mut Silent)
        .unwrap();
    assert!(s.interrupted && s.test.is_none());
    assert_eq!(trainer.progress().step, 0);
    let ck = dir.join("checkpoints/latest.safetensors");
    let resumed = Trainer::resume(classifier(), &ck, None, None).unwrap();
    assert_eq!(resumed.progress().step, 0);
}

#[test]
fn checkpoint_names_are_pytorch_names_and_load_back() {
    let model = classifier();
    let names = module::param_names(&model, "");
    assert_eq!(names[0], "embedding.weight");
    assert!(names.contains(&"rnn.weight_hh_l1".to_string()));
    assert_eq!(&names[names.len() - 2..], ["head.weight", "head.bias"]);
    let tensors = module::named_tensors(&model, "");
    assert_eq!(tensors.len(), names.len());
    let mut other = SequenceClassifier::new(
        InputSpec::Tokens {
            vocab: 7,
            padding_idx: Some(0),
        },
        RnnConfig::new(CellKind::Lstm, 8, 16).num_layers(2),
        2,
        Pooling::Last,
        99,
    )
    .unwrap();
    module::load_named(&mut other, "", &tensors).unwrap();
    assert_eq!(module::named_tensors(&other, ""), tensors);
    // A wrong shape is an error naming the tensor, and changes nothing.
    let mut bad = tensors.clone();
    bad.insert("head.weight".into(), ndarray::ArrayD::zeros(vec![3, 16]));
    let before = module::named_tensors(&other, "");
    let err = module::load_named(&mut other, "", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("head.weight"), "{err}");
    assert_eq!(module::named_tensors(&other, ""), before);
}

#[test]
fn forecaster_learns_a_sine_and_keeps_the_best_weights() {
    let n = 400;
    let x = Array2::from_shape_fn((n, 1), |(t, _)| (t as f64 * 0.3).sin());
    let train = Windows::new(x.view(), x.view(), 0, 12, 2, 1).unwrap();
    let model = Forecaster::new(RnnConfig::new(CellKind::Gru, 1, 16), 2, 1, 0).unwrap();
    let cfg = TrainConfig {
        epochs: 15,
        patience: Some(3),
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 1e-2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut trainer = Trainer::new(model, cfg, None).unwrap();
    let tb = WindowBatches::new(&train, 32, true, 1).unwrap();
    let vb = WindowBatches::new(&train, 500, false, 0).unwrap();
    let s = trainer.run(&tb, &vb, Some(&vb), &mut Silent).unwrap();
    let (best, _) = s.best_val.unwrap();
    assert!(best < 0.01, "a sine is easy: val mse {best}");
    // restore_best: the final model is the best epoch's, so its loss equals the best.
    let test = s.test.unwrap().loss;
    assert!((test - best).abs() < 1e-9, "test {test} vs best {best}");
}

#[test]
fn empty_window_split_and_bad_config_are_errors() {
    let x = Array2::from_shape_fn((5, 1), |(t, _)| t as f64);
    let w = Windows::new(x.view(), x.view(), 0, 4, 2, 1).unwrap();
    assert!(w.is_empty());
    let err = WindowBatches::new(&w, 8, false, 0)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("lookback"), "{err}");
    let cfg = TrainConfig {
        clip_norm: Some(-1.0),
        ..Default::default()
    };
    let err = Trainer::new(classifier(), cfg, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("clip_norm"), "{err}");
}

#[test]
fn diagnostics_every_k_steps_are_written_once_per_step_and_cost_nothing_when_off() {
    use rnnkit::data::synthetic::AddingProblem;
    let sets = AddingProblem {
        length: 8,
        ..Default::default()
    }
    .splits(100, 20, 20)
    .unwrap();
    let train = sets.train.batches(10, true, 0).unwrap();
    let val = sets.val.batches(20, false, 0).unwrap();
    for every in [None, Some(5)] {
        let dir = temp_dir(&format!("diag-{}", every.is_some()));
        let model = Forecaster::new(RnnConfig::new(CellKind::Lstm, 2, 6), 1, 1, 0).unwrap();
        let cfg = TrainConfig {
            epochs: 1,
            diagnostics_every: every,
            ..Default::default()
        };
        let mut trainer = Trainer::new(model, cfg, Some(dir.clone())).unwrap();
        trainer.run(&train, &val, None, &mut Silent).unwrap();
        let path = dir.join("metrics/diagnostics.jsonl");
        match every {
            None => assert!(!path.exists()),
            Some(_) => {
                let text = std::fs::read_to_string(&path).unwrap();
                let steps: Vec<u64> = text
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        let norms = v["profile"]["norm"].as_array().unwrap();
                        assert_eq!(
                            norms.len(),
                            v["profile"]["distances"].as_array().unwrap().len()
                        );
                        assert_eq!(v["gates"][0]["gates"].as_array().unwrap().len(), 3, "{v}");
                        v["step"].as_u64().unwrap()
                    })
                    .collect();
                assert_eq!(
                    steps,
                    [0, 5, 10],
                    "before training, then every 5 of 10 steps"
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_classifier_is_diagnosed_on_its_full_length_sequences() {
    use rnnkit::data::synthetic::TemporalOrder;
    let task = TemporalOrder {
        length: 12,
        ..Default::default()
    };
    let sets = task.splits(64, 16, 16).unwrap();
    let batching = BatcherConfig {
        batch_size: 16,
        ..Default::default()
    };
    let train = ClassBatches::new(sets.train, batching, PadConfig::default()).unwrap();
    let valid = ClassBatches::in_order(sets.val, 16, PadConfig::default()).unwrap();
    let spec = InputSpec::Tokens {
        vocab: task.vocab_size(),
        padding_idx: Some(0),
    };
    let rnn = RnnConfig::new(CellKind::Gru, 4, 6);
    let model = SequenceClassifier::new(spec, rnn, 4, Pooling::Last, 0).unwrap();
    let dir = temp_dir("diag-classify");
    let cfg = TrainConfig {
        epochs: 1,
        diagnostics_every: Some(2),
        ..Default::default()
    };
    let mut trainer = Trainer::new(model, cfg, Some(dir.clone())).unwrap();
    trainer.run(&train, &valid, None, &mut Silent).unwrap();
    let text = std::fs::read_to_string(dir.join("metrics/diagnostics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["profile"]["distances"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        11
    );
    assert_eq!(
        text.lines().count(),
        1 + 4 / 2,
        "before training, then steps 2 and 4"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
