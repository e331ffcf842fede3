//! The rnnkit side of issue 3's Tiny Shakespeare comparison, with exactly the pipeline of
//! `tools/torch_char_lm.py`: vocabulary = the sorted distinct characters of the file, first 90%
//! train, last 10% validation, batchify into 64 streams, 100-step truncated BPTT with the state
//! carried (reset each epoch), embedding 64 → 2-layer LSTM 512 (dropout 0.2 between layers) →
//! decoder, Adam lr 2e-3, global-norm clipping at 5, validation in the same layout.
//!
//! ```sh
//! cargo run --release -p rnnkit --example char_lm -- --epochs 7 [--threads 2] [--max-chars N]
//!     [--hidden 512] [--embed 64] [--batch 64] [--bptt 100] [--run-dir DIR] [--seed 0]
//!     [--precision f32|bf16]
//! ```
//!
//! Prints a line per epoch and a final JSON line with the same fields as the PyTorch script:
//! `val_loss`, `train_loss` (both of the last epoch), `epochs`, `wall_s` (the training loop,
//! validation included), `tokens_per_s` (training tokens over training time).

use rnnkit::data::stream::StreamBatches;
use rnnkit::models::LanguageModel;
use rnnkit::optim::{AdamConfig, OptimizerConfig};
use rnnkit::train::{EpochReport, Reporter, StepReport, TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::time::Instant;

struct Args {
    epochs: usize,
    threads: usize,
    max_chars: Option<usize>,
    hidden: usize,
    embed: usize,
    batch: usize,
    bptt: usize,
    seed: u64,
    run_dir: Option<std::path::PathBuf>,
    data: std::path::PathBuf,
    precision: rnnkit::Precision,
}

fn parse() -> Args {
    let mut a = Args {
        epochs: 1,
        threads: 2,
        max_chars: None,
        hidden: 512,
        embed: 64,
        batch: 64,
        bptt: 100,
        seed: 0,
        run_dir: None,
        data: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/tinyshakespeare/input.txt"),
        precision: rnnkit::Precision::F32,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--epochs" => a.epochs = v.parse().expect("--epochs N"),
            "--threads" => a.threads = v.parse().expect("--threads N"),
            "--max-chars" => a.max_chars = Some(v.parse().expect("--max-chars N")),
            "--hidden" => a.hidden = v.parse().expect("--hidden N"),
            "--embed" => a.embed = v.parse().expect("--embed N"),
            "--batch" => a.batch = v.parse().expect("--batch N"),
            "--bptt" => a.bptt = v.parse().expect("--bptt N"),
            "--seed" => a.seed = v.parse().expect("--seed N"),
            "--precision" => a.precision = v.parse().expect("--precision f32|bf16"),
            "--run-dir" => a.run_dir = Some(v.into()),
            "--data" => a.data = v.into(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

struct Print {
    start: Instant,
    train_seconds: f64,
    last: Instant,
    tokens: u64,
    last_epoch: Option<EpochReport>,
}

impl Reporter for Print {
    fn step(&mut self, r: &StepReport) {
        self.train_seconds += self.last.elapsed().as_secs_f64();
        self.tokens += r.count as u64;
        if r.chunk.is_multiple_of(20) {
            eprintln!(
                "  epoch {} chunk {}/{} loss {:.4} grad norm {:.3}",
                r.epoch + 1,
                r.chunk,
                r.chunks,
                r.loss,
                r.grad_norm
            );
        }
        self.last = Instant::now();
    }
    fn epoch(&mut self, r: &EpochReport) {
        println!(
            "epoch {:3} | train loss {:.4} | val loss {:.4} nats/char ({:.4} bits/char) | elapsed {:.1} s",
            r.epoch + 1,
            r.train_loss,
            r.val_loss,
            r.val_loss / std::f64::consts::LN_2,
            self.start.elapsed().as_secs_f64()
        );
        self.last_epoch = Some(r.clone());
        self.last = Instant::now(); // validation time is not training time
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse();
    let mut text = std::fs::read_to_string(&a.data)?;
    if let Some(n) = a.max_chars {
        text = text.chars().take(n).collect();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut vocab = chars.clone();
    vocab.sort_unstable();
    vocab.dedup();
    let ids: Vec<u32> = chars
        .iter()
        .map(|c| vocab.binary_search(c).expect("in vocab") as u32)
        .collect();
    let cut = (0.9 * ids.len() as f64) as usize;
    let (train_ids, valid_ids) = ids.split_at(cut);
    let rnn = RnnConfig::new(CellKind::Lstm, a.embed, a.hidden)
        .num_layers(2)
        .dropout(0.2);
    let model = LanguageModel::new(vocab.len(), rnn, a.seed)?;
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch,
        eval_batch_size: a.batch,
        bptt: a.bptt,
        clip_norm: Some(5.0),
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 2e-3,
            ..AdamConfig::default()
        }),
        seed: a.seed,
        precision: a.precision,
        ..TrainConfig::language_model()
    };
    eprintln!(
        "data {}: {} chars, vocab {}, train {} / valid {}; embed {} lstm 2x{} dropout 0.2; batch {} bptt {}; Adam 2e-3, clip 5; {} threads; {}",
        a.data.display(),
        chars.len(),
        vocab.len(),
        train_ids.len(),
        valid_ids.len(),
        a.embed,
        a.hidden,
        a.batch,
        a.bptt,
        a.threads,
        a.precision.effective()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    let mut report = Print {
        start: Instant::now(),
        train_seconds: 0.0,
        last: Instant::now(),
        tokens: 0,
        last_epoch: None,
    };
    let summary = pool.install(|| -> Result<_, rnnkit::Error> {
        let train = StreamBatches::new(train_ids, cfg.batch_size, cfg.chunk_length(), cfg.seed)?;
        let valid = StreamBatches::fixed(valid_ids, cfg.eval_batch_size, cfg.bptt)?;
        let mut trainer = Trainer::new(model, cfg, a.run_dir.clone())?;
        report.start = Instant::now();
        report.last = Instant::now();
        trainer.run(&train, &valid, None, &mut report)
    })?;
    let wall = report.start.elapsed().as_secs_f64();
    let last = report.last_epoch.expect("at least one epoch");
    println!(
        "{}",
        serde_json::json!({
            "val_loss": last.val_loss,
            "train_loss": last.train_loss,
            "epochs": summary.epochs,
            "wall_s": wall,
            "tokens_per_s": report.tokens as f64 / report.train_seconds,
            "threads": a.threads,
            "best_val": summary.best_val.map(|b| b.0),
            "precision": a.precision.effective().as_str(),
        })
    );
    Ok(())
}
