//! The training loop: exact resume, the divergence guard, early stopping, metrics and
//! checkpoint files.

use rnnkit::data::stream::StreamBatches;
use rnnkit::models::{LanguageModel, LmDropout};
use rnnkit::module;
use rnnkit::optim::{AdamConfig, OptimizerConfig, ScheduleConfig, StepDecayConfig};
use rnnkit::train::{
    EpochReport, Reporter, RunSummary, Silent, StepReport, StopSignal, TrainConfig, Trainer,
};
use rnnkit::{CellKind, Error, RnnConfig};
use std::path::PathBuf;

type LmTrainer = Trainer<LanguageModel>;

/// Token streams of the three splits.
#[derive(Clone)]
struct LmData {
    train: Vec<u32>,
    valid: Vec<u32>,
    test: Option<Vec<u32>>,
}

/// Runs a language-model trainer over the streams, laid out as its config says.
fn run(t: &mut LmTrainer, d: &LmData, r: &mut dyn Reporter) -> rnnkit::Result<RunSummary> {
    let c = t.config().clone();
    let train = StreamBatches::new(&d.train, c.batch_size, c.chunk_length(), c.seed)?;
    let valid = StreamBatches::fixed(&d.valid, c.eval_batch_size, c.bptt)?;
    let test = match &d.test {
        Some(s) => Some(StreamBatches::fixed(s, c.eval_batch_size, c.bptt)?),
        None => None,
    };
    t.run(&train, &valid, test.as_ref().map(|t| t as _), r)
}

/// Mean cross-entropy of `stream` in the trainer's evaluation layout.
fn eval(t: &LmTrainer, stream: &[u32]) -> f64 {
    let c = t.config();
    let b = StreamBatches::fixed(stream, c.eval_batch_size, c.bptt).unwrap();
    t.evaluate(&b).unwrap().loss
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rnnkit-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stream with structure (a noisy walk over 11 symbols).
fn data() -> LmData {
    let walk = |n: usize, seed: u64| -> Vec<u32> {
        let mut x = seed;
        let mut v = 0u32;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v = (v + [1, 1, 2, 10][(x >> 62) as usize]) % 11;
                v
            })
            .collect()
    };
    LmData {
        train: walk(900, 1),
        valid: walk(200, 2),
        test: Some(walk(200, 3)),
    }
}

fn model() -> LanguageModel {
    let rnn = RnnConfig::new(CellKind::Lstm, 6, 8)
        .num_layers(2)
        .dropout(0.3);
    LanguageModel::new(11, rnn, 5).unwrap()
}

/// Every weight of `a` and `b` is bit-identical.
fn assert_same_weights(a: &LanguageModel, b: &LanguageModel, after: &str) {
    let (a, b) = (module::named_tensors(a, ""), module::named_tensors(b, ""));
    for ((name, x), (_, y)) in a.iter().zip(b.iter()) {
        assert!(x == y, "{name} differs after {after}");
    }
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 4,
        eval_batch_size: 3,
        bptt: 9,
        variable_bptt: true,
        clip_norm: Some(0.5),
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        }),
        schedule: ScheduleConfig::StepDecay(StepDecayConfig {
            after_epoch: 1,
            factor: 0.5,
        }),
        seed: 9,
        ..TrainConfig::language_model()
    }
}

