//! Data-parallel training over MPI against one process with the global batch.
//!
//! A PTB-sized language model trains for 200 steps, with the shape of Zaremba et al.'s small
//! model: a vocabulary of 10,000 (a synthetic Markov-chain token stream), a 2-layer LSTM of 200,
//! batch 20 streams, BPTT 20, SGD with learning rate 1 and clipping at 5. Every rank trains its
//! share of the streams with one thread, the gradients summed over the ranks at each step. Rank
//! 0 then trains the same model in one process on the whole batch and compares:
//!
//! - each step's loss, within 1e-5 relative;
//! - the final weights, `max|a − b| / max|b|` per tensor within 1e-4.
//!
//! It prints one JSON line with the largest differences and the milliseconds per step of both
//! runs, and exits 1 when a bound fails. `--shakespeare` trains on the bundled Tiny Shakespeare
//! by character instead; `--vocab N` sets the synthetic vocabulary.
//!
//! ```text
//! cargo build --release -p rnnkit --features mpi --example mpi_lm_check
//! mpirun -np 2 --oversubscribe target/release/examples/mpi_lm_check [--shakespeare]
//! ```

use rand::{Rng, SeedableRng};
use rnnkit::data::stream::StreamBatches;
use rnnkit::distributed::{Communicator, MpiCommunicator};
use rnnkit::models::LanguageModel;
use rnnkit::module;
use rnnkit::train::{Reporter, StepReport, TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use std::sync::Arc;
use std::time::Instant;

const STEPS: u64 = 200;
const BATCH: usize = 20;
const BPTT: usize = 20;

/// Records each step's loss.
struct Losses(Vec<f32>);
impl Reporter for Losses {
    fn step(&mut self, report: &StepReport) {
        self.0.push(report.loss);
    }
}

/// A token stream with structure to learn: each token a fixed function of the last plus a
/// little noise.
fn markov_stream(tokens: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut t = 1u32;
    (0..tokens)
        .map(|_| {
            t = (t.wrapping_mul(31) + rng.random_range(0..8)) % vocab as u32;
            t
        })
        .collect()
}

/// The data: a synthetic stream over `vocab` types, or the bundled Tiny Shakespeare by
/// character (`vocab` None). Returns the stream and its vocabulary size.
fn data(
    vocab: Option<usize>,
    tokens: usize,
) -> Result<(Vec<u32>, usize), Box<dyn std::error::Error>> {
    if let Some(v) = vocab {
        return Ok((markov_stream(tokens, v, 3), v));
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/tinyshakespeare/input.txt"
    );
    let text = std::fs::read_to_string(path)?;
    let mut chars: Vec<char> = text
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    chars.sort_unstable();
    let ids: Vec<u32> = text
        .chars()
        .take(tokens)
        .map(|c| chars.binary_search(&c).expect("a character of the text") as u32)
        .collect();
    if ids.len() < tokens {
        return Err(format!("{path} has fewer than {tokens} characters").into());
    }
    Ok((ids, chars.len()))
}

fn model(vocab: usize) -> rnnkit::Result<LanguageModel> {
    LanguageModel::new(
        vocab,
        RnnConfig::new(CellKind::Lstm, 200, 200).num_layers(2),
        7,
    )
}

/// Trains for `STEPS` steps (with `comm`: data-parallel) and returns the losses, the model
/// and the milliseconds per step.
fn train(
    comm: Option<Arc<dyn Communicator>>,
    stream: &[u32],
    vocab: usize,
) -> rnnkit::Result<(Vec<f32>, LanguageModel, f64)> {
    let split = BATCH * BPTT * STEPS as usize + 1;
    let config = TrainConfig {
        epochs: 1,
        batch_size: BATCH,
        eval_batch_size: BATCH,
        bptt: BPTT,
        max_steps: Some(STEPS),
        ..TrainConfig::language_model()
    };
    let train = StreamBatches::new(&stream[..split], BATCH, config.chunk_length(), config.seed)?;
    let valid = StreamBatches::fixed(&stream[split..], BATCH, BPTT)?;
    let mut trainer = Trainer::new(model(vocab)?, config, None)?;
    if let Some(comm) = comm {
        trainer = trainer.with_communicator(comm);
    }
    let mut losses = Losses(Vec::new());
    let start = Instant::now();
    trainer.run(&train, &valid, None, &mut losses)?;
    let ms = start.elapsed().as_secs_f64() * 1e3 / STEPS as f64;
    Ok((losses.0, trainer.into_model(), ms))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let comm: Arc<dyn Communicator> =
        Arc::new(MpiCommunicator::init().ok_or("MPI was already initialized")?);
    let (rank, ranks) = (comm.rank(), comm.size());
    let args: Vec<String> = std::env::args().collect();
    let vocab = match args.iter().position(|a| a == "--vocab") {
        Some(i) => Some(args.get(i + 1).ok_or("--vocab N")?.parse::<usize>()?),
        None if args.iter().any(|a| a == "--shakespeare") => None,
        None => Some(10_000),
    };
    let (stream, vocab) = data(vocab, BATCH * BPTT * STEPS as usize + 1 + 4_000)?;
    // One thread per rank: the scaling measured is that of processes.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (dist_losses, dist_model, dist_ms) =
        pool.install(|| train(Some(comm.clone()), &stream, vocab))?;
    if rank != 0 {
        return Ok(());
    }
    let (losses, single, single_ms) = pool.install(|| train(None, &stream, vocab))?;
    let worst_loss = losses
        .iter()
        .zip(&dist_losses)
        .map(|(a, b)| ((a - b) / a).abs())
        .fold(0.0f32, f32::max);
    let reference = module::named_tensors(&single, "");
    let mut worst_weight = 0.0f32;
    let mut worst_tensor = String::new();
    for (name, got) in module::named_tensors(&dist_model, "") {
        let want = &reference[&name];
        let diff = (&got - want).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
        let scale = want
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b))
            .max(f32::MIN_POSITIVE);
        if diff / scale > worst_weight {
            worst_weight = diff / scale;
            worst_tensor = name.clone();
        }
    }
    let ok = losses.len() == dist_losses.len()
        && losses.len() == STEPS as usize
        && worst_loss <= 1e-5
        && worst_weight <= 1e-4;
    println!(
        "{}",
        serde_json::json!({
            "ranks": ranks,
            "vocab": vocab,
            "steps": losses.len(),
            "first_loss": losses.first(),
            "last_loss": losses.last(),
            "worst_step_loss_rel": worst_loss,
            "worst_weight_rel": worst_weight,
            "worst_weight_tensor": worst_tensor,
            "ms_per_step_distributed": dist_ms,
            "ms_per_step_single": single_ms,
            "ok": ok,
        })
    );
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
