//! The vanishing-gradient lab: why gated cells and clipping exist, measured. A tanh RNN, an LSTM
//! and a GRU of about the same parameter count learn the adding problem at growing lengths; for
//! each we record the learning curve, whether and when it solves the task (validation MSE below
//! [`SOLVED`], against 0.167 for always answering 1), and the norm of the gradient of the last
//! step's loss with respect to each earlier hidden state, ‖∂L/∂h_{T−1−d}‖, as a function of the
//! distance d. A tanh RNN given large recurrent weights shows the other failure, explosion,
//! trained with and without clipping; an LSTM trained with truncated BPTT shows what a gradient
//! that stops short cannot teach.
//!
//! [`run`] trains every [`Arm`] of [`arms`] and writes, into one folder, `report.md` (the
//! results table and the gate statistics), `results.json` (every [`ArmResult`]) and, with the
//! `plot` feature, PNG charts: `grad_vs_distance_init.png` and `grad_vs_distance_trained.png`
//! (log scale), a learning-curve chart per length (`learning_T{T}.png`), `clipping.png`,
//! `tbptt.png` and `explosion.png`. [`run_arm`] trains and measures one arm alone.
//!
//! The lab prints nothing: it hands each finished arm to the caller, whose
//! [`ArmResult::summary`] is a one-line account of it.

use super::TruncatedForecaster;
use super::vanishing_report::{write_charts, write_report};
use crate::data::synthetic::AddingProblem;
use crate::diagnostics::{GateStats, GradientProfile, default_distances, gate_stats};
use crate::error::{Error, Result};
use crate::models::Forecaster;
use crate::module::{self, Module};
use crate::optim::{AdamConfig, OptimizerConfig, SgdConfig};
use crate::train::{EpochReport, Reporter, StepReport, TrainConfig, Trainer};
use crate::{CellKind, RnnConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Validation MSE below which the adding problem counts as solved.
pub const SOLVED: f64 = 0.01;
/// Examples in each gradient measurement.
const PROBE_BATCH: usize = 32;

/// What the lab runs: plain data, turned into [`arms`] and a [`Budget`].
///
/// ```
/// use rnnkit::lab::vanishing::{self, LabConfig};
/// let quick = LabConfig { quick: true, ..Default::default() };
/// assert_eq!(quick.resolved_lengths(), [20, 50]);
/// // Three cells per length, then three without clipping, two large-init runs and three
/// // truncated-BPTT runs at one middle length.
/// assert_eq!(vanishing::arms(&quick).len(), 2 * 3 + 3 + 2 + 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabConfig {
    /// Sequence lengths to try, each at least 2. Empty (the default): 20 and 50 when `quick`,
    /// else 20, 50, 100, 200 and 400.
    pub lengths: Vec<usize>,
    /// About 20 seconds instead of about 7 minutes on 2 cores: [`Budget::quick`] instead of
    /// [`Budget::full`], and lengths 20 and 50 unless `lengths` says otherwise. Default false.
    pub quick: bool,
    /// Examples and epochs; `None` (the default): chosen by `quick`.
    pub budget: Option<Budget>,
    /// The command line shown at the top of `report.md`; `None` (the default): none shown.
    pub command: Option<String>,
}

impl LabConfig {
    /// The lengths the lab runs: `lengths`, or the default for `quick`.
    pub fn resolved_lengths(&self) -> Vec<usize> {
        if !self.lengths.is_empty() {
            self.lengths.clone()
        } else if self.quick {
            vec![20, 50]
        } else {
            vec![20, 50, 100, 200, 400]
        }
    }

    /// The examples and epochs of each arm: `budget`, or the default for `quick`.
    pub fn resolved_budget(&self) -> Budget {
        self.budget.unwrap_or(if self.quick {
            Budget::quick()
        } else {
            Budget::full()
        })
    }

    /// [`Error::Config`] naming the first length below 2 or the budget's zero size.
    pub fn validate(&self) -> Result<()> {
        if let Some(bad) = self.lengths.iter().find(|&&t| t < 2) {
            return Err(Error::Config(format!(
                "lengths: {bad} is too short; the adding problem needs at least 2 steps"
            )));
        }
        self.resolved_budget().validate()
    }
}

