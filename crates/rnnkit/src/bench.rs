//! The benchmark suite of DESIGN section 5: fixed cases, timed after warm-up, medians reported.
//!
//! Training cases time forward + backward of the recurrent stack over a random `[T, B, I]`
//! input with an all-ones upstream gradient (gradients for the input and every weight; no
//! optimizer). Inputs, weights and gradient buffers are made once, outside the timing.

use crate::config::{CellKind, RnnConfig};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::models::LanguageModel;
use crate::module::{self, Grads};
use crate::optim::clip::clip_grad_norm;
use crate::params::RnnParams;
use crate::precision::Precision;
use crate::recurrent::{Rnn, RnnState, Upstream};
use ndarray::{Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// Penn Treebank's vocabulary size (Mikolov's preprocessing).
const PTB_VOCAB: usize = 10_000;
/// WikiText-2's vocabulary size (training split, with `<eos>`).
const WIKITEXT2_VOCAB: usize = 33_278;

/// One benchmark case.
#[derive(Clone, Debug)]
pub struct BenchCase {
    /// Case name (the contract's).
    pub name: &'static str,
    /// The stack.
    pub config: RnnConfig,
    /// Batch size.
    pub batch: usize,
    /// Time steps per iteration (1 for streaming).
    pub steps: usize,
    /// What one iteration does.
    pub kind: BenchKind,
    /// Dropout of the language-model cases: on the embedded input, between the layers and on
    /// the output, per element (Zaremba et al.'s medium model: 0.5).
    pub dropout: f32,
    /// Per-sequence lengths of a variable-length batch (`steps` is the longest); `None`: every
    /// sequence is `steps` long.
    pub lengths: Option<Vec<usize>>,
}

impl BenchCase {
    /// The tokens one iteration processes: time steps × batch, or the sum of the lengths.
    pub fn tokens(&self) -> usize {
        match &self.lengths {
            Some(l) => l.iter().sum(),
            None => self.steps * self.batch,
        }
    }
}

/// The lengths of `lstm-packed`: 32 sequences of 16 to 64 steps, `16 + (29·b mod 49)` (the
/// same formula in `tools/bench_torch.py`).
pub fn packed_lengths() -> Vec<usize> {
    (0..32).map(|b| 16 + (b * 29) % 49).collect()
}

/// What a case times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchKind {
    /// Forward + backward over `steps` steps.
    Train,
    /// Forward only (inference: no cache for a backward pass).
    Infer,
    /// One inference step with the state carried over.
    Stream,
    /// [`BenchKind::Stream`] with the stack quantized to int8 ([`Rnn::quantize`]).
    StreamInt8,
    /// One full training step of a Zaremba et al. word-level LM over a vocabulary of `vocab`
    /// types (Penn Treebank: 10,000; WikiText-2: 33,278).
    LmTrain {
        /// Vocabulary size: the embedding's rows and the decoder's outputs.
        vocab: usize,
    },
}

