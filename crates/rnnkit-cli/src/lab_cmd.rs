//! `rnnkit lab vanishing`: why gated cells and clipping exist, measured. A tanh RNN, an LSTM
//! and a GRU of about the same parameter count learn the adding problem at growing lengths;
//! for each we record the learning curve, whether and when it solves the task (validation MSE
//! below 0.01, against 0.167 for always answering 1), and the norm of the gradient of the
//! last step's loss with respect to each earlier hidden state, ‖∂L/∂h_{T−1−d}‖, as a function
//! of the distance d. A tanh RNN given large recurrent weights shows the other failure,
//! explosion, trained with and without clipping.
//!
//! Writes `report.md` (the results table and what it shows), `results.json`, and PNG charts:
//! `grad_vs_distance_init.png` and `grad_vs_distance_trained.png` (log scale), and a
//! learning-curve chart per length and for the explosion runs.

use anyhow::{Context, Result};
use rnnkit::data::synthetic::AddingProblem;
use rnnkit::diagnostics::{GateStats, GradientProfile, gate_stats};
use rnnkit::lab::TruncatedForecaster;
use rnnkit::models::Forecaster;
use rnnkit::module::{self, Module};
use rnnkit::optim::{AdamConfig, OptimizerConfig};
#[cfg(feature = "plot")]
use rnnkit::plot::LineChart;
use rnnkit::train::{EpochReport, Reporter};
use rnnkit::train::{TrainConfig, Trainer};
use rnnkit::{CellKind, RnnConfig};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `rnnkit lab vanishing` was given.
pub struct VanishingArgs {
    /// About one minute instead of about ten: lengths 20 and 50, fewer examples and epochs.
    pub quick: bool,
    /// Sequence lengths to try (default 20, 50, 100, 200, 400).
    pub lengths: Vec<usize>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Worker threads; 0 means all cores.
    pub threads: usize,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// Validation MSE below which the adding problem counts as solved.
const SOLVED: f64 = 0.01;
/// Examples in each gradient measurement.
const PROBE_BATCH: usize = 32;

/// One trained model of the lab.
#[derive(Clone, Debug)]
struct Arm {
    name: String,
    cell: CellKind,
    hidden: usize,
    length: usize,
    clip: Option<f32>,
    /// Multiplies the recurrent weights after the default initialization.
    init_scale: f32,
    /// Plain SGD (lr 0.1) instead of Adam (lr 1e-2): Adam divides each step by the gradient's
    /// running size, which hides an explosion; SGD steps in proportion to it, as in Pascanu et
    /// al. (2013), so clipping is what keeps it finite.
    sgd: bool,
    /// Truncated BPTT: the gradient reaches back only this many steps (`None`: all of them).
    truncate: Option<usize>,
}

/// What one arm measured.
#[derive(Clone, Debug, Serialize)]
struct ArmResult {
    name: String,
    cell: String,
    hidden: usize,
    params: usize,
    length: usize,
    clip: Option<f32>,
    init_scale: f32,
    truncate: Option<usize>,
    test_mse: f64,
    best_val_mse: f64,
    solved: bool,
    steps_to_solve: Option<u64>,
    steps: u64,
    skipped: u64,
    clip_rate: f64,
    /// The divergence guard stopped the run (non-finite loss or gradients, again and again).
    diverged: bool,
    /// The largest gradient norm before clipping over the run.
    max_grad_norm: f64,
    optimizer: String,
    seconds: f64,
    /// (step, validation MSE) at the end of each epoch.
    curve: Vec<(u64, f64)>,
    /// (step, gradient norm before clipping), kept for the large-init runs only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    grad_norms: Vec<(u64, f64)>,
    grad_init: GradientProfile,
    grad_trained: GradientProfile,
    gates: Vec<GateStats>,
}

/// Collects the validation curve and the largest gradient norm.
struct Curve {
    steps_per_epoch: u64,
    points: Vec<(u64, f64)>,
    max_grad_norm: f64,
    /// (step, gradient norm before clipping) of every step.
    grad_norms: Vec<(u64, f64)>,
}

impl Reporter for Curve {
    fn step(&mut self, r: &rnnkit::train::StepReport) {
        let g = f64::from(r.grad_norm);
        self.grad_norms.push((r.step, g));
        if g.is_finite() {
            self.max_grad_norm = self.max_grad_norm.max(g);
        } else {
            self.max_grad_norm = f64::INFINITY;
        }
    }