/// The sizes of one lab run, the same for every arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Training sequences.
    pub train: usize,
    /// Validation sequences (the first 32 also measure the gradients and the gates).
    pub valid: usize,
    /// Test sequences.
    pub test: usize,
    /// Sequences per optimizer step.
    pub batch: usize,
    /// Most epochs; training stops early once validation MSE is below [`SOLVED`].
    pub epochs: usize,
}

impl Budget {
    /// 4 000 training sequences, 500 validation and 500 test, batches of 50, 10 epochs.
    pub fn quick() -> Self {
        Budget {
            train: 4_000,
            valid: 500,
            test: 500,
            batch: 50,
            epochs: 10,
        }
    }

    /// 10 000 training sequences, 1 000 validation and 1 000 test, batches of 50, 20 epochs.
    pub fn full() -> Self {
        Budget {
            train: 10_000,
            valid: 1_000,
            test: 1_000,
            batch: 50,
            epochs: 20,
        }
    }

    fn validate(&self) -> Result<()> {
        for (name, n) in [
            ("train", self.train),
            ("valid", self.valid),
            ("test", self.test),
            ("batch", self.batch),
            ("epochs", self.epochs),
        ] {
            if n == 0 {
                return Err(Error::Config(format!("budget.{name}: must be at least 1")));
            }
        }
        Ok(())
    }
}

/// One model of the lab and how it is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    /// Shown in the report and the charts, e.g. `LSTM 64, no clipping`.
    pub name: String,
    /// The cell.
    pub cell: CellKind,
    /// Hidden size.
    pub hidden: usize,
    /// Sequence length T.
    pub length: usize,
    /// Gradient-norm clipping threshold (`None`: no clipping).
    pub clip: Option<f32>,
    /// Multiplies the recurrent weights after the default initialization.
    pub init_scale: f32,
    /// Plain SGD (lr 0.1) instead of Adam (lr 1e-2): Adam divides each step by the gradient's
    /// running size, which hides an explosion; SGD steps in proportion to it, as in Pascanu et
    /// al. (2013), so clipping is what keeps it finite.
    pub sgd: bool,
    /// Truncated BPTT: the gradient reaches back only this many steps (`None`: all of them).
    pub truncate: Option<usize>,
}

/// What one arm measured; `results.json` is a list of these (NaN and infinite numbers as
/// `null`).
#[derive(Clone, Debug, Serialize)]
pub struct ArmResult {
    /// The arm's name.
    pub name: String,
    /// The cell, as [`CellKind`] displays it.
    pub cell: String,
    /// Hidden size.
    pub hidden: usize,
    /// Trainable parameters.
    pub params: usize,
    /// Sequence length T.
    pub length: usize,
    /// Clipping threshold.
    pub clip: Option<f32>,
    /// Recurrent-weight scale at initialization.
    pub init_scale: f32,
    /// Truncated-BPTT reach.
    pub truncate: Option<usize>,
    /// Test MSE of the best weights (NaN when the run diverged).
    pub test_mse: f64,
    /// Best validation MSE (NaN when the run diverged).
    pub best_val_mse: f64,
    /// Validation MSE went below [`SOLVED`].
    pub solved: bool,
    /// The step at the end of the first epoch whose validation MSE was below [`SOLVED`].
    pub steps_to_solve: Option<u64>,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Steps skipped for non-finite gradients.
    pub skipped: u64,
    /// Fraction of steps whose gradient was clipped.
    pub clip_rate: f64,
    /// The divergence guard stopped the run (non-finite loss or gradients, again and again).
    pub diverged: bool,
    /// The largest gradient norm before clipping over the run.
    pub max_grad_norm: f64,
    /// The optimizer and its learning rate, e.g. `Adam 1e-2`.
    pub optimizer: String,
    /// Training time.
    pub seconds: f64,
    /// (step, validation MSE) at the end of each epoch.
    pub curve: Vec<(u64, f64)>,
    /// (step, gradient norm before clipping), kept for the large-init runs only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grad_norms: Vec<(u64, f64)>,
    /// ‖∂L/∂h‖ against distance at initialization.
    pub grad_init: GradientProfile,
    /// ‖∂L/∂h‖ against distance after training.
    pub grad_trained: GradientProfile,
    /// Gate activations after training, per layer.
    pub gates: Vec<GateStats>,
}