#[test]
fn resumed_run_ends_bit_identical_to_uninterrupted_run() {
    let data = data();
    let dir_a = temp_dir("straight");
    let mut straight = LmTrainer::new(model(), config(), Some(dir_a.clone())).unwrap();
    let done = run(&mut straight, &data, &mut Silent).unwrap();
    assert_eq!(done.epochs, 3);
    assert!(!done.interrupted && done.test.is_some());
    assert!(
        done.clip_rate > 0.0,
        "clipping should have fired with clip_norm 0.5"
    );

    // Stop mid-epoch (the chunk plan varies per epoch: 13 steps is inside epoch 1 or 2), resume
    // from the checkpoint written at the stop, in a new trainer.
    for stop in [5u64, 13, 26] {
        let dir_b = temp_dir(&format!("stopped{stop}"));
        let cfg = TrainConfig {
            max_steps: Some(stop),
            ..config()
        };
        let mut first = LmTrainer::new(model(), cfg, Some(dir_b.clone())).unwrap();
        let part = run(&mut first, &data, &mut Silent).unwrap();
        assert!(part.interrupted && part.steps == stop);
        drop(first);
        let latest = dir_b.join("checkpoints/latest.safetensors");
        let mut resumed =
            LmTrainer::resume(model(), &latest, Some(config()), Some(dir_b.clone())).unwrap();
        let rest = run(&mut resumed, &data, &mut Silent).unwrap();
        assert_eq!(rest.steps, done.steps);
        assert_same_weights(
            straight.model(),
            resumed.model(),
            &format!("resuming at step {stop}"),
        );
        assert_eq!(rest.best_val, done.best_val);
    }
    // The run directory holds what was promised.
    for f in [
        "checkpoints/latest.safetensors",
        "checkpoints/best.safetensors",
        "metrics/steps.csv",
        "metrics/steps.jsonl",
        "metrics/epochs.csv",
        "metrics/epochs.jsonl",
    ] {
        assert!(dir_a.join(f).exists(), "{f} missing");
    }
    let epochs = std::fs::read_to_string(dir_a.join("metrics/epochs.csv")).unwrap();
    assert_eq!(epochs.lines().count(), 1 + 3, "{epochs}");
    let steps = std::fs::read_to_string(dir_a.join("metrics/steps.jsonl")).unwrap();
    assert_eq!(steps.lines().count() as u64, done.steps);
}

/// Raises the trainer's stop signal once the run has taken `at` steps, as a Ctrl-C handler would
/// from another thread.
struct StopAt {
    at: u64,
    signal: StopSignal,
}

impl Reporter for StopAt {
    fn step(&mut self, report: &StepReport) {
        if report.step == self.at {
            self.signal.request();
        }
    }
}

#[test]
fn stop_signal_checkpoints_at_the_step_boundary_and_resumes_exactly() {
    let data = data();
    let mut straight = LmTrainer::new(model(), config(), None).unwrap();
    let done = run(&mut straight, &data, &mut Silent).unwrap();

    let dir = temp_dir("signal");
    let mut first = LmTrainer::new(model(), config(), Some(dir.clone())).unwrap();
    let mut stopper = StopAt {
        at: 17,
        signal: first.stop_signal(),
    };
    let part = run(&mut first, &data, &mut stopper).unwrap();
    assert!(part.interrupted, "the run should report the stop");
    assert_eq!(
        part.steps, 17,
        "the step in progress finishes, no further one starts"
    );
    assert!(part.test.is_none());
    drop(first);

    let latest = dir.join("checkpoints/latest.safetensors");
    let mut resumed = LmTrainer::resume(model(), &latest, None, Some(dir.clone())).unwrap();
    assert_eq!(resumed.progress().train_seconds, part.train_seconds);
    let sitting = std::time::Instant::now();
    let rest = run(&mut resumed, &data, &mut Silent).unwrap();
    let sitting = sitting.elapsed().as_secs_f64();
    assert!(!rest.interrupted && rest.steps == done.steps);
    assert_same_weights(
        straight.model(),
        resumed.model(),
        "a stop signal at step 17",
    );
    assert_eq!(rest.test, done.test);
    // The training time spans both sittings: the first's, from the checkpoint, plus this one.
    assert!(part.train_seconds > 0.0);
    let added = rest.train_seconds - part.train_seconds;
    assert!(
        added > 0.0 && added <= sitting,
        "first sitting {} s, in all {} s, second sitting measured {sitting} s",
        part.train_seconds,
        rest.train_seconds
    );
}

#[test]
fn divergence_guard_skips_and_then_stops_with_advice() {
    let mut lm = model();
    use rnnkit::module::Module;
    lm.visit_params_mut("", &mut |name, t| {
        if name == "decoder.weight" {
            t.data.fill(f32::NAN)
        }
    });
    let cfg = TrainConfig {
        max_skipped_in_a_row: 4,
        ..config()
    };
    let mut t = LmTrainer::new(lm, cfg, None).unwrap();
    match run(&mut t, &data(), &mut Silent) {
        Err(Error::Diverged(msg)) => {
            assert!(
                msg.contains("4 updates in a row") && msg.contains("lower learning rate"),
                "{msg}"
            );
        }
        other => panic!("expected divergence, got {other:?}"),
    }
    assert_eq!(t.progress().skipped, 4);
    assert_eq!(t.progress().step, 0, "no update may be applied");
}

