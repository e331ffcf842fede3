//! Property tests of sequence batching: plans cover every example exactly once, padded batches
//! hold the examples and pads where they belong, stratified splits are partitions that keep
//! each class's proportion, and plans depend only on `(seed, epoch)`.

use proptest::prelude::*;
use rnnkit::data::batch::{
    BatchTargets, Batcher, BatcherConfig, Example, IGNORE_TAG, PadConfig, PaddedBatch, Truncation,
    stratified_split,
};

/// Examples with lengths in `1..max_len` and random ids; tags when `tagged`.
fn examples(max_count: usize, tagged: bool) -> impl Strategy<Value = Vec<Example>> {
    prop::collection::vec(prop::collection::vec(1u32..50, 1..30), 0..max_count).prop_map(
        move |seqs| {
            seqs.into_iter()
                .enumerate()
                .map(|(i, ids)| {
                    if tagged {
                        let tags = ids.iter().map(|&id| id as usize % 5).collect();
                        Example::tagged(ids, tags)
                    } else {
                        Example::class(ids, i % 4)
                    }
                })
                .collect()
        },
    )
}

fn batcher_config() -> impl Strategy<Value = BatcherConfig> {
    (
        1usize..12,
        any::<bool>(),
        0usize..5,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch_size, shuffle, bucket_size, sort_within_batch, seed)| BatcherConfig {
                batch_size,
                shuffle,
                bucket_size,
                sort_within_batch,
                drop_last: false,
                seed,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_example_is_in_exactly_one_batch_per_epoch(
        ex in examples(120, false),
        cfg in batcher_config(),
        epoch in 0u64..1000,
    ) {
        let batcher = Batcher::new(&ex, cfg.clone(), PadConfig::default()).unwrap();
        let plan = batcher.plan(epoch);
        let mut seen = vec![0u32; ex.len()];
        for b in &plan.batches {
            prop_assert!(!b.is_empty() && b.len() <= cfg.batch_size);
            for &i in b {
                seen[i] += 1;
            }
        }
        prop_assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        // All batches but one are full.
        prop_assert!(plan.batches.iter().filter(|b| b.len() < cfg.batch_size).count() <= 1);
        let cells: usize = plan.batches.iter().map(|b| {
            b.iter().map(|&i| ex[i].len()).max().unwrap() * b.len()
        }).sum();
        prop_assert_eq!(plan.total_cells, cells);
        let tokens: usize = ex.iter().map(Example::len).sum();
        prop_assert_eq!(plan.padded_cells, cells - tokens);
    }

    #[test]
    fn drop_last_drops_only_a_short_last_batch(ex in examples(80, false), mut cfg in batcher_config()) {
        cfg.drop_last = true;
        let plan = Batcher::new(&ex, cfg.clone(), PadConfig::default()).unwrap().plan(0);
        prop_assert!(plan.batches.iter().all(|b| b.len() == cfg.batch_size));
        prop_assert_eq!(plan.batches.len(), ex.len() / cfg.batch_size);
    }

    #[test]
    fn same_seed_and_epoch_give_the_same_plan(ex in examples(80, false), cfg in batcher_config(), epoch in 0u64..50) {
        let a = Batcher::new(&ex, cfg.clone(), PadConfig::default()).unwrap();
        // A fresh batcher, as in a resumed run.
        let b = Batcher::new(&ex, cfg, PadConfig::default()).unwrap();
        prop_assert_eq!(a.plan(epoch), b.plan(epoch));
    }

    #[test]
    fn padded_batches_hold_the_examples_and_pads_elsewhere(
        ex in examples(40, true),
        pad_id in 0u32..100,
        max_len in prop::option::of(1usize..20),
        keep_last: bool,
        cfg in batcher_config(),
    ) {
        let truncation = if keep_last { Truncation::KeepLast } else { Truncation::KeepFirst };
        let pad = PadConfig { pad_id, max_len, truncation };
        let batcher = Batcher::new(&ex, cfg.clone(), pad.clone()).unwrap();
        for batch in batcher.batches(&ex, 0) {
            let batch = batch.unwrap();
            let steps = batch.steps();
            prop_assert_eq!(batch.ids.dim(), (steps, batch.batch_size()));
            prop_assert_eq!(steps, batch.lengths.iter().copied().max().unwrap());
            let BatchTargets::Tags(tags) = &batch.targets else { panic!("tags expected") };
            prop_assert_eq!(tags.dim(), batch.ids.dim());
            for (b, &i) in batch.indices.iter().enumerate() {
                let e = &ex[i];
                let kept = max_len.map_or(e.len(), |m| e.len().min(m));
                prop_assert_eq!(batch.lengths[b], kept);
                let start = if keep_last { e.len() - kept } else { 0 };
                let rnnkit::data::batch::Target::Tags(etags) = &e.target else { unreachable!() };
                for t in 0..steps {
                    if t < kept {
                        prop_assert_eq!(batch.ids[[t, b]], e.ids[start + t]);
                        prop_assert_eq!(tags[[t, b]], etags[start + t]);
                    } else {
                        prop_assert_eq!(batch.ids[[t, b]], pad_id);
                        prop_assert_eq!(tags[[t, b]], IGNORE_TAG);
                    }
                }
            }
            if cfg.sort_within_batch {
                prop_assert!(batch.lengths.windows(2).all(|w| w[0] >= w[1]));
            }
            let pads = batch.lengths.iter().map(|&l| steps - l).sum::<usize>();
            prop_assert_eq!(batch.padded_cells(), pads);
        }
    }

    #[test]
    fn stratified_split_is_a_partition_within_one_example_per_class(
        labels in prop::collection::vec(0usize..6, 0..300),
        raw in prop::collection::vec(0u32..10, 1..5),
        seed: u64,
    ) {
        let sum: u32 = raw.iter().sum();
        prop_assume!(sum > 0);
        let fractions: Vec<f64> = raw.iter().map(|&r| r as f64 / sum as f64).collect();
        let sets = stratified_split(&labels, &fractions, seed).unwrap();
        prop_assert_eq!(sets.len(), fractions.len());
        let mut seen = vec![0u32; labels.len()];
        for set in &sets {
            prop_assert!(set.windows(2).all(|w| w[0] < w[1]));
            for &i in set {
                seen[i] += 1;
            }
        }
        prop_assert!(seen.iter().all(|&n| n == 1));
        for class in 0..6 {
            let n = labels.iter().filter(|&&c| c == class).count();
            for (set, f) in sets.iter().zip(&fractions) {
                let got = set.iter().filter(|&&i| labels[i] == class).count();
                let target = n as f64 * f;
                prop_assert!((got as f64 - target).abs() < 1.0 + 1e-9,
                    "class {class}: {got} in a split with target {target}");
                if *f == 0.0 {
                    prop_assert_eq!(got, 0);
                }
            }
        }
        prop_assert_eq!(stratified_split(&labels, &fractions, seed).unwrap(), sets);
    }
}

#[test]
fn epochs_differ_and_bucketing_pads_less() {
    // Surname-like lengths: mostly short, some long.
    let ex: Vec<Example> = (0..2000)
        .map(|i: usize| {
            Example::class(
                vec![1; 2 + (i * 7919) % 13 + if i.is_multiple_of(10) { 20 } else { 0 }],
                i % 18,
            )
        })
        .collect();
    let cfg = BatcherConfig {
        batch_size: 32,
        seed: 11,
        ..BatcherConfig::default()
    };
    let bucketed = Batcher::new(&ex, cfg.clone(), PadConfig::default()).unwrap();
    let plain = Batcher::new(
        &ex,
        BatcherConfig {
            bucket_size: 0,
            ..cfg
        },
        PadConfig::default(),
    )
    .unwrap();
    let (a, b) = (bucketed.plan(0), bucketed.plan(1));
    assert_ne!(a.batches, b.batches);
    let (fb, fp) = (a.padding_fraction(), plain.plan(0).padding_fraction());
    assert!(fb < 0.05 && fp > 0.3, "bucketed {fb}, plain {fp}");
}

#[test]
fn a_padded_batch_of_classes_keeps_labels_in_column_order() {
    let ex = vec![
        Example::class(vec![1, 2], 4),
        Example::class(vec![3, 4, 5], 9),
    ];
    let b = PaddedBatch::from_examples(&ex, &[1, 0], &PadConfig::default()).unwrap();
    assert_eq!(b.targets, BatchTargets::Classes(vec![9, 4]));
    assert_eq!(b.lengths, vec![3, 2]);
    assert_eq!(b.ids.row(2).to_vec(), vec![5, 0]);
}