impl ArmResult {
    /// One line: length, name, test MSE, solved or not, steps, time and the gradient's decay
    /// per step at initialization.
    pub fn summary(&self) -> String {
        format!(
            "T={:<4} {:<44} test MSE {:.4} {} ({} steps, {:.0} s; ‖∂L/∂h‖ decay per step at init {})",
            self.length,
            self.name,
            self.test_mse,
            match (self.steps_to_solve, self.diverged) {
                (_, true) => "DIVERGED".into(),
                (Some(s), _) => format!("solved at step {s}"),
                (None, _) => "not solved".into(),
            },
            self.steps,
            self.seconds,
            self.grad_init
                .decay_rate()
                .map_or("-".into(), |d| format!("{d:.3}"))
        )
    }
}

/// What [`run`] did.
#[derive(Clone, Debug)]
pub struct LabOutcome {
    /// Every arm, in the order of [`arms`].
    pub results: Vec<ArmResult>,
    /// Time for all arms.
    pub seconds: f64,
    /// The report written (`report.md` in the output folder).
    pub report: PathBuf,
    /// The charts written, as file names in the output folder (none without `plot`).
    pub charts: Vec<String>,
}

/// The lab's arms: per length the three cells (about 17k parameters each) clipped at 1; then,
/// at a middle length (the last length when `quick`, else the first of at least 100), the three
/// cells without clipping, the tanh RNN with recurrent weights at 4× PyTorch's scale trained by
/// SGD without and with clipping, and an LSTM whose gradient reaches back 3/4, 1/2 and 1/4 of it.
pub fn arms(config: &LabConfig) -> Vec<Arm> {
    let lengths = config.resolved_lengths();
    // About 17k parameters each: H = 128 (tanh RNN), 64 (LSTM), 74 (GRU) on 2 inputs.
    let cells = [
        (CellKind::RnnTanh, 128, "tanh RNN"),
        (CellKind::Lstm, 64, "LSTM"),
        (CellKind::Gru, 74, "GRU"),
    ];
    let arm = |name: String, cell, hidden, length| Arm {
        name,
        cell,
        hidden,
        length,
        clip: Some(1.0),
        init_scale: 1.0,
        sgd: false,
        truncate: None,
    };
    let mut out = Vec::new();
    for &t in &lengths {
        for (cell, hidden, name) in cells {
            out.push(arm(format!("{name} {hidden}"), cell, hidden, t));
        }
    }
    // Without clipping, at a middle length; and the explosion: a tanh RNN whose recurrent
    // weights start 4× PyTorch's scale, with and without clipping.
    let mid = if config.quick {
        *lengths.last().unwrap_or(&50)
    } else {
        lengths.iter().copied().find(|&t| t >= 100).unwrap_or(100)
    };
    for (cell, hidden, name) in cells {
        out.push(Arm {
            clip: None,
            ..arm(format!("{name} {hidden}, no clipping"), cell, hidden, mid)
        });
    }
    for clip in [None, Some(1.0)] {
        let how = if clip.is_some() {
            "clipped at 1"
        } else {
            "no clipping"
        };
        out.push(Arm {
            clip,
            init_scale: 4.0,
            sgd: true,
            ..arm(
                format!("tanh RNN 128, recurrent init ×4, SGD, {how}"),
                CellKind::RnnTanh,
                128,
                mid,
            )
        });
    }
    // Truncated BPTT: an LSTM whose gradient reaches back only part of the sequence. The first
    // marker lies in the first half, so below T/2 steps back it is never taught.
    for k in [mid * 3 / 4, mid / 2, mid / 4] {
        out.push(Arm {
            truncate: Some(k.max(1)),
            ..arm(
                format!("LSTM 64, truncated BPTT k = {k}"),
                CellKind::Lstm,
                64,
                mid,
            )
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

/// Collects the validation curve and the largest gradient norm, and passes every report on.
struct Curve<'a> {
    steps_per_epoch: u64,
    points: Vec<(u64, f64)>,
    max_grad_norm: f64,
    /// (step, gradient norm before clipping) of every step.
    grad_norms: Vec<(u64, f64)>,
    inner: &'a mut dyn Reporter,
}

impl Reporter for Curve<'_> {
    fn step(&mut self, r: &StepReport) {
        let g = f64::from(r.grad_norm);
        self.grad_norms.push((r.step, g));
        if g.is_finite() {
            self.max_grad_norm = self.max_grad_norm.max(g);
        } else {
            self.max_grad_norm = f64::INFINITY;
        }
        self.inner.step(r);
    }

    fn epoch(&mut self, r: &EpochReport) {
        self.points
            .push(((r.epoch as u64 + 1) * self.steps_per_epoch, r.val_loss));
        self.inner.epoch(r);
    }
}

/// Trains one arm on the adding problem (data seed 0, model seed 0) and measures it; `reporter`
/// sees every step and epoch. A run the divergence guard stops is a result (`diverged`), not
/// an error; errors are bad sizes ([`Error::Config`]) and failures of the model itself.
///
/// ```
/// use rnnkit::lab::vanishing::{self, Budget, LabConfig};
/// let config = LabConfig { lengths: vec![4], quick: true, ..Default::default() };
/// let arm = &vanishing::arms(&config)[1]; // LSTM 64 at T = 4
/// let budget = Budget { train: 100, valid: 50, test: 50, batch: 50, epochs: 1 };
/// let r = vanishing::run_arm(arm, &budget, &mut rnnkit::train::Silent).unwrap();
/// assert_eq!((r.steps, r.curve.len()), (2, 1));
/// assert!(r.test_mse.is_finite() && !r.diverged);
/// ```
pub fn run_arm(arm: &Arm, budget: &Budget, reporter: &mut dyn Reporter) -> Result<ArmResult> {
    budget.validate()?;
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
    let ds = default_distances(arm.length);
    let grad_init = model.gradient_profile(&probe, &ds)?;

    let config = TrainConfig {
        epochs: budget.epochs,
        batch_size: budget.batch,
        eval_batch_size: 500,
        clip_norm: arm.clip,
        optimizer: if arm.sgd {
            OptimizerConfig::Sgd(SgdConfig {
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
        inner: reporter,
    };
    let started = Instant::now();
    // A run that diverges (the divergence guard gives up) is a result here, not a failure.
    let summary = match trainer.run(&train, &val, Some(&test), &mut curve) {
        Ok(s) => Some(s),
        Err(Error::Diverged(_)) => None,
        Err(e) => return Err(e),
    };
    let seconds = started.elapsed().as_secs_f64();
    let grad_trained = trainer.model().inner.gradient_profile(&probe, &ds)?;
    let gates = gate_stats(trainer.model().inner.rnn(), probe.inputs.view())?;
    let steps_to_solve = curve.points.iter().find(|p| p.1 < SOLVED).map(|p| p.0);
    Ok(ArmResult {
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
        best_val_mse: summary
            .as_ref()
            .and_then(|s| s.best_val)
            .map_or(f64::NAN, |b| b.0),
        solved: steps_to_solve.is_some(),
        steps_to_solve,
        steps: trainer.progress().step,
        skipped: trainer.progress().skipped,
        clip_rate: summary.as_ref().map_or(0.0, |s| s.clip_rate),
        diverged: summary.is_none(),
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
    })
}

/// Runs every arm of [`arms`] in turn, handing each result to `on_arm` as it finishes, then
/// writes `results.json`, the charts (with the `plot` feature) and `report.md` into `out_dir`,
/// creating it. Runs on the current rayon pool.
///
/// Errors: [`Error::Config`] for a bad config (before anything is written), [`Error::Io`] when
/// `out_dir` or a file in it cannot be written, and whatever [`run_arm`] reports.
///
/// ```no_run
/// use rnnkit::lab::vanishing::{self, LabConfig};
/// let config = LabConfig { quick: true, ..Default::default() };
/// let outcome = vanishing::run(&config, "runs/lab".as_ref(), |r| eprintln!("{}", r.summary()))?;
/// println!("report: {}", outcome.report.display());
/// # Ok::<(), rnnkit::Error>(())
/// ```
pub fn run(
    config: &LabConfig,
    out_dir: &Path,
    mut on_arm: impl FnMut(&ArmResult),
) -> Result<LabOutcome> {
    config.validate()?;
    let lengths = config.resolved_lengths();
    let budget = config.resolved_budget();
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.display().to_string(),
        source,
    })?;
    let started = Instant::now();
    let mut results = Vec::new();
    for arm in arms(config) {
        let r = run_arm(&arm, &budget, &mut crate::train::Silent)?;
        on_arm(&r);
        results.push(r);
    }
    let seconds = started.elapsed().as_secs_f64();
    let json_path = out_dir.join("results.json");
    let json = serde_json::to_string_pretty(&results).map_err(|e| Error::Format {
        path: json_path.display().to_string(),
        msg: format!("cannot serialize the lab's results: {e}"),
    })? + "\n";
    crate::io::write_atomic(&json_path, json.as_bytes())?;
    let charts = write_charts(out_dir, &results, &lengths)?;
    let report = write_report(out_dir, &results, config, &budget, &charts, seconds)?;
    Ok(LabOutcome {
        results,
        seconds,
        report,
        charts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Budget {
        Budget {
            train: 100,
            valid: 40,
            test: 40,
            batch: 50,
            epochs: 1,
        }
    }

    #[test]
    fn arms_cover_cells_clipping_explosion_and_truncation() {
        let full = arms(&LabConfig::default());
        assert_eq!(full.len(), 5 * 3 + 3 + 2 + 3);
        // The middle length is the first of at least 100.
        assert!(full[15..].iter().all(|a| a.length == 100));
        assert_eq!(
            full[20..].iter().map(|a| a.truncate).collect::<Vec<_>>(),
            [Some(75), Some(50), Some(25)]
        );
        let quick = arms(&LabConfig {
            lengths: vec![12],
            quick: true,
            ..Default::default()
        });
        assert_eq!(quick.len(), 3 + 3 + 2 + 3);
        assert!(quick.iter().all(|a| a.length == 12));
        assert_eq!(quick[6].init_scale, 4.0);
        assert_eq!(quick[6].clip, None);
        assert!(quick[6].sgd && quick[7].clip.is_some());
    }

    #[test]
    fn bad_lengths_and_budgets_are_config_errors() {
        let short = LabConfig {
            lengths: vec![20, 1],
            ..Default::default()
        };
        let e = short.validate().unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("lengths: 1")),
            "{e}"
        );
        let empty = LabConfig {
            budget: Some(Budget { batch: 0, ..tiny() }),
            ..Default::default()
        };
        assert!(matches!(empty.validate(), Err(Error::Config(_))));
        let dir = std::env::temp_dir().join(format!("rnnkit-lab-bad-{}", std::process::id()));
        assert!(run(&short, &dir, |_| {}).is_err());
        assert!(!dir.exists(), "nothing is written for a bad config");
    }

    #[test]
    fn an_exploding_arm_is_a_result_not_an_error() {
        let config = LabConfig {
            lengths: vec![30],
            quick: true,
            ..Default::default()
        };
        let arm = arms(&config)
            .into_iter()
            .find(|a| a.init_scale != 1.0 && a.clip.is_none())
            .unwrap();
        let r = run_arm(&arm, &tiny(), &mut crate::train::Silent).unwrap();
        assert_eq!(r.grad_norms.len() as u64, r.steps + r.skipped);
        // The gradient grows going back in time at 4× the recurrent init.
        let n = &r.grad_init.norm;
        assert!(n[n.len() - 1] > n[0], "{n:?}");
    }

    #[test]
    fn run_writes_results_and_report() {
        let dir = std::env::temp_dir().join(format!("rnnkit-lab-run-{}", std::process::id()));
        let config = LabConfig {
            lengths: vec![6],
            quick: true,
            budget: Some(tiny()),
            command: Some("rnnkit lab vanishing --quick".into()),
        };
        let mut seen = Vec::new();
        let outcome = run(&config, &dir, |r| seen.push(r.name.clone())).unwrap();
        assert_eq!(seen.len(), 11);
        assert_eq!(outcome.results.len(), 11);
        let json = std::fs::read_to_string(dir.join("results.json")).unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_array().unwrap().len(), 11);
        assert_eq!(back[1]["name"], "LSTM 64");
        let report = std::fs::read_to_string(&outcome.report).unwrap();
        assert!(report.contains("```sh\nrnnkit lab vanishing --quick\n```"));
        assert!(report.contains("| LSTM 64 | ") && report.contains("(--quick)"));
        for chart in &outcome.charts {
            assert!(dir.join(chart).is_file(), "{chart}");
            assert!(report.contains(&format!("![{chart}]({chart})")));
        }
        assert_eq!(
            outcome.charts.len(),
            if cfg!(feature = "plot") { 6 } else { 0 }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