/// A loss that runs away while staying finite (SGD at an absurd learning rate, no clipping)
/// stops the run at the divergence rule, without saving those weights or calling them best;
/// with the rule off the same run goes on.
#[test]
fn divergence_rule_stops_a_runaway_loss() {
    let sgd = |diverge_steps| TrainConfig {
        clip_norm: None,
        optimizer: OptimizerConfig::Sgd(rnnkit::optim::SgdConfig {
            lr: 1e4,
            ..Default::default()
        }),
        schedule: ScheduleConfig::default(),
        diverge_steps,
        max_skipped_in_a_row: 1000,
        ..config()
    };
    let dir = std::env::temp_dir().join(format!("rnnkit-runaway-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut t = LmTrainer::new(model(), sgd(5), Some(dir.clone())).unwrap();
    match run(&mut t, &data(), &mut Silent) {
        Err(Error::Diverged(msg)) => {
            assert!(
                msg.contains("5 updates in a row") && msg.contains("diverge_factor"),
                "{msg}"
            );
        }
        other => panic!("expected the divergence rule to stop the run, got {other:?}"),
    }
    let p = t.progress();
    assert_eq!(p.above_in_a_row, 5);
    assert!(
        p.best_val.is_none(),
        "a diverged epoch was kept as best: {p:?}"
    );
    // The chance loss is ln(11): the reference is at least that.
    assert!(p.reference_loss.unwrap() >= 11f64.ln() - 1e-9);
    assert!(!dir.join("checkpoints/best.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();

    let mut t = LmTrainer::new(model(), sgd(0), None).unwrap();
    let s = run(&mut t, &data(), &mut Silent);
    assert!(
        !matches!(s, Err(Error::Diverged(ref m)) if m.contains("diverge_factor")),
        "{s:?}"
    );
}

/// A checkpoint is never written from non-finite weights: the file keeps its last good
/// contents.
#[test]
fn non_finite_weights_are_never_written_over_a_checkpoint() {
    let dir = std::env::temp_dir().join(format!("rnnkit-nan-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latest.safetensors");
    let t = LmTrainer::new(model(), config(), None).unwrap();
    t.checkpoint().unwrap().save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut ck = t.checkpoint().unwrap();
    ck.model.get_mut("decoder.bias").unwrap()[[0]] = f32::INFINITY;
    match ck.save(&path) {
        Err(Error::Diverged(msg)) => assert!(msg.contains("decoder.bias"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), good);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn early_stopping_and_learning() {
    // A learning rate of zero never improves on epoch 0: patience 1 stops after epoch 1.
    let cfg = TrainConfig {
        patience: Some(1),
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 0.0,
            ..AdamConfig::default()
        }),
        schedule: ScheduleConfig::default(),
        ..config()
    };
    let mut t = LmTrainer::new(model(), cfg, None).unwrap();
    let s = run(&mut t, &data(), &mut Silent).unwrap();
    assert!(s.stopped_early && s.epochs == 2, "{s:?}");

    // With a real learning rate the validation loss falls well below log(11) = 2.40 (the walk's
    // entropy is 1.04 nats).
    let cfg = TrainConfig {
        epochs: 25,
        variable_bptt: false,
        schedule: ScheduleConfig::default(),
        ..config()
    };
    let mut t = LmTrainer::new(model(), cfg, None).unwrap();
    let s = run(&mut t, &data(), &mut Silent).unwrap();
    let (best, _) = s.best_val.unwrap();
    assert!(
        best < 0.75 * (11f64).ln(),
        "best validation loss {best}: {s:?}"
    );
}

/// Records each epoch's validation loss.
#[derive(Default)]
struct ValLosses(Vec<f64>);
impl Reporter for ValLosses {
    fn epoch(&mut self, report: &EpochReport) {
        self.0.push(report.val_loss);
    }
}

#[test]
fn restore_best_puts_back_the_best_epochs_weights_for_the_test_score() {
    // A learning rate too high to settle: validation loss goes up and down between epochs.
    let noisy = |restore_best| TrainConfig {
        epochs: 6,
        optimizer: OptimizerConfig::Adam(AdamConfig {
            lr: 0.2,
            ..AdamConfig::default()
        }),
        schedule: ScheduleConfig::default(),
        restore_best,
        ..config()
    };
    let data = data();
    let mut kept = LmTrainer::new(model(), noisy(true), None).unwrap();
    let mut vals = ValLosses::default();
    let s = run(&mut kept, &data, &mut vals).unwrap();
    let (best, epoch) = s.best_val.unwrap();
    assert!(
        epoch + 1 < vals.0.len(),
        "the last epoch should not be the best: {:?}",
        vals.0
    );
    // The model now holds the best epoch's weights: it scores exactly the best loss.
    assert_eq!(eval(&kept, &data.valid), best);
    assert_eq!(
        s.test.map(|t| t.loss),
        Some(eval(&kept, data.test.as_ref().unwrap()))
    );

    let mut last = LmTrainer::new(model(), noisy(false), None).unwrap();
    run(&mut last, &data, &mut Silent).unwrap();
    assert_eq!(eval(&last, &data.valid), *vals.0.last().unwrap());
}

#[test]
fn bad_configs_are_errors() {
    for cfg in [
        TrainConfig {
            batch_size: 0,
            ..config()
        },
        TrainConfig {
            bptt: 0,
            ..config()
        },
        TrainConfig {
            clip_norm: Some(-1.0),
            ..config()
        },
    ] {
        assert!(LmTrainer::new(model(), cfg, None).is_err());
    }
    let cfg = TrainConfig {
        batch_size: 1000,
        ..config()
    };
    let mut t = LmTrainer::new(model(), cfg, None).unwrap();
    let err = run(&mut t, &data(), &mut Silent).unwrap_err().to_string();
    assert!(err.contains("too short"), "{err}");
    // A validation text too short for the evaluation layout fails before any training.
    let short = LmData {
        valid: data().valid[..5].to_vec(),
        ..data()
    };
    let mut t = LmTrainer::new(model(), config(), None).unwrap();
    let err = run(&mut t, &short, &mut Silent).unwrap_err().to_string();
    assert!(err.contains("too short"), "{err}");
    assert_eq!(t.progress().step, 0);
}

/// Env var that turns `sigkill_child` into the training process that the parent kills.
const CHILD_ENV: &str = "RNNKIT_SIGKILL_CHILD_DIR";

fn slow_config() -> TrainConfig {
    TrainConfig {
        epochs: 8,
        checkpoint_every: Some(1),
        ..config()
    }
}

/// Sleeps a little per step so the parent can kill the run mid-epoch.
struct Slow;
impl Reporter for Slow {
    fn step(&mut self, _: &StepReport) {
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
}

#[test]
fn sigkill_child() {
    // Only does something when spawned by `killed_run_resumes_bit_identical`.
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut t = LmTrainer::new(model(), slow_config(), Some(dir.into())).unwrap();
    run(&mut t, &data(), &mut Slow).unwrap();
}

#[test]
fn killed_run_resumes_bit_identical() {
    let data = data();
    let mut straight = LmTrainer::new(model(), slow_config(), None).unwrap();
    let done = run(&mut straight, &data, &mut Silent).unwrap();

    let dir = temp_dir("sigkill");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run is well into its second epoch, then SIGKILL it (no chance to clean up).
    let latest = dir.join("checkpoints/latest.safetensors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let steps = std::fs::read_to_string(dir.join("metrics/steps.csv"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if steps > 40 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let mut resumed = LmTrainer::resume(model(), &latest, None, Some(dir.clone())).unwrap();
    let killed_at = resumed.progress().step;
    assert!(
        killed_at > 0 && killed_at < done.steps,
        "killed at step {killed_at} of {}",
        done.steps
    );
    let rest = run(&mut resumed, &data, &mut Silent).unwrap();
    assert_eq!(rest.steps, done.steps);
    assert_same_weights(
        straight.model(),
        resumed.model(),
        &format!("a SIGKILL at step {killed_at} and resume"),
    );
    // The metrics hold each step once: lines the killed run wrote after its last checkpoint
    // were trimmed on resume, not repeated.
    let csv = std::fs::read_to_string(dir.join("metrics/steps.csv")).unwrap();
    let keys: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (f.next().unwrap().into(), f.next().unwrap().into())
        })
        .collect();
    let unique: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a step logged twice");
    assert_eq!(keys.len() as u64, done.steps, "every step logged");
    let jsonl = std::fs::read_to_string(dir.join("metrics/steps.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count() as u64, done.steps);
}

#[test]
fn tied_model_resumes_tied() {
    let tied = || {
        let mut lm = LanguageModel::new(11, RnnConfig::new(CellKind::Lstm, 8, 8), 5).unwrap();
        lm.tie().unwrap();
        lm
    };
    let data = data();
    let mut straight = LmTrainer::new(tied(), config(), None).unwrap();
    run(&mut straight, &data, &mut Silent).unwrap();
    let dir = temp_dir("tied");
    let cfg = TrainConfig {
        max_steps: Some(17),
        ..config()
    };
    run(
        &mut LmTrainer::new(tied(), cfg, Some(dir.clone())).unwrap(),
        &data,
        &mut Silent,
    )
    .unwrap();
    let latest = dir.join("checkpoints/latest.safetensors");
    let mut resumed = LmTrainer::resume(tied(), &latest, Some(config()), None).unwrap();
    assert!(resumed.model().is_tied());
    run(&mut resumed, &data, &mut Silent).unwrap();
    assert_same_weights(straight.model(), resumed.model(), "resuming a tied model");
}

#[test]
fn regularized_model_resumes_exactly() {
    let regularized = || {
        let mut lm = model();
        lm.set_dropout(LmDropout {
            words: 0.1,
            input: 0.2,
            output: 0.3,
            weight_hh: 0.2,
            elementwise: false,
        })
        .unwrap();
        lm
    };
    let data = data();
    let mut straight = LmTrainer::new(regularized(), config(), None).unwrap();
    let done = run(&mut straight, &data, &mut Silent).unwrap();
    let mut plain = LmTrainer::new(model(), config(), None).unwrap();
    run(&mut plain, &data, &mut Silent).unwrap();
    assert!(
        module::named_tensors(straight.model(), "") != module::named_tensors(plain.model(), ""),
        "dropout must change training"
    );
    let dir = temp_dir("regularized");
    let cfg = TrainConfig {
        max_steps: Some(11),
        ..config()
    };
    run(
        &mut LmTrainer::new(regularized(), cfg, Some(dir.clone())).unwrap(),
        &data,
        &mut Silent,
    )
    .unwrap();
    let latest = dir.join("checkpoints/latest.safetensors");
    let mut resumed = LmTrainer::resume(regularized(), &latest, Some(config()), None).unwrap();
    assert_eq!(
        resumed.model().dropout(),
        LmDropout {
            words: 0.1,
            input: 0.2,
            output: 0.3,
            weight_hh: 0.2,
            elementwise: false,
        }
    );
    let rest = run(&mut resumed, &data, &mut Silent).unwrap();
    assert_eq!(rest.steps, done.steps);
    assert_same_weights(
        straight.model(),
        resumed.model(),
        "resuming a regularized model",
    );
    let bad = LmDropout {
        words: 1.0,
        ..LmDropout::default()
    };
    assert!(model().set_dropout(bad).is_err());
}

#[test]
fn lm_diagnostics_every_k_steps_go_to_the_metrics_and_do_not_change_training() {
    let run = |every: Option<u64>, name: &str| {
        let dir = temp_dir(name);
        let cfg = TrainConfig {
            epochs: 1,
            diagnostics_every: every,
            ..config()
        };
        let mut t = LmTrainer::new(model(), cfg, Some(dir.clone())).unwrap();
        run(&mut t, &data(), &mut Silent).unwrap();
        (t, dir)
    };
    let (plain, plain_dir) = run(None, "diag-off");
    let (diagnosed, dir) = run(Some(3), "diag-on");
    assert!(!plain_dir.join("metrics/diagnostics.jsonl").exists());
    // Measuring is read-only: the weights are the same as without it.
    assert_same_weights(plain.model(), diagnosed.model(), "a run with diagnostics");
    let text = std::fs::read_to_string(dir.join("metrics/diagnostics.jsonl")).unwrap();
    let steps = diagnosed.progress().step;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, 1 + steps / 3, "{steps} steps");
    for v in &lines {
        let norms = v["profile"]["norm"].as_array().unwrap();
        assert_eq!(
            norms.len(),
            v["profile"]["distances"].as_array().unwrap().len()
        );
        assert!(norms.iter().all(|n| n.as_f64().unwrap() >= 0.0));
        assert_eq!(
            v["gates"].as_array().unwrap().len(),
            2,
            "one entry per layer"
        );
    }
    for d in [plain_dir, dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
