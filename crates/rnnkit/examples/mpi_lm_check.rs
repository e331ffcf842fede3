//! Data-parallel training over MPI against one process with the global batch.
//!
//! A PTB-sized language model trains for 200 steps: vocabulary 10,000, a 2-layer LSTM of 200,
//! batch 20 streams, BPTT 20, SGD with learning rate 1 and clipping at 5, as in Zaremba et al.'s
//! small model, on a synthetic Markov-chain token stream. Every rank trains its share of the
//! streams with one thread, the gradients summed over the ranks at each step. Rank 0 then trains
//! the same model in one process on the whole batch and compares:
//!
//! - each step's loss, within 1e-5 relative;
//! - the final weights, `max|a − b| / max|b|` per tensor within 1e-4.
//!
//! It prints one JSON line with the largest differences and the milliseconds per step of both
//! runs, and exits 1 when a bound fails.
//!
//! ```text
//! cargo build --release -p rnnkit --features mpi --example mpi_lm_check
//! mpirun -np 2 --oversubscribe target/release/examples/mpi_lm_check
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

const VOCAB: usize = 10_000;
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
fn markov_stream(tokens: usize, seed: u64) -> Vec<u32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut t = 1u32;
    (0..tokens)
        .map(|_| {
            t = (t.wrapping_mul(31) + rng.random_range(0..8)) % VOCAB as u32;
            t
        })
        .collect()
}

fn model() -> rnnkit::Result<LanguageModel> {
    LanguageModel::new(
        VOCAB,
        RnnConfig::new(CellKind::Lstm, 200, 200).num_layers(2),
        7,
    )
}

/// Trains for `STEPS` steps (with `comm`: data-parallel) and returns the losses, the model
/// and the milliseconds per step.
fn train(comm: Option<Arc<dyn Communicator>>) -> rnnkit::Result<(Vec<f32>, LanguageModel, f64)> {
    let stream = markov_stream(BATCH * BPTT * STEPS as usize + 1 + 4_000, 3);
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
    let mut trainer = Trainer::new(model()?, config, None)?;
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
    // One thread per rank: the scaling measured is that of processes.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (dist_losses, dist_model, dist_ms) = pool.install(|| train(Some(comm.clone())))?;
    if rank != 0 {
        return Ok(());
    }
    let (losses, single, single_ms) = pool.install(|| train(None))?;
    let worst_loss = losses
        .iter()
        .zip(&dist_losses)
        .map(|(a, b)| ((a - b) / a).abs())
        .fold(0.0f32, f32::max);
    let reference = module::named_tensors(&single, "");
    let mut worst_weight = 0.0f32;
    for (name, got) in module::named_tensors(&dist_model, "") {
        let want = &reference[&name];
        let diff = (&got - want).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
        let scale = want
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b))
            .max(f32::MIN_POSITIVE);
        worst_weight = worst_weight.max(diff / scale);
    }
    let ok = losses.len() == dist_losses.len()
        && losses.len() == STEPS as usize
        && worst_loss <= 1e-5
        && worst_weight <= 1e-4;
    println!(
        "{}",
        serde_json::json!({
            "ranks": ranks,
            "steps": losses.len(),
            "first_loss": losses.first(),
            "last_loss": losses.last(),
            "worst_step_loss_rel": worst_loss,
            "worst_weight_rel": worst_weight,
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
