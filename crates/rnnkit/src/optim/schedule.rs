//! Learning-rate schedules, stateful, with exact save/restore for resume.
//!
//! A [`Schedule`] holds the learning rate to use for the next optimizer step ([`Schedule::lr`]).
//! The training loop tells it when a step is done ([`Schedule::on_step`]) and when an epoch is
//! done ([`Schedule::on_epoch_end`], with the validation loss for reduce-on-plateau).
//! Epochs are numbered from 1 in these docs (epoch 1 is the first pass over the data); the
//! state counts completed epochs and steps.
//!
//! | kind | learning rate | PyTorch |
//! |---|---|---|
//! | `constant` | `base` | — |
//! | `step_decay` | `base · factor^max(0, e − after_epoch)` in epoch `e` | `LambdaLR` |
//! | `exponential` | `base · gamma^(e − 1)` in epoch `e` | `ExponentialLR` |
//! | `reduce_on_plateau` | `× factor` when validation loss stops improving | `ReduceLROnPlateau` |
//! | `cosine_warmup` | per step: linear warmup, then cosine to `min_lr` | `SequentialLR(LinearLR, CosineAnnealingLR)` |
//!
//! Step decay is Zaremba et al. (2014)'s schedule, as their TensorFlow PTB tutorial writes it:
//! `lr_decay ** max(i + 1 - max_epoch, 0.0)` for the 0-based epoch index `i`, i.e. the learning
//! rate stays at `base` for the first `after_epoch` epochs and halves (small model: `base = 1`,
//! `factor = 0.5`, `after_epoch = 4`) from epoch 5 on.
//!
//! Learning rates are computed in f64 as PyTorch's Python floats are, and rounded to f32 for
//! the optimizer.

use crate::error::{Error, Result};
use crate::optim::sgd::check_nonneg;
use serde::{Deserialize, Serialize};

/// Which schedule, with its settings; `kind` selects it.
///
/// In TOML:
/// ```toml
/// [schedule]
/// kind = "step_decay"   # constant | step_decay | exponential | reduce_on_plateau | cosine_warmup
/// after_epoch = 4
/// factor = 0.5
/// ```
///
/// ```
/// use rnnkit::optim::{ScheduleConfig, StepDecayConfig};
/// let cfg: ScheduleConfig = serde_json::from_str(r#"{"kind": "step_decay"}"#).unwrap();
/// assert_eq!(cfg, ScheduleConfig::StepDecay(StepDecayConfig { after_epoch: 4, factor: 0.5 }));
/// assert!(serde_json::from_str::<ScheduleConfig>(r#"{"kind": "step_decay", "gamma": 0.5}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleConfig {
    /// The base learning rate throughout (the default: a schedule is opt-in).
    Constant {},
    /// Constant, then multiplied by `factor` every epoch after `after_epoch` (Zaremba et al.).
    StepDecay(StepDecayConfig),
    /// Multiplied by `gamma` after every epoch.
    Exponential(ExponentialConfig),
    /// Multiplied by `factor` when the validation loss has not improved for `patience` epochs.
    ReduceOnPlateau(PlateauConfig),
    /// Per step: linear warmup to the base rate, then cosine annealing to `min_lr`.
    CosineWarmup(CosineWarmupConfig),
}

impl Default for ScheduleConfig {
    /// Constant: the optimizer's learning rate throughout, so that a schedule is opt-in.
    fn default() -> Self {
        ScheduleConfig::Constant {}
    }
}

/// Settings of the step decay (Zaremba et al. 2014).
///
/// ```
/// use rnnkit::optim::StepDecayConfig;
/// assert_eq!(StepDecayConfig::default(), StepDecayConfig { after_epoch: 4, factor: 0.5 });
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepDecayConfig {
    /// Epochs at the base rate before decay starts (`max_epoch` in the TensorFlow tutorial).
    /// Default 4, Zaremba's small model (medium: 6, large: 14).
    pub after_epoch: u64,
    /// Factor per epoch after that (`lr_decay`), in `(0, 1]`. Default 0.5, Zaremba's small model
    /// (medium: 0.8, large: 1/1.15).
    pub factor: f64,
}

