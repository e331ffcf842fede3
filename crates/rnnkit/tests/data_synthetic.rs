//! The synthetic long-memory tasks: labels recomputed from the inputs, determinism from the
//! seed, the memoryless baselines, batching that resumes exactly, and one short run showing an
//! LSTM learns the adding problem.

use rnnkit::data::Batches;
use rnnkit::data::batch::ClassBatches;
use rnnkit::data::batch::{BatchTargets, BatcherConfig, Example, PadConfig, Target};
use rnnkit::data::synthetic::{
    AddingProblem, CopyMemory, RegressionSet, TemporalOrder, copy_baseline_ce,
};
use rnnkit::models::{
    Forecaster, InputSpec, Pooling, SequenceClassifier, SequenceTagger, TrainStep,
};
use rnnkit::module::{self, Grads};
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::train::{Silent, TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::time::Instant;

fn tags(e: &Example) -> &[usize] {
    match &e.target {
        Target::Tags(t) => t,
        Target::Class(_) => panic!("tags expected"),
    }
}

fn class(e: &Example) -> usize {
    match e.target {
        Target::Class(c) => c,
        Target::Tags(_) => panic!("class expected"),
    }
}

#[test]
fn adding_problem_targets_are_the_sum_of_the_marked_values() {
    let sets = AddingProblem {
        length: 31,
        size: 1,
        seed: 5,
    }
    .splits(300, 40, 50)
    .unwrap();
    for (set, n) in [(&sets.train, 300), (&sets.val, 40), (&sets.test, 50)] {
        assert_eq!(set.inputs().shape(), &[n, 31, 2]);
        assert_eq!(set.targets().shape(), &[n, 1]);
        assert_eq!(
            (set.len(), set.steps(), set.n_features(), set.n_targets()),
            (n, 31, 2, 1)
        );
        for i in 0..n {
            let marked: Vec<usize> = (0..31)
                .filter(|&t| set.inputs()[[i, t, 1]] == 1.0)
                .collect();
            let zeros = (0..31).filter(|&t| set.inputs()[[i, t, 1]] == 0.0).count();
            assert_eq!((marked.len(), zeros), (2, 29), "sequence {i}");
            assert!(
                marked[0] < 15,
                "first marker at {} not in [0, 15)",
                marked[0]
            );
            assert!(
                (15..31).contains(&marked[1]),
                "second marker at {}",
                marked[1]
            );
            let sum = set.inputs()[[i, marked[0], 0]] + set.inputs()[[i, marked[1], 0]];
            assert_eq!(set.targets()[[i, 0]], sum);
        }
    }
}

#[test]
fn adding_problem_markers_cover_both_halves() {
    // Over many draws every position of each half is used: the markers are uniform in their
    // half, not stuck at an end.
    let set = AddingProblem {
        length: 8,
        size: 2000,
        seed: 1,
    }
    .generate()
    .unwrap();
    let mut hits = [0usize; 8];
    for i in 0..set.len() {
        for (t, h) in hits.iter_mut().enumerate() {
            *h += (set.inputs()[[i, t, 1]] == 1.0) as usize;
        }
    }
    // 2000 draws over 4 positions per half: ~500 each; 350 is > 7 standard deviations below.
    assert!(hits.iter().all(|&h| h > 350), "{hits:?}");
}

#[test]
fn the_empirical_adding_baseline_is_one_sixth() {
    let set = AddingProblem {
        length: 4,
        size: 20_000,
        seed: 11,
    }
    .generate()
    .unwrap();
    let mse = set.mse_of_constant(1.0);
    // The standard error of this mean is about 0.0014; 0.01 is 7 of them.
    assert!(
        (mse - AddingProblem::baseline_mse()).abs() < 0.01,
        "empirical {mse}, expected 1/6"
    );
    // Predicting 1 is the best constant: its neighbours score worse.
    assert!(set.mse_of_constant(0.9) > mse && set.mse_of_constant(1.1) > mse);
}

#[test]
fn same_seed_same_data_different_seed_different_data() {
    let a = AddingProblem {
        length: 10,
        size: 50,
        seed: 1,
    };
    let a2 = AddingProblem {
        seed: 2,
        ..a.clone()
    };
    assert_eq!(a.generate().unwrap(), a.generate().unwrap());
    assert_ne!(a.generate().unwrap(), a2.generate().unwrap());
    assert_eq!(a.splits(5, 6, 7).unwrap(), a.splits(5, 6, 7).unwrap());

    let c = CopyMemory {
        delay: 5,
        size: 50,
        ..Default::default()
    };
    let c2 = CopyMemory {
        seed: 9,
        ..c.clone()
    };
    assert_eq!(c.generate().unwrap(), c.generate().unwrap());
    assert_ne!(c.generate().unwrap(), c2.generate().unwrap());

    let t = TemporalOrder {
        length: 30,
        size: 50,
        ..Default::default()
    };
    let t2 = TemporalOrder {
        seed: 9,
        ..t.clone()
    };
    assert_eq!(t.generate().unwrap(), t.generate().unwrap());
    assert_ne!(t.generate().unwrap(), t2.generate().unwrap());

    // The three splits are different draws from one another and from `generate`.
    let s = t.splits(50, 50, 50).unwrap();
    assert_ne!(s.train, s.val);
    assert_ne!(s.val, s.test);
    assert_ne!(s.train, t.generate().unwrap());
}

#[test]
fn copy_memory_tags_are_blanks_then_the_copied_symbols() {
    let task = CopyMemory {
        delay: 12,
        symbols: 10,
        alphabet: 8,
        size: 200,
        seed: 4,
    };
    let ex = task.generate().unwrap();
    assert_eq!(ex.len(), 200);
    let steps = 12 + 20;
    let mut seen = [false; 10];
    for e in &ex {
        assert_eq!(e.ids.len(), steps);
        let data = &e.ids[..10];
        assert!(data.iter().all(|&s| (1..=8).contains(&s)), "{data:?}");
        for &s in data {
            seen[s as usize] = true;
        }
        // T − 1 blanks, the delimiter, 10 blanks.
        assert!(e.ids[10..10 + 11].iter().all(|&s| s == CopyMemory::BLANK));
        assert_eq!(e.ids[10 + 11], task.delimiter());
        assert_eq!(task.delimiter(), 9);
        assert!(e.ids[22..].iter().all(|&s| s == CopyMemory::BLANK));
        let t = tags(e);
        assert_eq!(t.len(), steps);
        assert!(t[..22].iter().all(|&x| x == 0));
        let copied: Vec<usize> = data.iter().map(|&s| s as usize).collect();
        assert_eq!(&t[22..], &copied[..]);
        assert!(t.iter().all(|&x| x < task.num_tags()));
        assert!(e.ids.iter().all(|&x| (x as usize) < task.vocab_size()));
    }
    assert!(seen[1..=8].iter().all(|&s| s), "every data symbol occurs");
    assert!(!seen[0] && !seen[9]);
}

#[test]
fn copy_baseline_formula_matches_the_blank_then_uniform_predictor() {
    for (delay, symbols, alphabet) in [(100, 10, 8), (7, 3, 5), (1, 1, 2)] {
        let task = CopyMemory {
            delay,
            symbols,
            alphabet,
            size: 50,
            seed: 2,
        };
        let ex = task.generate().unwrap();
        // The predictor: certain blank for the first delay + symbols steps, then uniform over
        // the data symbols. Its cross-entropy, step by step, from the actual tags.
        let (mut nll, mut count) = (0.0f64, 0usize);
        for e in &ex {
            for (t, &tag) in tags(e).iter().enumerate() {
                let mut p = vec![0.0f64; task.num_tags()];
                if t < delay + symbols {
                    p[0] = 1.0;
                } else {
                    p[1..=alphabet].fill(1.0 / alphabet as f64);
                }
                nll -= p[tag].ln();
                count += 1;
            }
        }
        let direct = nll / count as f64;
        let formula = copy_baseline_ce(delay, symbols, alphabet);
        assert!((direct - formula).abs() < 1e-12, "{direct} vs {formula}");
        assert_eq!(task.baseline_ce(), formula);
    }
    assert!((copy_baseline_ce(100, 10, 8) - 10.0 * 8f64.ln() / 120.0).abs() < 1e-15);
}

#[test]
fn copy_memory_trains_through_class_batches_with_a_trainable_blank() {
    let task = CopyMemory {
        delay: 6,
        size: 40,
        ..Default::default()
    };
    let ex = task.generate().unwrap();
    let batching = BatcherConfig {
        batch_size: 8,
        ..Default::default()
    };
    let batches = ClassBatches::new(ex, batching, PadConfig::default()).unwrap();
    assert_eq!(batches.padding_fraction(0), 0.0);
    let epoch = batches.epoch(0).unwrap();
    assert!(
        epoch
            .iter()
            .all(|b| b.lengths.iter().all(|&l| l == task.steps()))
    );
    // The blank is token 0 but a real input: no padding_idx, so its embedding learns.
    let tokens = InputSpec::Tokens {
        vocab: task.vocab_size(),
        padding_idx: None,
    };
    let model = SequenceTagger::new(
        tokens,
        RnnConfig::new(CellKind::Lstm, 4, 8),
        task.num_tags(),
        0,
    )
    .unwrap();
    let mut grads = Grads::zeros_like(&model);
    let out =
        TrainStep::train_batch(&model, &epoch[0], &mut None, &mut grads, &mut rand::rng()).unwrap();
    assert_eq!(out.count, 8 * task.steps());
    let blank_grad = module::named_tensors(&grads.0, "")["embedding.weight"]
        .index_axis(ndarray::Axis(0), 0)
        .iter()
        .map(|g| g.abs())
        .sum::<f32>();
    assert!(blank_grad > 0.0, "the blank's embedding got no gradient");
    let row0 = model
        .encoder()
        .embedding()
        .unwrap()
        .weight()
        .row(0)
        .iter()
        .map(|w| w.abs())
        .sum::<f32>();
    assert!(row0 > 0.0, "the blank's embedding is zero");
}

#[test]
fn temporal_order_class_matches_the_relevant_symbols_in_their_windows() {
    for length in [10, 17, 100] {
        let task = TemporalOrder {
            length,
            size: 300,
            seed: 8,
            ..Default::default()
        };
        let (w1, w2) = (task.first_window(), task.second_window());
        let lo = |f: f64| (f * length as f64).floor() as usize;
        assert_eq!(w1.start, lo(0.1));
        assert_eq!(w2.start, lo(0.5));
        let mut counts = [0usize; 4];
        for e in task.generate().unwrap() {
            assert_eq!(e.ids.len(), length);
            assert_eq!(e.ids[0], TemporalOrder::START);
            assert_eq!(e.ids[length - 1], TemporalOrder::END);
            let relevant: Vec<usize> = (0..length)
                .filter(|&t| e.ids[t] == TemporalOrder::X || e.ids[t] == TemporalOrder::Y)
                .collect();
            assert_eq!(relevant.len(), 2, "{:?}", e.ids);
            assert!(
                w1.contains(&relevant[0]) && w2.contains(&relevant[1]),
                "{relevant:?}"
            );
            for t in 1..length - 1 {
                if !relevant.contains(&t) {
                    let id = e.ids[t];
                    assert!((5..9).contains(&id), "distractor {id} at {t}");
                }
            }
            let (a, b) = (e.ids[relevant[0]], e.ids[relevant[1]]);
            let expected = match (a, b) {
                (TemporalOrder::X, TemporalOrder::X) => 0,
                (TemporalOrder::X, TemporalOrder::Y) => 1,
                (TemporalOrder::Y, TemporalOrder::X) => 2,
                _ => 3,
            };
            assert_eq!(class(&e), expected);
            counts[expected] += 1;
        }
        assert!(counts.iter().all(|&c| c > 30), "{counts:?}");
    }
    assert!((TemporalOrder::baseline_ce() - 4f64.ln()).abs() < 1e-15);
    assert_eq!(TemporalOrder::baseline_accuracy(), 0.25);
}

#[test]
fn temporal_order_feeds_a_classifier_with_default_padding() {
    let task = TemporalOrder {
        length: 12,
        size: 30,
        ..Default::default()
    };
    let ex = task.generate().unwrap();
    let batches = ClassBatches::in_order(ex, 10, PadConfig::default()).unwrap();
    let tokens = InputSpec::Tokens {
        vocab: task.vocab_size(),
        padding_idx: Some(0),
    };
    let model = SequenceClassifier::new(
        tokens,
        RnnConfig::new(CellKind::Lstm, 4, 8),
        TemporalOrder::NUM_CLASSES,
        Pooling::Last,
        0,
    )
    .unwrap();
    let mut total = 0;
    for b in batches.epoch(0).unwrap() {
        assert!(matches!(b.targets, BatchTargets::Classes(_)));
        let out = model.eval_batch(&b, &mut None).unwrap();
        assert!(out.loss.is_finite());
        total += out.count;
    }
    assert_eq!(total, 30);
}

/// The visit order of an epoch, read back from the batches' inputs: every sequence's first
/// value is (almost surely) unique, so it identifies the sequence.
fn order_of(set: &RegressionSet, batches: &[rnnkit::data::series::WindowBatch]) -> Vec<usize> {
    let mut order = Vec::new();
    for b in batches {
        for j in 0..b.targets.nrows() {
            let first = b.inputs[[0, j, 0]];
            let i = (0..set.len())
                .find(|&i| set.inputs()[[i, 0, 0]] == first)
                .unwrap();
            assert_eq!(b.targets[[j, 0]], set.targets()[[i, 0]]);
            order.push(i);
        }
    }
    order
}

#[test]
fn regression_batches_visit_each_sequence_once_in_a_seeded_order() {
    let set = AddingProblem {
        length: 6,
        size: 37,
        seed: 3,
    }
    .generate()
    .unwrap();
    let shuffled = set.batches(8, true, 21).unwrap();
    let e0 = shuffled.epoch(0).unwrap();
    assert_eq!(e0.len(), 5);
    assert_eq!(e0.last().unwrap().targets.nrows(), 5);
    let o0 = order_of(&set, &e0);
    let mut sorted = o0.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..37).collect::<Vec<_>>(),
        "each sequence exactly once"
    );
    assert_eq!(o0, shuffled.order(0));

    // Same (seed, epoch): same batches, also from a fresh source (a resumed run).
    assert_eq!(e0, set.batches(8, true, 21).unwrap().epoch(0).unwrap());
    let o1 = order_of(&set, &shuffled.epoch(1).unwrap());
    assert_ne!(o0, o1, "epochs are shuffled differently");
    let other_seed = set.batches(8, true, 22).unwrap().order(0);
    assert_ne!(o0, other_seed);

    let in_order = set.batches(8, false, 21).unwrap();
    assert_eq!(
        order_of(&set, &in_order.epoch(4).unwrap()),
        (0..37).collect::<Vec<_>>()
    );
}

#[test]
fn an_lstm_learns_the_adding_problem() {
    let started = Instant::now();
    let sets = AddingProblem {
        length: 10,
        size: 1,
        seed: 0,
    }
    .splits(2000, 500, 1)
    .unwrap();
    let train = sets.train.batches(32, true, 0).unwrap();
    let valid = sets.val.batches(250, false, 0).unwrap();
    let baseline = sets.val.mse_of_constant(1.0);
    let model = Forecaster::new(RnnConfig::new(CellKind::Lstm, 2, 24), 1, 1, 0).unwrap();
    let cfg = TrainConfig {
        epochs: 6,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 1e-2,
            ..Default::default()
        }),
        patience: None,
        ..Default::default()
    };
    let mut trainer = Trainer::new(model, cfg, None).unwrap();
    let summary = trainer.run(&train, &valid, None, &mut Silent).unwrap();
    let (best, epoch) = summary.best_val.unwrap();
    eprintln!(
        "adding T=10: best validation MSE {best:.4} at epoch {epoch} \
         (baseline {baseline:.4}), {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        best < 0.1,
        "validation MSE {best} not clearly below the baseline {baseline}"
    );
    assert!(best < baseline / 2.0);
}
