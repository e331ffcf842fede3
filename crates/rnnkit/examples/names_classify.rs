//! Sequence classification on real labelled data: surnames → one of 18 languages of origin,
//! character level, unbalanced (Russian about 9.4k names, Vietnamese 73). Stratified
//! 80/10/10 split, embedding → LSTM → last valid state → linear head, padded and bucketed
//! batches with lengths; accuracy and macro-F1 on the held-out test part and a confusion-matrix
//! PNG. `tools/torch_names.py` trains the same model on the same split (read from
//! `RUN_DIR/split.tsv`) for the PyTorch figure.
//!
//! ```sh
//! cargo run --release -p rnnkit --example names_classify -- [--data DIR] [--epochs N]
//!     [--hidden N] [--embed N] [--seed N] [--run-dir DIR]
//! ```

use rnnkit::data::batch::ClassBatches;
use rnnkit::data::batch::{BatcherConfig, Example, PadConfig, stratified_split};
use rnnkit::data::text::{TextConfig, TextPipeline};
use rnnkit::models::{InputSpec, Pooling, SeqInput, SequenceClassifier};
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::train::{EpochReport, Reporter};
use rnnkit::train::{TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::io::Write;
use std::path::PathBuf;

struct Log;
impl Reporter for Log {
    fn epoch(&mut self, r: &EpochReport) {
        println!(
            "epoch {:3} | train loss {:.4} | val loss {:.4}{} | {:.1} s",
            r.epoch + 1,
            r.train_loss,
            r.val_loss,
            if r.best { " *" } else { "" },
            r.seconds
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/names");
    let (mut epochs, mut hidden, mut embed, mut seed) = (30usize, 128usize, 64usize, 0u64);
    let mut run_dir = PathBuf::from("runs/names");
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--data" => dir = v.into(),
            "--epochs" => epochs = v.parse()?,
            "--hidden" => hidden = v.parse()?,
            "--embed" => embed = v.parse()?,
            "--seed" => seed = v.parse()?,
            "--run-dir" => run_dir = v.into(),
            other => return Err(format!("unknown flag {other}").into()),
        }
        i += 2;
    }

    // One file per language, sorted by name: class id = position.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut classes = Vec::new();
    let (mut names, mut labels) = (Vec::new(), Vec::new());
    for (c, f) in files.iter().enumerate() {
        classes.push(f.file_stem().unwrap().to_string_lossy().to_string());
        let text = rnnkit::data::text::load::read_text(f)?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            names.push(line.to_string());
            labels.push(c);
        }
    }
    let parts = stratified_split(&labels, &[0.8, 0.1, 0.1], seed)?;
    let (tr, va, te) = (&parts[0], &parts[1], &parts[2]);
    std::fs::create_dir_all(&run_dir)?;
    // The split, for tools/torch_names.py: split, class, name per line.
    let mut f = std::io::BufWriter::new(std::fs::File::create(run_dir.join("split.tsv"))?);
    for (split, idx) in [("train", tr), ("valid", va), ("test", te)] {
        for &k in idx {
            writeln!(f, "{split}\t{}\t{}", classes[labels[k]], names[k])?;
        }
    }
    f.flush()?;

    // Characters of the training names; unseen ones in valid/test map to <unk>.
    let train_names: Vec<&str> = tr.iter().map(|&k| names[k].as_str()).collect();
    let text = TextPipeline::fit(&train_names, &TextConfig::default())?;
    text.save(&run_dir.join("text.json"))?;
    let examples = |idx: &[usize]| -> rnnkit::Result<Vec<Example>> {
        idx.iter()
            .map(|&k| Ok(Example::class(text.encode(&names[k])?, labels[k])))
            .collect()
    };
    let pad = PadConfig::default();
    let batching = BatcherConfig {
        batch_size: 64,
        seed,
        ..Default::default()
    };
    let train = ClassBatches::new(examples(tr)?, batching, pad.clone())?;
    let valid = ClassBatches::in_order(examples(va)?, 512, pad.clone())?;
    let test = ClassBatches::in_order(examples(te)?, 512, pad)?;
    println!(
        "{} names, {} classes, {} characters; train {} / valid {} / test {}; padding with \
         bucketing {:.1}%",
        names.len(),
        classes.len(),
        text.vocab().len(),
        tr.len(),
        va.len(),
        te.len(),
        100.0 * train.padding_fraction(0)
    );

    let spec = InputSpec::Tokens {
        vocab: text.vocab().len(),
        padding_idx: Some(0),
    };
    let rnn = RnnConfig::new(CellKind::Lstm, embed, hidden);
    let model = SequenceClassifier::new(spec, rnn, classes.len(), Pooling::Last, seed)?;
    let cfg = TrainConfig {
        epochs,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 2e-3,
            ..Default::default()
        }),
        patience: Some(5),
        seed,
        ..Default::default()
    };
    let mut trainer = Trainer::new(model, cfg, Some(run_dir.clone()))?;
    let started = std::time::Instant::now();
    let summary = trainer.run(&train, &valid, Some(&test), &mut Log)?;
    let seconds = started.elapsed().as_secs_f64();

    // Confusion matrix and macro-F1 on the test part.
    let k = classes.len();
    let mut counts = vec![vec![0usize; k]; k];
    for b in rnnkit::data::Batches::epoch(&test, 0)? {
        let logits = trainer
            .model()
            .predict(SeqInput::Tokens(b.ids.view()), Some(&b.lengths))?;
        let rnnkit::data::batch::BatchTargets::Classes(ys) = &b.targets else {
            unreachable!("class examples")
        };
        for (row, &y) in logits.rows().into_iter().zip(ys) {
            let pred = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (j, &v)| {
                    if v > best.1 { (j, v) } else { best }
                })
                .0;
            counts[y][pred] += 1;
        }
    }
    let total: usize = counts.iter().flatten().sum();
    let accuracy = (0..k).map(|c| counts[c][c]).sum::<usize>() as f64 / total as f64;
    let f1: Vec<f64> = (0..k)
        .map(|c| {
            let tp = counts[c][c] as f64;
            let predicted: usize = (0..k).map(|r| counts[r][c]).sum();
            let actual: usize = counts[c].iter().sum();
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (predicted + actual) as f64
            }
        })
        .collect();
    let macro_f1 = f1.iter().sum::<f64>() / k as f64;
    let png = run_dir.join("confusion.png");
    rnnkit::plot::ConfusionMatrixChart::new(
        format!(
            "names, test split: accuracy {accuracy:.3}, macro-F1 {macro_f1:.3} (rows: true, \
             row-normalized)"
        ),
        &counts,
        &classes,
    )
    .normalize(true)
    .size(1100, 800)
    .save_png(&png)?;
    let test_eval = summary.test.expect("test given");
    let metrics = serde_json::json!({
        "accuracy": accuracy, "macro_f1": macro_f1, "test_loss": test_eval.loss,
        "best_val": summary.best_val, "epochs": summary.epochs, "seconds": seconds,
        "hidden": hidden, "embed": embed, "seed": seed,
        "f1_per_class": classes.iter().zip(&f1).map(|(c, f)| (c.clone(), *f))
            .collect::<std::collections::BTreeMap<_, _>>(),
    });
    std::fs::write(run_dir.join("metrics.json"), format!("{metrics:#}\n"))?;
    println!(
        "test: accuracy {accuracy:.4}, macro-F1 {macro_f1:.4}, loss {:.4}; {} epochs in \
         {seconds:.1} s; wrote {}",
        test_eval.loss,
        summary.epochs,
        png.display()
    );
    Ok(())
}