impl Default for StepDecayConfig {
    /// Zaremba et al.'s small PTB model: decay by 0.5 per epoch after epoch 4.
    fn default() -> Self {
        StepDecayConfig {
            after_epoch: 4,
            factor: 0.5,
        }
    }
}

/// Settings of the exponential decay (`torch.optim.lr_scheduler.ExponentialLR`).
///
/// ```
/// use rnnkit::optim::ExponentialConfig;
/// assert_eq!(ExponentialConfig::default().gamma, 0.95);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialConfig {
    /// Factor per epoch, in `(0, 1]`. Default 0.95 (PyTorch has none): a gentle decay that
    /// roughly halves the rate in 14 epochs.
    pub gamma: f64,
}

impl Default for ExponentialConfig {
    /// `gamma = 0.95`: halves the learning rate about every 14 epochs.
    fn default() -> Self {
        ExponentialConfig { gamma: 0.95 }
    }
}

/// Settings of reduce-on-plateau (`torch.optim.lr_scheduler.ReduceLROnPlateau` with
/// `mode='min'`, `threshold_mode='rel'`), driven by the validation loss.
///
/// ```
/// use rnnkit::optim::PlateauConfig;
/// let cfg = PlateauConfig::default();
/// assert_eq!((cfg.factor, cfg.patience, cfg.threshold), (0.1, 10, 1e-4));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateauConfig {
    /// Multiplier applied on a plateau, in `[0, 1)`. Default 0.1, PyTorch's.
    pub factor: f64,
    /// Epochs without improvement tolerated; the rate drops on the next one. Default 10,
    /// PyTorch's.
    pub patience: u64,
    /// Relative improvement that counts: `loss < best · (1 − threshold)`. Default 1e-4,
    /// PyTorch's.
    pub threshold: f64,
    /// Epochs after a reduction during which bad epochs are not counted. Default 0, PyTorch's.
    pub cooldown: u64,
    /// Lower bound of the learning rate. Default 0, PyTorch's.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped. Default 1e-8, PyTorch's.
    pub eps: f64,
}