    fn epoch(&mut self, r: &EpochReport) {
        self.points
            .push(((r.epoch as u64 + 1) * self.steps_per_epoch, r.val_loss));
    }
}

/// Runs the lab.
pub fn vanishing(args: VanishingArgs) -> Result<()> {
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let pool = crate::train_cmd::rayon_pool(threads)?;
    pool.install(|| run_lab(&args))
}

/// Sizes of one lab run.
struct Budget {
    train: usize,
    valid: usize,
    test: usize,
    batch: usize,
    epochs: usize,
}

fn arms(lengths: &[usize], quick: bool) -> Vec<Arm> {
    // About 17k parameters each: H = 128 (tanh RNN), 64 (LSTM), 74 (GRU) on 2 inputs.
    let cells = [
        (CellKind::RnnTanh, 128, "tanh RNN"),
        (CellKind::Lstm, 64, "LSTM"),
        (CellKind::Gru, 74, "GRU"),
    ];
    let mut out = Vec::new();
    for &t in lengths {
        for (cell, hidden, name) in cells {
            out.push(Arm {
                name: format!("{name} {hidden}"),
                cell,
                hidden,
                length: t,
                clip: Some(1.0),
                init_scale: 1.0,
                sgd: false,
                truncate: None,
            });
        }
    }
    // Without clipping, at a middle length; and the explosion: a tanh RNN whose recurrent
    // weights start 4× PyTorch's scale, with and without clipping.
    let mid = if quick {
        *lengths.last().unwrap_or(&50)
    } else {
        lengths.iter().copied().find(|&t| t >= 100).unwrap_or(100)
    };
    for (cell, hidden, name) in cells {
        out.push(Arm {
            name: format!("{name} {hidden}, no clipping"),
            cell,
            hidden,
            length: mid,
            clip: None,
            init_scale: 1.0,
            sgd: false,
            truncate: None,
        });
    }
    for clip in [None, Some(1.0)] {
        out.push(Arm {
            name: format!(
                "tanh RNN 128, recurrent init ×4, SGD, {}",
                if clip.is_some() {
                    "clipped at 1"
                } else {
                    "no clipping"
                }
            ),
            cell: CellKind::RnnTanh,
            hidden: 128,
            length: mid,
            clip,
            init_scale: 4.0,
            sgd: true,
            truncate: None,
        });
    }
    // Truncated BPTT: an LSTM whose gradient reaches back only part of the sequence. The first
    // marker lies in the first half, so below T/2 steps back it is never taught.
    for k in [mid * 3 / 4, mid / 2, mid / 4] {
        out.push(Arm {
            name: format!("LSTM 64, truncated BPTT k = {k}"),
            cell: CellKind::Lstm,
            hidden: 64,
            length: mid,
            clip: Some(1.0),
            init_scale: 1.0,
            sgd: false,
            truncate: Some(k.max(1)),
        });
    }
    out
}

/// Adam's learning rate per cell, each the better of 1e-3, 3e-3 and 1e-2 on the adding problem
/// at T = 20 here: the tanh RNN does not learn even T = 20 at 1e-2, the gated cells learn
/// fastest there.
fn adam_lr(cell: CellKind) -> f64 {
    match cell {
        CellKind::RnnTanh | CellKind::RnnRelu => 3e-3,
        _ => 1e-2,
    }
}

fn run_arm(arm: &Arm, budget: &Budget, quiet: bool) -> Result<ArmResult> {
    let task = AddingProblem {
        length: arm.length,
        seed: 0,
        ..Default::default()
    };
    let sets = task.splits(budget.train, budget.valid, budget.test)?;
    let rnn = RnnConfig::new(arm.cell, AddingProblem::FEATURES, arm.hidden);
    let mut model = Forecaster::new(rnn, 1, 1, 0)?;
    if arm.init_scale != 1.0 {
        // Scale the recurrent matrices, by name as PyTorch spells them.
        model.visit_params_mut("", &mut |name, t| {
            if name.starts_with("rnn.weight_hh") {
                t.data.iter_mut().for_each(|w| *w *= arm.init_scale);
            }
        });
    }
    let params = module::num_params(&model);
    let probe_idx: Vec<usize> = (0..PROBE_BATCH.min(budget.valid)).collect();
    let probe = sets.val.batch(&probe_idx)?;
    let ds = rnnkit::diagnostics::default_distances(arm.length);
    let grad_init = model.gradient_profile(&probe, &ds)?;

    let config = TrainConfig {
        epochs: budget.epochs,
        batch_size: budget.batch,
        eval_batch_size: 500,
        clip_norm: arm.clip,
        optimizer: if arm.sgd {
            OptimizerConfig::Sgd(rnnkit::optim::SgdConfig {
                lr: 0.1,
                ..Default::default()
            })
        } else {
            OptimizerConfig::Adam(AdamConfig {
                lr: adam_lr(arm.cell),
                ..Default::default()
            })
        },
        patience: None,
        stop_below: Some(SOLVED),
        ..Default::default()
    };
    let train = sets.train.batches(budget.batch, true, 0)?;
    let val = sets.val.batches(500, false, 0)?;
    let test = sets.test.batches(500, false, 0)?;
    let model = TruncatedForecaster {
        k: arm.truncate.unwrap_or(arm.length),
        inner: model,
    };
    let mut trainer = Trainer::new(model, config, None)?;
    let mut curve = Curve {
        steps_per_epoch: budget.train.div_ceil(budget.batch) as u64,
        points: Vec::new(),
        max_grad_norm: 0.0,
        grad_norms: Vec::new(),
    };
    let started = Instant::now();
    // A run that diverges (the divergence guard gives up) is a result here, not a failure.
    let outcome = trainer.run(&train, &val, Some(&test), &mut curve);
    let seconds = started.elapsed().as_secs_f64();
    let (summary, diverged) = match outcome {
        Ok(s) => (Some(s), None),
        Err(rnnkit::Error::Diverged(msg)) => (None, Some(msg)),
        Err(e) => return Err(e.into()),
    };
    let grad_trained = trainer.model().inner.gradient_profile(&probe, &ds)?;
    let gates = gate_stats(trainer.model().inner.rnn(), probe.inputs.view())?;
    let best_val = summary
        .as_ref()
        .and_then(|s| s.best_val)
        .map_or(f64::NAN, |b| b.0);
    let steps_to_solve = curve.points.iter().find(|p| p.1 < SOLVED).map(|p| p.0);
    let r = ArmResult {
        name: arm.name.clone(),
        cell: arm.cell.to_string(),
        hidden: arm.hidden,
        params,
        length: arm.length,
        clip: arm.clip,
        init_scale: arm.init_scale,
        truncate: arm.truncate,
        test_mse: summary
            .as_ref()
            .and_then(|s| s.test)
            .map_or(f64::NAN, |e| e.loss),
        best_val_mse: best_val,
        solved: steps_to_solve.is_some(),
        steps_to_solve,
        steps: trainer.progress().step,
        skipped: trainer.progress().skipped,
        clip_rate: summary.as_ref().map_or(0.0, |s| s.clip_rate),
        diverged: diverged.is_some(),
        max_grad_norm: curve.max_grad_norm,
        optimizer: if arm.sgd {
            "SGD 0.1".into()
        } else {
            format!("Adam {:.0e}", adam_lr(arm.cell))
        },
        seconds,
        grad_norms: if arm.init_scale != 1.0 {
            curve.grad_norms
        } else {
            Vec::new()
        },
        curve: curve.points,
        grad_init,
        grad_trained,
        gates,
    };
    if !quiet {
        eprintln!(
            "T={:<4} {:<44} test MSE {:.4} {} ({} steps, {:.0} s; ‖∂L/∂h‖ decay per step at init {})",
            r.length,
            r.name,
            r.test_mse,
            match (r.steps_to_solve, r.diverged) {
                (_, true) => "DIVERGED".into(),
                (Some(s), _) => format!("solved at step {s}"),
                (None, _) => "not solved".into(),
            },
            r.steps,
            r.seconds,
            r.grad_init
                .decay_rate()
                .map_or("-".into(), |d| format!("{d:.3}"))
        );
    }
    Ok(r)
}

fn run_lab(args: &VanishingArgs) -> Result<()> {
    let lengths = if !args.lengths.is_empty() {
        args.lengths.clone()
    } else if args.quick {
        vec![20, 50]
    } else {
        vec![20, 50, 100, 200, 400]
    };
    if let Some(bad) = lengths.iter().find(|&&t| t < 2) {
        return Err(crate::run_config::usage(format!(
            "--lengths: {bad} is too short; the adding problem needs at least 2 steps"
        )));
    }
    let budget = if args.quick {
        Budget {
            train: 4_000,
            valid: 500,
            test: 500,
            batch: 50,
            epochs: 10,
        }
    } else {
        Budget {
            train: 10_000,
            valid: 1_000,
            test: 1_000,
            batch: 50,
            epochs: 20,
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let started = Instant::now();
    let mut results = Vec::new();
    for arm in arms(&lengths, args.quick) {
        results.push(run_arm(&arm, &budget, args.quiet)?);
    }
    let seconds = started.elapsed().as_secs_f64();
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let plots = write_charts(&args.out, &results, &lengths)?;
    let report = write_report(&args.out, &results, &budget, &plots, seconds, args.quick)?;
    if !args.quiet {
        eprintln!("{:.0} s in all\nreport {}", seconds, report.display());
    }
    Ok(())
}

#[cfg(feature = "plot")]
fn write_charts(out: &Path, results: &[ArmResult], lengths: &[usize]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let longest = *lengths.iter().max().unwrap_or(&20);
    let main = |r: &ArmResult| r.clip.is_some() && r.init_scale == 1.0 && r.truncate.is_none();
    // Gradient norm against distance at the longest length, one curve per cell; the large-init
    // RNN joins them on the init chart.
    for (which, file, title) in [
        (0, "grad_vs_distance_init.png", "at initialization"),
        (1, "grad_vs_distance_trained.png", "after training"),
    ] {
        let mut chart = LineChart::new(format!(
            "‖∂L/∂h_(T−1−d)‖ for the loss at the last step, T = {longest}, {title}"
        ))
        .x_label("distance back in time d (steps)")
        .y_label("gradient norm (mean over 32 sequences)")
        .log_y(true);
        for r in results.iter().filter(|r| r.length == longest && main(r)) {
            let g = if which == 0 {
                &r.grad_init
            } else {
                &r.grad_trained
            };
            chart = chart.series(r.name.clone(), profile_points(g));
        }
        if which == 0
            && let Some(r) = results
                .iter()
                .find(|r| r.init_scale != 1.0 && r.clip.is_none())
        {
            chart = chart.series(
                format!("tanh RNN 128, recurrent init ×4 (T = {})", r.length),
                profile_points(&r.grad_init),
            );
        }
        chart
            .save_png(out.join(file))
            .with_context(|| format!("drawing {file}"))?;
        names.push(file.to_string());
    }
    // Learning curves per length.
    for &t in lengths {
        let mut chart = LineChart::new(format!("Adding problem, T = {t}: validation MSE"))
            .x_label("step")
            .y_label("validation MSE")
            .log_y(true)
            .reference_line("baseline: always 1 (1/6)", AddingProblem::baseline_mse())
            .reference_line("solved (0.01)", SOLVED);
        for r in results.iter().filter(|r| r.length == t && main(r)) {
            chart = chart.series(
                r.name.clone(),
                r.curve
                    .iter()
                    .map(|&(s, v)| (s as f64, v))
                    .collect::<Vec<_>>(),
            );
        }
        let file = format!("learning_T{t}.png");
        chart
            .save_png(out.join(&file))
            .with_context(|| format!("drawing {file}"))?;
        names.push(file);
    }
    // Clipping: the runs without it and the explosion runs.
    let other: Vec<&ArmResult> = results
        .iter()
        .filter(|r| !main(r) && r.truncate.is_none())
        .collect();
    if let Some(first) = other.first() {
        let mut chart = LineChart::new(format!(
            "Without clipping, and a large recurrent init (T = {})",
            first.length
        ))
        .x_label("step")
        .y_label("validation MSE")
        .log_y(true)
        .reference_line("baseline (1/6)", AddingProblem::baseline_mse());
        for r in &other {
            let pts: Vec<(f64, f64)> = r.curve.iter().map(|&(s, v)| (s as f64, v)).collect();
            if !pts.is_empty() {
                chart = chart.series(r.name.clone(), pts);
            }
        }
        chart
            .save_png(out.join("clipping.png"))
            .context("drawing clipping.png")?;
        names.push("clipping.png".into());
    }
    // Truncated BPTT against full backpropagation, at the same length.
    let truncated: Vec<&ArmResult> = results.iter().filter(|r| r.truncate.is_some()).collect();
    if let Some(first) = truncated.first() {
        let t = first.length;
        let mut chart = LineChart::new(format!(
            "LSTM 64, T = {t}: the gradient reaches back k steps (truncated BPTT)"
        ))
        .x_label("step")
        .y_label("validation MSE")
        .log_y(true)
        .reference_line("baseline: always 1 (1/6)", AddingProblem::baseline_mse())
        .reference_line("knowing one value: 1/12", 1.0 / 12.0);
        let full = results
            .iter()
            .find(|r| main(r) && r.length == t && r.cell == CellKind::Lstm.to_string());
        for r in full.into_iter().chain(truncated.iter().copied()) {
            let label = r
                .truncate
                .map_or(format!("full BPTT (k = {t})"), |k| format!("k = {k}"));
            let pts: Vec<(f64, f64)> = r.curve.iter().map(|&(s, v)| (s as f64, v)).collect();
            chart = chart.series(label, pts);
        }
        chart
            .save_png(out.join("tbptt.png"))
            .context("drawing tbptt.png")?;
        names.push("tbptt.png".into());
    }
    // The explosion: gradient norms before clipping, step by step.
    let exploding: Vec<&ArmResult> = results
        .iter()
        .filter(|r| !r.grad_norms.is_empty())
        .collect();
    if let Some(first) = exploding.first() {
        let mut chart = LineChart::new(format!(
            "Exploding gradients: tanh RNN, recurrent init ×4, SGD 0.1, T = {}",
            first.length
        ))
        .x_label("step")
        .y_label("gradient norm before clipping")
        .log_y(true)
        .reference_line("clip threshold (1)", 1.0);
        for r in &exploding {
            let label = if r.diverged {
                format!(
                    "{} (diverged at step {})",
                    r.clip
                        .map_or("no clipping".into(), |c| format!("clipped at {c}")),
                    r.steps
                )
            } else {
                r.clip
                    .map_or("no clipping".into(), |c| format!("clipped at {c}"))
            };
            let pts: Vec<(f64, f64)> = r.grad_norms.iter().map(|&(s, g)| (s as f64, g)).collect();
            chart = chart.series(label, pts);
        }
        chart
            .save_png(out.join("explosion.png"))
            .context("drawing explosion.png")?;
        names.push("explosion.png".into());
    }
    Ok(names)
}

/// Built without the `plot` feature, the lab draws no charts and its report links none.
#[cfg(not(feature = "plot"))]
fn write_charts(_out: &Path, _results: &[ArmResult], _lengths: &[usize]) -> Result<Vec<String>> {
    Ok(Vec::new())
}

#[cfg(feature = "plot")]
fn profile_points(g: &GradientProfile) -> Vec<(f64, f64)> {
    g.distances
        .iter()
        .zip(&g.norm)
        .map(|(&d, &n)| (d as f64, n))
        .collect()
}

fn fmt_rate(g: &GradientProfile) -> String {
    g.decay_rate().map_or("-".into(), |d| format!("{d:.3}"))
}

/// ‖∂L/∂h‖ at the farthest distance over that at d = 0.
fn far_ratio(g: &GradientProfile) -> String {
    match (g.norm.first(), g.norm.last()) {
        // Below f32's smallest number the gradient is exactly zero: it has vanished.
        (Some(&n0), Some(&nf)) if n0 > 0.0 && nf == 0.0 => "0 (underflow)".into(),
        (Some(&n0), Some(&nf)) if n0 > 0.0 && nf.is_finite() => format!("{:.1e}", nf / n0),
        _ => "-".into(),
    }
}

fn write_report(
    out: &Path,
    results: &[ArmResult],
    budget: &Budget,
    plots: &[String],
    seconds: f64,
    quick: bool,
) -> Result<PathBuf> {
    let mut md = String::new();
    let cmd = std::env::args().collect::<Vec<_>>().join(" ");
    md.push_str(&format!(
        "# The vanishing-gradient lab: the adding problem\n\n```sh\n{cmd}\n```\n\n\
         Each model learns the adding problem (the sum of the two marked values among T (value, \
         marker) pairs; always answering 1 scores MSE {:.3}) from {} generated sequences, Adam \
         (3e-3 for the tanh RNN, 1e-2 for LSTM and GRU: each cell's better rate at T = 20; the \
         large-init runs use plain SGD 0.1, whose steps grow with the gradient as Adam's do \
         not), batches of {}, at most {} epochs, stopping once validation MSE is below {SOLVED} \
         (solved). Gradient norms are ‖∂L/∂h_(T−1−d)‖ for the MSE at the last step, the mean \
         over 32 validation sequences; the decay rate is the per-step factor fitted to \
         ln ‖∂L/∂h‖ against d (below 1: vanishing; above 1: exploding). Total time {:.0} s{}.\n\n",
        AddingProblem::baseline_mse(),
        budget.train,
        budget.batch,
        budget.epochs,
        seconds,
        if quick { " (--quick)" } else { "" }
    ));
    md.push_str(
        "| model | params | T | optimizer | clipping | test MSE | solved at step | decay per \
         step, init | ‖∂L/∂h‖ at d=T−1 ÷ d=0, init | same, trained | max ‖g‖ | clipped steps | \
         skipped |\n\
         |---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.4} | {} | {} | {} | {} | {:.2e} | {:.0}% | {} |\n",
            r.name,
            r.params,
            r.length,
            r.optimizer,
            r.clip.map_or("off".into(), |c| format!("at {c}")),
            r.test_mse,
            if r.diverged {
                "diverged".into()
            } else {
                r.steps_to_solve
                    .map_or("not solved".into(), |s| s.to_string())
            },
            fmt_rate(&r.grad_init),
            far_ratio(&r.grad_init),
            if r.diverged {
                "-".into()
            } else {
                far_ratio(&r.grad_trained)
            },
            r.max_grad_norm,
            100.0 * r.clip_rate,
            r.skipped
        ));
    }
    let gated: Vec<&ArmResult> = results
        .iter()
        .filter(|r| !r.gates.is_empty() && r.clip.is_some())
        .collect();
    if !gated.is_empty() {
        md.push_str(
            "\n## Gates after training (32 validation sequences, all steps)\n\n\
             | model | T | gate | mean | fraction > 0.95 | fraction < 0.05 |\n\
             |---|---:|---|---:|---:|---:|\n",
        );
        for r in gated {
            for g in &r.gates[0].gates {
                md.push_str(&format!(
                    "| {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
                    r.name, r.length, g.gate, g.mean, g.frac_high, g.frac_low
                ));
            }
        }
    }
    md.push_str("\n## Charts\n\n");
    for p in plots {
        md.push_str(&format!("![{p}]({p})\n\n"));
    }
    let path = out.join("report.md");
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(md.as_bytes())?;
    Ok(path)
}