/// The contract's seven cases in its order, then `ptb-medium-train` and
/// `wikitext2-small-train` (issue 7), then the cases where PyTorch leaves its fused path
/// (`lstm-packed`, `lstm-proj`, `bilstm-med`, `lstm-med-dropout`), `lstm-stream-int8`
/// (issue 23) and forward-only (`-infer`) versions of the five training shapes (issue 20).
pub fn cases() -> Vec<BenchCase> {
    let train = |name, cell, layers, input, hidden, batch, steps| BenchCase {
        name,
        config: RnnConfig::new(cell, input, hidden).num_layers(layers),
        batch,
        steps,
        kind: BenchKind::Train,
        dropout: 0.0,
        lengths: None,
    };
    let infer = |name, cell, layers, input, hidden, batch, steps| BenchCase {
        kind: BenchKind::Infer,
        ..train(name, cell, layers, input, hidden, batch, steps)
    };
    let med = |name| train(name, CellKind::Lstm, 2, 256, 256, 32, 64);
    let mut more = vec![
        BenchCase {
            lengths: Some(packed_lengths()),
            ..med("lstm-packed")
        },
        BenchCase {
            config: med("").config.proj_size(64),
            ..med("lstm-proj")
        },
        BenchCase {
            config: med("").config.bidirectional(true),
            ..med("bilstm-med")
        },
        BenchCase {
            config: med("").config.dropout(0.3),
            ..med("lstm-med-dropout")
        },
        BenchCase {
            name: "lstm-stream-int8",
            config: RnnConfig::new(CellKind::Lstm, 256, 256).num_layers(2),
            batch: 1,
            steps: 1,
            kind: BenchKind::StreamInt8,
            dropout: 0.0,
            lengths: None,
        },
        infer("lstm-small-infer", CellKind::Lstm, 1, 32, 64, 16, 50),
        infer("lstm-med-infer", CellKind::Lstm, 2, 256, 256, 32, 64),
        infer("lstm-large-infer", CellKind::Lstm, 1, 1024, 1024, 64, 32),
        infer("gru-med-infer", CellKind::Gru, 2, 256, 256, 32, 64),
        infer("rnn-med-infer", CellKind::RnnTanh, 2, 256, 256, 32, 64),
    ];
    let mut all = vec![
        train("lstm-small", CellKind::Lstm, 1, 32, 64, 16, 50),
        train("lstm-med", CellKind::Lstm, 2, 256, 256, 32, 64),
        train("lstm-large", CellKind::Lstm, 1, 1024, 1024, 64, 32),
        train("gru-med", CellKind::Gru, 2, 256, 256, 32, 64),
        train("rnn-med", CellKind::RnnTanh, 2, 256, 256, 32, 64),
        BenchCase {
            name: "lstm-stream",
            config: RnnConfig::new(CellKind::Lstm, 256, 256).num_layers(2),
            batch: 1,
            steps: 1,
            kind: BenchKind::Stream,
            dropout: 0.0,
            lengths: None,
        },
        BenchCase {
            name: "ptb-small-train",
            config: RnnConfig::new(CellKind::Lstm, 200, 200).num_layers(2),
            batch: 20,
            steps: 20,
            kind: BenchKind::LmTrain { vocab: PTB_VOCAB },
            dropout: 0.0,
            lengths: None,
        },
        BenchCase {
            name: "ptb-medium-train",
            config: RnnConfig::new(CellKind::Lstm, 650, 650).num_layers(2),
            batch: 20,
            steps: 35,
            kind: BenchKind::LmTrain { vocab: PTB_VOCAB },
            dropout: 0.5,
            lengths: None,
        },
        // The small model on WikiText-2's 33,278 types: the decoder is most of the step.
        BenchCase {
            name: "wikitext2-small-train",
            config: RnnConfig::new(CellKind::Lstm, 200, 200).num_layers(2),
            batch: 20,
            steps: 20,
            kind: BenchKind::LmTrain {
                vocab: WIKITEXT2_VOCAB,
            },
            dropout: 0.0,
            lengths: None,
        },
    ];
    all.append(&mut more);
    all
}

/// Options of a benchmark run.
#[derive(Clone, Debug, Default)]
pub struct BenchOptions {
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Case names to run (empty: all).
    pub cases: Vec<String>,
    /// The recurrent products' arithmetic (bf16 needs AVX512-BF16: refused without it).
    pub precision: Precision,
}

/// The measurement of one case.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Case name.
    pub case: String,
    /// Tokens (time steps × batch, or the sum of a variable-length batch's lengths) per second;
    /// steps per second for streaming.
    pub tokens_per_s: f64,
    /// Median milliseconds per iteration.
    pub ms_per_iter: f64,
    /// Achieved GFLOP/s counting the GEMM work (2·m·n·k per product).
    pub gflop_per_s: f64,
    /// Timed iterations.
    pub iters: usize,
    /// Threads used.
    pub threads: usize,
}

impl BenchResult {
    /// The contract's JSON line: `{"case": NAME, "tokens_per_s": X, "ms_per_iter": Y}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "case": self.case,
            "tokens_per_s": self.tokens_per_s,
            "ms_per_iter": self.ms_per_iter,
        })
        .to_string()
    }
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<16} {:>12.0} tokens/s {:>10.3} ms/iter {:>8.1} GFLOP/s  ({} iters, {} threads)",
            self.case,
            self.tokens_per_s,
            self.ms_per_iter,
            self.gflop_per_s,
            self.iters,
            self.threads
        )
    }
}

/// GEMM flops of one iteration: forward is `2·T·B·G·H·(I_k + P)` per layer and direction
/// (plus the projection and, for the LM step, the decoder), backward twice that.
fn flops(case: &BenchCase) -> f64 {
    let c = &case.config;
    let rows = case.tokens() as f64;
    let per_layer: f64 = (0..c.num_layers)
        .map(|l| {
            let gates = (c.gate_size() * (c.layer_input_size(l) + c.h_out())) as f64;
            let proj = if c.proj_size > 0 {
                (c.hidden_size * c.proj_size) as f64
            } else {
                0.0
            };
            2.0 * rows * (gates + proj) * c.num_directions() as f64
        })
        .sum();
    match case.kind {
        BenchKind::Train => 3.0 * per_layer,
        // The decoder's product (`vocab` outputs) counts too; forward + backward.
        BenchKind::LmTrain { vocab } => {
            3.0 * (per_layer + 2.0 * rows * (c.output_size() * vocab) as f64)
        }
        BenchKind::Stream | BenchKind::StreamInt8 | BenchKind::Infer => per_layer,
    }
}