impl Default for PlateauConfig {
    /// `ReduceLROnPlateau`'s defaults: factor 0.1, patience 10, threshold 1e-4 (relative),
    /// cooldown 0, min_lr 0, eps 1e-8.
    fn default() -> Self {
        PlateauConfig {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// Settings of cosine annealing with linear warmup, per optimizer step.
///
/// At step `s` (0-based, the step about to be taken), with `W = warmup_steps`,
/// `T = total_steps`:
/// ```text
/// s < W:  lr = base · (s + 1) / W
/// s ≥ W:  lr = min_lr + (base − min_lr) · (1 + cos(π · min(s − W, T − W) / (T − W))) / 2
/// ```
/// so the first step already learns (`base / W`), the rate reaches `base` at step `W − 1`, and
/// stays at `min_lr` after step `T`. This is PyTorch's
/// `SequentialLR([LinearLR(start_factor=1/W, total_iters=W-1), CosineAnnealingLR(T_max=T-W,
/// eta_min=min_lr)], milestones=[W])` up to step `T`.
///
/// ```
/// use rnnkit::optim::CosineWarmupConfig;
/// let cfg = CosineWarmupConfig { total_steps: 1000, ..CosineWarmupConfig::default() };
/// assert_eq!(cfg.warmup_steps, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CosineWarmupConfig {
    /// Steps of linear warmup (0 = none). Default 0.
    pub warmup_steps: u64,
    /// Steps of the whole schedule (warmup included), the run's number of optimizer steps.
    /// Must be set (> `warmup_steps`); the default 0 is rejected, as no value fits every run.
    pub total_steps: u64,
    /// Learning rate at the end. Default 0, PyTorch's `eta_min`.
    pub min_lr: f64,
}

impl Default for CosineWarmupConfig {
    /// No warmup, `total_steps` unset (0, rejected by validation), annealing to 0.
    fn default() -> Self {
        CosineWarmupConfig {
            warmup_steps: 0,
            total_steps: 0,
            min_lr: 0.0,
        }
    }
}

impl ScheduleConfig {
    /// Checks the settings.
    ///
    /// ```
    /// use rnnkit::optim::{CosineWarmupConfig, ScheduleConfig};
    /// let cfg = ScheduleConfig::CosineWarmup(CosineWarmupConfig::default());
    /// assert!(cfg.validate().is_err()); // total_steps unset
    /// ```
    pub fn validate(&self) -> Result<()> {
        let factor_in = |who: &str, field: &str, v: f64, allow_zero: bool, allow_one: bool| {
            let low_ok = if allow_zero { v >= 0.0 } else { v > 0.0 };
            let high_ok = if allow_one { v <= 1.0 } else { v < 1.0 };
            if low_ok && high_ok {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "{who}: {field} = {v} is out of range {}0, 1{}",
                    if allow_zero { "[" } else { "(" },
                    if allow_one { "]" } else { ")" }
                )))
            }
        };
        match self {
            ScheduleConfig::Constant {} => Ok(()),
            ScheduleConfig::StepDecay(c) => {
                factor_in("step_decay", "factor", c.factor, false, true)
            }
            ScheduleConfig::Exponential(c) => {
                factor_in("exponential", "gamma", c.gamma, false, true)
            }
            ScheduleConfig::ReduceOnPlateau(c) => {
                factor_in("reduce_on_plateau", "factor", c.factor, true, false)?;
                check_nonneg("reduce_on_plateau", "threshold", c.threshold)?;
                check_nonneg("reduce_on_plateau", "min_lr", c.min_lr)?;
                check_nonneg("reduce_on_plateau", "eps", c.eps)
            }
            ScheduleConfig::CosineWarmup(c) => {
                check_nonneg("cosine_warmup", "min_lr", c.min_lr)?;
                if c.total_steps <= c.warmup_steps {
                    return Err(Error::Config(format!(
                        "cosine_warmup: total_steps = {} must be greater than warmup_steps = {}; \
                         set it to the run's number of optimizer steps (epochs × batches per \
                         epoch)",
                        c.total_steps, c.warmup_steps
                    )));
                }
                Ok(())
            }
        }
    }
}

/// Everything a [`Schedule`] needs to continue exactly after a resume; serializable (JSON keeps
/// every f64 exactly).
///
/// ```
/// use rnnkit::optim::{Schedule, ScheduleConfig, ScheduleState};
/// let s = Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap();
/// let text = serde_json::to_string(&s.state()).unwrap();
/// assert_eq!(serde_json::from_str::<ScheduleState>(&text).unwrap(), s.state());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleState {
    /// Completed epochs.
    pub epoch: u64,
    /// Completed optimizer steps.
    pub step: u64,
    /// The learning rate for the next step.
    pub lr: f64,
    /// Reduce-on-plateau: the best validation loss so far (`None` before any).
    pub best: Option<f64>,
    /// Reduce-on-plateau: consecutive epochs without improvement.
    pub num_bad_epochs: u64,
    /// Reduce-on-plateau: epochs of cooldown left.
    pub cooldown_counter: u64,
}

/// A learning-rate schedule in progress; see the module docs.
///
/// ```
/// use rnnkit::optim::{Schedule, ScheduleConfig, StepDecayConfig};
/// // Zaremba et al., small model: lr 1, halved every epoch after epoch 4.
/// let mut s = Schedule::new(ScheduleConfig::StepDecay(StepDecayConfig::default()), 1.0).unwrap();
/// let mut per_epoch = vec![];
/// for _ in 0..7 {
///     per_epoch.push(s.lr());
///     s.on_epoch_end(None).unwrap();
/// }
/// assert_eq!(per_epoch, [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    config: ScheduleConfig,
    base_lr: f64,
    state: ScheduleState,
}

impl Schedule {
    /// A schedule starting from `base_lr` (the optimizer config's `lr`). Errors on invalid
    /// settings or a negative or non-finite `base_lr`.
    ///
    /// ```
    /// use rnnkit::optim::{Schedule, ScheduleConfig};
    /// assert!(Schedule::new(ScheduleConfig::Constant {}, -1.0).is_err());
    /// ```
    pub fn new(config: ScheduleConfig, base_lr: f64) -> Result<Self> {
        config.validate()?;
        check_nonneg("schedule", "base learning rate", base_lr)?;
        let mut s = Schedule {
            config,
            base_lr,
            state: ScheduleState {
                epoch: 0,
                step: 0,
                lr: base_lr,
                best: None,
                num_bad_epochs: 0,
                cooldown_counter: 0,
            },
        };
        s.state.lr = s.closed_form().unwrap_or(base_lr);
        Ok(s)
    }

    /// The learning rate for the next optimizer step.
    ///
    /// ```
    /// use rnnkit::optim::{Schedule, ScheduleConfig};
    /// assert_eq!(Schedule::new(ScheduleConfig::Constant {}, 0.5).unwrap().lr(), 0.5);
    /// ```
    pub fn lr(&self) -> f32 {
        self.state.lr as f32
    }

    /// The learning rate in f64 (as PyTorch's Python float).
    ///
    /// ```
    /// use rnnkit::optim::{Schedule, ScheduleConfig};
    /// assert_eq!(Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap().lr_f64(), 0.1);
    /// ```
    pub fn lr_f64(&self) -> f64 {
        self.state.lr
    }

    /// The settings.
    ///
    /// ```
    /// use rnnkit::optim::{Schedule, ScheduleConfig};
    /// let s = Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap();
    /// assert_eq!(s.config(), &ScheduleConfig::Constant {});
    /// ```
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Call after every optimizer step (advances per-step schedules).
    ///
    /// ```
    /// use rnnkit::optim::{CosineWarmupConfig, Schedule, ScheduleConfig};
    /// let cfg = CosineWarmupConfig { warmup_steps: 2, total_steps: 4, min_lr: 0.0 };
    /// let mut s = Schedule::new(ScheduleConfig::CosineWarmup(cfg), 1.0).unwrap();
    /// let mut lrs = vec![];
    /// for _ in 0..5 {
    ///     lrs.push(s.lr());
    ///     s.on_step();
    /// }
    /// assert_eq!(lrs, [0.5, 1.0, 1.0, 0.5, 0.0]);
    /// ```
    pub fn on_step(&mut self) {
        self.state.step += 1;
        if let ScheduleConfig::CosineWarmup(_) = self.config {
            self.state.lr = self.closed_form().expect("cosine has a closed form");
        }
    }

    /// Call after every epoch, with the validation loss when there is one. Reduce-on-plateau
    /// needs it (an error without it, leaving the state unchanged); a NaN loss counts as no
    /// improvement.
    ///
    /// ```
    /// use rnnkit::optim::{PlateauConfig, Schedule, ScheduleConfig};
    /// let cfg = PlateauConfig { patience: 1, factor: 0.5, ..PlateauConfig::default() };
    /// let mut s = Schedule::new(ScheduleConfig::ReduceOnPlateau(cfg), 1.0).unwrap();
    /// for loss in [2.0, 2.0, 2.0] {
    ///     s.on_epoch_end(Some(loss)).unwrap();
    /// }
    /// assert_eq!(s.lr(), 0.5);
    /// assert!(s.on_epoch_end(None).is_err());
    /// ```
    pub fn on_epoch_end(&mut self, val_loss: Option<f64>) -> Result<()> {
        match &self.config {
            ScheduleConfig::ReduceOnPlateau(c) => {
                let Some(current) = val_loss else {
                    return Err(Error::Config(
                        "reduce_on_plateau needs a validation loss at the end of every epoch \
                         (configure a validation split, or choose another schedule)"
                            .into(),
                    ));
                };
                let st = &mut self.state;
                let best = st.best.unwrap_or(f64::INFINITY);
                // PyTorch: `a < best * (1 - threshold)`; only finite values become the best
                // (so the state stays representable in JSON).
                if current.is_finite() && current < best * (1.0 - c.threshold) {
                    st.best = Some(current);
                    st.num_bad_epochs = 0;
                } else {
                    st.num_bad_epochs += 1;
                }
                if st.cooldown_counter > 0 {
                    st.cooldown_counter -= 1;
                    st.num_bad_epochs = 0;
                }
                if st.num_bad_epochs > c.patience {
                    let new_lr = (st.lr * c.factor).max(c.min_lr);
                    if st.lr - new_lr > c.eps {
                        st.lr = new_lr;
                    }
                    st.cooldown_counter = c.cooldown;
                    st.num_bad_epochs = 0;
                }
            }
            ScheduleConfig::Exponential(c) => {
                // Recursive, as `ExponentialLR.get_lr`.
                self.state.lr *= c.gamma;
            }
            _ => {}
        }
        self.state.epoch += 1;
        if let Some(lr) = self.closed_form() {
            self.state.lr = lr;
        }
        Ok(())
    }