/// Runs the selected cases, calling `report` as each finishes.
pub fn run(opts: &BenchOptions, mut report: impl FnMut(&BenchResult)) -> Result<()> {
    let all = cases();
    for name in &opts.cases {
        if !all.iter().any(|c| c.name == name) {
            let names: Vec<&str> = all.iter().map(|c| c.name).collect();
            return Err(Error::Config(format!(
                "unknown bench case `{name}`; cases: {}",
                names.join(", ")
            )));
        }
    }
    if let Some(notice) = opts.precision.fallback_notice() {
        return Err(Error::Config(
            format!("--precision: {notice}")
                .replace("; training in f32 instead", "; measure f32 instead"),
        ));
    }
    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(Error::Config("--threads must be at least 1".into()));
    }
    let threads = crate::resources::worker_threads(threads)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))?;
    for case in all
        .iter()
        .filter(|c| opts.cases.is_empty() || opts.cases.iter().any(|n| n == c.name))
    {
        let result = pool.install(|| run_case(case, threads, opts.precision))?;
        report(&result);
    }
    Ok(())
}

fn random3(shape: (usize, usize, usize), rng: &mut ChaCha8Rng) -> Array3<f32> {
    Array3::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

fn run_case(case: &BenchCase, threads: usize, precision: Precision) -> Result<BenchResult> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut rnn = Rnn::new(case.config.clone(), &Init::default(), 1)?;
    rnn.set_precision(precision);
    let times = match case.kind {
        BenchKind::Train => {
            let x = random3((case.steps, case.batch, case.config.input_size), &mut rng);
            let mut dy = Array3::ones((case.steps, case.batch, case.config.output_size()));
            let lengths = case.lengths.as_deref();
            // An upstream gradient only where a sequence has steps, as PyTorch's packed one.
            for (b, &len) in lengths.unwrap_or_default().iter().enumerate() {
                dy.slice_mut(ndarray::s![len.., b, ..]).fill(0.0);
            }
            let mut grads = RnnParams::zeros(rnn.config());
            time_iterations(|| {
                let (_, cache) = rnn.forward_train(x.view(), None, lengths, &mut rng)?;
                rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut grads)?;
                Ok(())
            })?
        }
        BenchKind::Infer => {
            let x = random3((case.steps, case.batch, case.config.input_size), &mut rng);
            time_iterations(|| rnn.forward(x.view(), None, None).map(|_| ()))?
        }
        BenchKind::Stream | BenchKind::StreamInt8 => {
            if case.kind == BenchKind::StreamInt8 {
                rnn.quantize();
            }
            let x = Array2::from_shape_simple_fn((1, case.config.input_size), || {
                rng.random_range(-1.0..1.0)
            });
            let mut state = RnnState::zeros(rnn.config(), 1);
            time_iterations(|| rnn.step(x.view(), &mut state).map(|_| ()))?
        }
        BenchKind::LmTrain { vocab } => time_lm_step(case, vocab, precision, &mut rng)?,
    };
    let iters = times.len();
    let secs = median(times);
    let tokens = case.tokens() as f64;
    Ok(BenchResult {
        case: case.name.to_string(),
        tokens_per_s: tokens / secs,
        ms_per_iter: secs * 1e3,
        gflop_per_s: flops(case) / secs / 1e9,
        iters,
        threads,
    })
}

/// A Zaremba et al. (2014) LM step: embedding vocab→I, the case's stack (with its dropout),
/// decoder to vocab, cross-entropy over `steps × batch` random tokens, state carried (detached),
/// global-norm clipping at 5, SGD with lr 1.
fn time_lm_step(
    case: &BenchCase,
    vocab: usize,
    precision: Precision,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>> {
    let config = case.config.clone().dropout(case.dropout);
    let mut lm = LanguageModel::new(vocab, config, 1)?;
    crate::models::TrainStep::set_precision(&mut lm, precision);
    lm.set_dropout(crate::models::LmDropout {
        input: case.dropout,
        output: case.dropout,
        elementwise: true,
        ..Default::default()
    })?;
    let tokens = ndarray::Array2::from_shape_simple_fn((case.steps + 1, case.batch), || {
        rng.random_range(0..vocab as u32)
    });
    let x = tokens.slice(ndarray::s![..case.steps, ..]).to_owned();
    let y = tokens.slice(ndarray::s![1.., ..]).to_owned();
    let mut state = RnnState::zeros(&case.config, case.batch);
    let mut grads = Grads::zeros_like(&lm);
    time_iterations(|| {
        grads.fill_zero();
        lm.train_chunk(x.view(), y.view(), &mut state, &mut grads, rng)?;
        clip_grad_norm(&mut grads.slices_mut(), 5.0)?;
        module::for_each_with_grad(&mut lm, &grads, |_, p, g| {
            crate::kernels::elementwise::axpy(p, -1.0, g)
        });
        Ok(())
    })
}

/// Warm-up, then at least 10 iterations and about 2 s; returns per-iteration seconds.
fn time_iterations(mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    let warm = Instant::now();
    let mut warm_iters = 0;
    while warm_iters < 3 || (warm.elapsed() < Duration::from_millis(300) && warm_iters < 1000) {
        f()?;
        warm_iters += 1;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 10 || (start.elapsed() < Duration::from_secs(2) && times.len() < 100_000) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(times)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