    /// The state to save in a checkpoint.
    ///
    /// ```
    /// use rnnkit::optim::{Schedule, ScheduleConfig};
    /// let mut s = Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap();
    /// s.on_step();
    /// assert_eq!(s.state().step, 1);
    /// ```
    pub fn state(&self) -> ScheduleState {
        self.state.clone()
    }

    /// Restores a saved state (taken from a schedule with the same settings). Errors if its
    /// learning rate is negative or not finite, or its best loss is not finite.
    ///
    /// ```
    /// use rnnkit::optim::{Schedule, ScheduleConfig, StepDecayConfig};
    /// let cfg = ScheduleConfig::StepDecay(StepDecayConfig::default());
    /// let mut a = Schedule::new(cfg.clone(), 1.0).unwrap();
    /// (0..6).for_each(|_| a.on_epoch_end(None).unwrap());
    /// let mut b = Schedule::new(cfg, 1.0).unwrap();
    /// b.load_state(&a.state()).unwrap();
    /// assert_eq!(b.lr(), 0.125); // in epoch 7: 0.5^(7 − 4)
    /// ```
    pub fn load_state(&mut self, state: &ScheduleState) -> Result<()> {
        check_nonneg("schedule state", "lr", state.lr)?;
        if let Some(best) = state.best
            && !best.is_finite()
        {
            return Err(Error::Config(format!(
                "schedule state: best = {best} must be finite"
            )));
        }
        self.state = state.clone();
        Ok(())
    }

    /// The learning rate as a function of the counters, for the schedules that have one.
    fn closed_form(&self) -> Option<f64> {
        let (base, st) = (self.base_lr, &self.state);
        match &self.config {
            ScheduleConfig::Constant {} => Some(base),
            ScheduleConfig::StepDecay(c) => {
                // `lr_decay ** max(i + 1 - max_epoch, 0.0)`, i = completed epochs.
                let exponent = (st.epoch + 1).saturating_sub(c.after_epoch);
                Some(base * c.factor.powf(exponent as f64))
            }
            ScheduleConfig::CosineWarmup(c) => {
                let (s, w, t) = (st.step, c.warmup_steps, c.total_steps);
                Some(if s < w {
                    base * (s + 1) as f64 / w as f64
                } else {
                    let progress = (s - w).min(t - w) as f64 / (t - w) as f64;
                    c.min_lr
                        + (base - c.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
                })
            }
            ScheduleConfig::Exponential(_) | ScheduleConfig::ReduceOnPlateau(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Learning rates used in each of `n` epochs (per-epoch schedules).
    fn per_epoch(mut s: Schedule, n: usize, losses: Option<&[f64]>) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let lr = s.lr_f64();
                s.on_epoch_end(losses.map(|l| l[i])).unwrap();
                lr
            })
            .collect()
    }

    fn assert_lrs(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "step {i}: got {g}, want {w}\n got {got:?}\nwant {want:?}"
            );
        }
    }

    // Golden values from PyTorch (each: the lr in the param group before each `opt.step()`,
    // then `sched.step()` / `sched.step(metric)`):
    // ```python
    // def lrs(make, n, metrics=None):
    //     p = torch.nn.Parameter(torch.zeros(1))
    //     opt = torch.optim.SGD([p], lr=BASE)
    //     s = make(opt)
    //     out = []
    //     for i in range(n):
    //         out.append(opt.param_groups[0]["lr"])
    //         opt.step()
    //         if metrics is None: s.step()
    //         else: s.step(metrics[i])
    //     return out
    // ```

    #[test]
    fn exponential_matches_pytorch() {
        // BASE = 0.5; lrs(lambda o: ExponentialLR(o, gamma=0.8), 10)
        let cfg = ScheduleConfig::Exponential(ExponentialConfig { gamma: 0.8 });
        let got = per_epoch(Schedule::new(cfg, 0.5).unwrap(), 10, None);
        assert_lrs(
            &got,
            &[
                0.5,
                0.4,
                0.32000000000000006,
                0.25600000000000006,
                0.20480000000000007,
                0.16384000000000007,
                0.13107200000000005,
                0.10485760000000005,
                0.08388608000000004,
                0.06710886400000003,
            ],
        );
    }

    #[test]
    fn step_decay_matches_zaremba_tutorial() {
        // BASE = 1.0; lrs(lambda o: LambdaLR(o, lambda i: 0.5 ** max(i + 1 - 4, 0.0)), 10)
        // (the TensorFlow PTB tutorial's `lr_decay ** max(i + 1 - max_epoch, 0.0)`)
        let cfg = ScheduleConfig::StepDecay(StepDecayConfig::default());
        let got = per_epoch(Schedule::new(cfg, 1.0).unwrap(), 10, None);
        assert_lrs(
            &got,
            &[
                1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625,
            ],
        );
    }

    #[test]
    fn reduce_on_plateau_matches_pytorch() {
        // BASE = 0.1; M = [...]
        // lrs(lambda o: ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1, min_lr=0.02),
        //     len(M), M)
        let losses = [
            1.0, 0.9, 0.95, 0.9, 0.89995, 0.91, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.6, 0.61, 0.62,
            0.63, 0.64, 0.65, 0.66, 0.67, 0.68,
        ];
        let cfg = ScheduleConfig::ReduceOnPlateau(PlateauConfig {
            factor: 0.5,
            patience: 2,
            cooldown: 1,
            min_lr: 0.02,
            ..PlateauConfig::default()
        });
        let got = per_epoch(
            Schedule::new(cfg, 0.1).unwrap(),
            losses.len(),
            Some(&losses),
        );
        assert_lrs(
            &got,
            &[
                0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025,
                0.025, 0.025, 0.02, 0.02, 0.02, 0.02, 0.02,
            ],
        );
    }

    #[test]
    fn cosine_warmup_matches_pytorch() {
        // BASE = 0.2; W, T, ETA = 3, 10, 0.01
        // lrs(lambda o: SequentialLR(o, [LinearLR(o, start_factor=1/W, end_factor=1.0,
        //     total_iters=W-1), CosineAnnealingLR(o, T_max=T-W, eta_min=ETA)], milestones=[W]),
        //     T+1)
        let cfg = ScheduleConfig::CosineWarmup(CosineWarmupConfig {
            warmup_steps: 3,
            total_steps: 10,
            min_lr: 0.01,
        });
        let mut s = Schedule::new(cfg, 0.2).unwrap();
        let got: Vec<f64> = (0..11)
            .map(|_| {
                let lr = s.lr_f64();
                s.on_step();
                lr
            })
            .collect();
        assert_lrs(
            &got,
            &[
                0.06666666666666667,
                0.13333333333333333,
                0.2,
                0.2,
                0.19059204245072983,
                0.1642315311765797,
                0.12613948872584987,
                0.08386051127415015,
                0.045768468823420325,
                0.019407957549270192,
                0.01,
            ],
        );
        // After total_steps it stays at min_lr (PyTorch's cosine would rise again).
        s.on_step();
        assert_eq!(s.lr_f64(), 0.01);
        // Epoch ends do not move a per-step schedule.
        s.on_epoch_end(None).unwrap();
        assert_eq!(s.lr_f64(), 0.01);
    }

    #[test]
    fn state_round_trip_resumes_exactly() {
        let cfgs = [
            ScheduleConfig::Constant {},
            ScheduleConfig::StepDecay(StepDecayConfig::default()),
            ScheduleConfig::Exponential(ExponentialConfig { gamma: 0.7 }),
            ScheduleConfig::ReduceOnPlateau(PlateauConfig {
                patience: 1,
                cooldown: 2,
                ..PlateauConfig::default()
            }),
            ScheduleConfig::CosineWarmup(CosineWarmupConfig {
                warmup_steps: 5,
                total_steps: 40,
                min_lr: 1e-4,
            }),
        ];
        let losses = |e: u64| 1.0 / (1.0 + (e % 5) as f64);
        let run = |s: &mut Schedule, epochs: std::ops::Range<u64>| {
            let mut lrs = vec![];
            for e in epochs {
                for _ in 0..4 {
                    lrs.push(s.lr().to_bits());
                    s.on_step();
                }
                s.on_epoch_end(Some(losses(e))).unwrap();
            }
            lrs
        };
        for cfg in cfgs {
            let mut straight = Schedule::new(cfg.clone(), 0.3).unwrap();
            let all = run(&mut straight, 0..10);
            let mut first = Schedule::new(cfg.clone(), 0.3).unwrap();
            let mut lrs = run(&mut first, 0..4);
            let json = serde_json::to_string(&first.state()).unwrap();
            let mut resumed = Schedule::new(cfg.clone(), 0.3).unwrap();
            resumed
                .load_state(&serde_json::from_str(&json).unwrap())
                .unwrap();
            lrs.extend(run(&mut resumed, 4..10));
            assert_eq!(lrs, all, "{cfg:?}");
            assert_eq!(resumed.state(), straight.state(), "{cfg:?}");
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        let bad = [
            ScheduleConfig::StepDecay(StepDecayConfig {
                factor: 0.0,
                ..StepDecayConfig::default()
            }),
            ScheduleConfig::Exponential(ExponentialConfig { gamma: 1.5 }),
            ScheduleConfig::ReduceOnPlateau(PlateauConfig {
                factor: 1.0,
                ..PlateauConfig::default()
            }),
            ScheduleConfig::ReduceOnPlateau(PlateauConfig {
                min_lr: -1.0,
                ..PlateauConfig::default()
            }),
            ScheduleConfig::CosineWarmup(CosineWarmupConfig {
                warmup_steps: 10,
                total_steps: 10,
                min_lr: 0.0,
            }),
        ];
        for cfg in bad {
            assert!(Schedule::new(cfg.clone(), 0.1).is_err(), "{cfg:?}");
        }
        let mut s = Schedule::new(ScheduleConfig::Constant {}, 0.1).unwrap();
        let mut st = s.state();
        st.lr = f64::NAN;
        assert!(s.load_state(&st).is_err());
        assert_eq!(s.lr_f64(), 0.1);
    }

    #[test]
    fn serde_every_kind() {
        for kind in [
            "constant",
            "step_decay",
            "exponential",
            "reduce_on_plateau",
            "cosine_warmup",
        ] {
            let cfg: ScheduleConfig =
                serde_json::from_str(&format!(r#"{{"kind": "{kind}"}}"#)).unwrap();
            let text = serde_json::to_string(&cfg).unwrap();
            assert_eq!(serde_json::from_str::<ScheduleConfig>(&text).unwrap(), cfg);
            let typo = format!(r#"{{"kind": "{kind}", "paitence": 3}}"#);
            assert!(
                serde_json::from_str::<ScheduleConfig>(&typo).is_err(),
                "{kind}"
            );
        }
    }
}
