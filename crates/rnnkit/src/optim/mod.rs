//! Optimizers, learning-rate schedules and gradient clipping, with `torch.optim` semantics.
//!
//! | file | what |
//! |---|---|
//! | [`sgd`] | SGD with momentum, dampening, Nesterov, L2 weight decay |
//! | [`adam`] | Adam (L2 weight decay) and AdamW (decoupled weight decay), optional AMSGrad |
//! | [`rmsprop`] | RMSprop, optionally centered, optionally with momentum |
//! | [`adagrad`] | Adagrad with learning-rate decay |
//! | [`config`] | [`OptimizerConfig`]: any of the above from a config file |
//! | [`schedule`] | learning-rate schedules: constant, step decay (Zaremba), exponential, reduce-on-plateau, cosine with warmup |
//! | [`clip`] | gradient clipping by global L2 norm and by value, and clipping statistics |
//!
//! An optimizer sees the parameters as a slice of [`ParamRef`]s (name, values, gradient) in a
//! stable order, and takes the learning rate on every [`Optimizer::step`], so that a schedule
//! drives it. Its per-parameter state is keyed by parameter name; [`Optimizer::state`] and
//! [`Optimizer::load_state`] save and restore it exactly, for bit-identical resume.
//!
//! ```
//! use rnnkit::optim::{Optimizer, OptimizerConfig, ParamRef, Schedule, ScheduleConfig};
//!
//! let cfg: OptimizerConfig =
//!     serde_json::from_str(r#"{"kind": "sgd", "lr": 1.0, "momentum": 0.9}"#).unwrap();
//! let mut opt = cfg.build().unwrap();
//! let mut sched = Schedule::new(ScheduleConfig::default(), cfg.lr()).unwrap();
//! let (mut w, g) = (vec![1.0_f32, 2.0], vec![0.5_f32, -0.5]);
//! opt.step(&mut [ParamRef::new("w", &mut w, &g)], sched.lr()).unwrap();
//! sched.on_step();
//! assert_eq!(w, [0.5, 2.5]);
//! ```

/// The `state`, `load_state` and `steps` methods of an [`Optimizer`] that keeps its buffers in
/// a field `state: ParamState` (all of them do).
macro_rules! param_state_methods {
    () => {
        fn state(&self) -> BTreeMap<String, Vec<f32>> {
            self.state.to_map()
        }

        fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<()> {
            self.state.load_map(state)
        }

        fn steps(&self) -> u64 {
            self.state.step()
        }
    };
}

pub mod adagrad;
pub mod adam;
pub mod clip;
pub mod config;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
mod state;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamWConfig};
pub use clip::{ClipReport, ClipStats, clip_grad_norm, clip_grad_value, grad_norm};
pub use config::OptimizerConfig;
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{
    CosineWarmupConfig, ExponentialConfig, PlateauConfig, Schedule, ScheduleConfig, ScheduleState,
    StepDecayConfig,
};
pub use sgd::{Sgd, SgdConfig};
pub use state::{decode_count, encode_count};

use crate::error::Result;
use std::collections::BTreeMap;

/// One parameter tensor as an optimizer sees it: its name, its values (updated in place) and
/// its gradient, both flat and of the same length.
///
/// ```
/// use rnnkit::optim::ParamRef;
/// let (mut w, g) = (vec![0.0_f32; 3], vec![1.0_f32; 3]);
/// let p = ParamRef::new("decoder.bias", &mut w, &g);
/// assert_eq!(p.name, "decoder.bias");
/// ```
#[derive(Debug)]
pub struct ParamRef<'a> {
    /// The parameter's name (PyTorch `state_dict` name); keys the optimizer's state.
    pub name: &'a str,
    /// Values, updated in place by [`Optimizer::step`].
    pub value: &'a mut [f32],
    /// The gradient of the loss with respect to `value`; same length.
    pub grad: &'a [f32],
}

impl<'a> ParamRef<'a> {
    /// Bundles a name, values and gradient. Lengths are checked by [`Optimizer::step`].
    ///
    /// ```
    /// use rnnkit::optim::ParamRef;
    /// let (mut w, g) = ([1.0_f32], [0.0_f32]);
    /// assert_eq!(ParamRef::new("w", &mut w, &g).value.len(), 1);
    /// ```
    pub fn new(name: &'a str, value: &'a mut [f32], grad: &'a [f32]) -> Self {
        ParamRef { name, value, grad }
    }
}

/// An optimizer: updates parameters from their gradients, keeps per-parameter state.
///
/// Every implementation follows the single-tensor (`foreach=False`) path of the `torch.optim`
/// class of the same name, with `maximize=False`, `differentiable=False`.
///
/// ```
/// use rnnkit::optim::{AdamConfig, Optimizer, ParamRef};
///
/// let mut opt = AdamConfig::default().build().unwrap();
/// let (mut w, g) = (vec![1.0_f32], vec![0.1_f32]);
/// opt.step(&mut [ParamRef::new("w", &mut w, &g)], 1e-3).unwrap();
/// // Adam's first step moves every coordinate by about lr.
/// assert!((w[0] - (1.0 - 1e-3)).abs() < 1e-6);
///
/// // Save, restore into a fresh optimizer, continue identically.
/// let mut fresh = AdamConfig::default().build().unwrap();
/// fresh.load_state(&opt.state()).unwrap();
/// assert_eq!(fresh.state(), opt.state());
/// ```
pub trait Optimizer {
    /// One update of every parameter with learning rate `lr`.
    ///
    /// The first call fixes the parameter set (names and lengths); later calls must pass the
    /// same set (in any order), else an error names the parameter that changed and nothing is
    /// updated. Errors also for a negative or non-finite `lr`, a gradient whose length differs
    /// from its parameter's, or a repeated name.
    fn step(&mut self, params: &mut [ParamRef<'_>], lr: f32) -> Result<()>;

    /// Every state tensor by a stable name, `"{buffer}.{param}"` (e.g. `"exp_avg.weight_ih_l0"`),
    /// plus the step counter `"step"` encoded with [`encode_count`]. Empty before the first step.
    fn state(&self) -> BTreeMap<String, Vec<f32>>;

    /// Restores a [`Optimizer::state`] taken from an optimizer of the same kind and flags.
    /// Checks that every parameter has every buffer this optimizer needs, all of one length,
    /// and that no unknown entry is present; on error the state is left unchanged.
    fn load_state(&mut self, state: &BTreeMap<String, Vec<f32>>) -> Result<()>;

    /// Number of steps taken (or restored).
    fn steps(&self) -> u64;
}

/// Checks a learning rate at the public boundary.
pub(crate) fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(crate::error::Error::Config(format!(
            "learning rate {lr} is invalid: it must be finite and >= 0"
        )))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Shared fixtures for the optimizer tests. The golden values in each optimizer's tests
    //! come from this script (PyTorch 2.x, CPU, float32):
    //!
    //! ```python
    //! import torch
    //! W0 = [0.5, -1.25, 2.0, 0.125]
    //! B0 = [-0.75, 0.3]
    //! GW = [[0.1, -0.2, 0.3, -0.4], [0.25, 0.5, -0.75, 1.0], [-0.05, 0.15, 0.35, -0.6]]
    //! GB = [[1.0, -2.0], [0.5, 0.25], [-1.5, 0.125]]
    //! LR_SCALE = [1.0, 0.5, 0.25]
    //! def run(cls, lr, **kw):
    //!     w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    //!     b = torch.tensor(B0, dtype=torch.float32, requires_grad=True)
    //!     opt = cls([w, b], lr=lr, **kw)
    //!     for s in range(3):
    //!         for g in opt.param_groups: g["lr"] = lr * LR_SCALE[s]
    //!         w.grad = torch.tensor(GW[s]); b.grad = torch.tensor(GB[s])
    //!         opt.step()
    //!     print(cls.__name__, kw)
    //!     print("  w", ", ".join(repr(float(x)) for x in w.detach()))
    //!     print("  b", ", ".join(repr(float(x)) for x in b.detach()))
    //! run(torch.optim.SGD, 0.1)   # ... one call per case, quoted above each test
    //! ```
    use super::*;

    pub(crate) const GOLDEN_W0: [f32; 4] = [0.5, -1.25, 2.0, 0.125];
    pub(crate) const GOLDEN_B0: [f32; 2] = [-0.75, 0.3];
    const GW: [[f32; 4]; 3] = [
        [0.1, -0.2, 0.3, -0.4],
        [0.25, 0.5, -0.75, 1.0],
        [-0.05, 0.15, 0.35, -0.6],
    ];
    const GB: [[f32; 2]; 3] = [[1.0, -2.0], [0.5, 0.25], [-1.5, 0.125]];
    const LR_SCALE: [f64; 3] = [1.0, 0.5, 0.25];

    /// Runs the script's three steps; returns the final `(w, b)`.
    pub(crate) fn run_golden(mut opt: Box<dyn Optimizer>, lr: f64) -> (Vec<f32>, Vec<f32>) {
        let (mut w, mut b) = (GOLDEN_W0.to_vec(), GOLDEN_B0.to_vec());
        for s in 0..3 {
            // PyTorch sets the Python float `lr * scale`, used as f32 by the kernels.
            let lr_s = (lr * LR_SCALE[s]) as f32;
            let mut params = [
                ParamRef::new("w", &mut w, &GW[s]),
                ParamRef::new("b", &mut b, &GB[s]),
            ];
            opt.step(&mut params, lr_s).unwrap();
        }
        (w, b)
    }

    /// Asserts `|got − want| ≤ tol · max(1, |want|)` elementwise, printing the worst difference.
    pub(crate) fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len(), "lengths differ");
        let (mut worst, mut at) = (0.0_f64, 0);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let d = (g as f64 - w).abs() / w.abs().max(1.0);
            if d > worst || d.is_nan() {
                (worst, at) = (d, i);
            }
        }
        assert!(
            worst <= tol,
            "worst relative difference {worst:e} at {at}: got {got:?}, want {want:?}"
        );
    }

    /// Every optimizer with non-default flags (the PyTorch cases).
    fn all_optimizers() -> Vec<(&'static str, Box<dyn Optimizer>)> {
        let cfgs: Vec<OptimizerConfig> = [
            r#"{"kind": "sgd", "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}"#,
            r#"{"kind": "sgd", "momentum": 0.9, "nesterov": true}"#,
            r#"{"kind": "sgd"}"#,
            r#"{"kind": "adam", "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.1}"#,
            r#"{"kind": "adamw", "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.1}"#,
            r#"{"kind": "adam", "amsgrad": true}"#,
            r#"{"kind": "rmsprop", "alpha": 0.9, "momentum": 0.5, "centered": true}"#,
            r#"{"kind": "rmsprop"}"#,
            r#"{"kind": "adagrad", "lr_decay": 0.01, "initial_accumulator_value": 0.1}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
        cfgs.iter()
            .map(|c| (c.kind_name(), c.build().unwrap() as Box<dyn Optimizer>))
            .collect()
    }

    /// A deterministic pseudo-gradient for step `s`, element `i`.
    fn grad(s: usize, i: usize) -> f32 {
        (((s * 7 + i * 13) % 17) as f32 - 8.0) / 8.0
    }

    fn steps(opt: &mut dyn Optimizer, w: &mut [f32], b: &mut [f32], range: std::ops::Range<usize>) {
        for s in range {
            let gw: Vec<f32> = (0..w.len()).map(|i| grad(s, i)).collect();
            let gb: Vec<f32> = (0..b.len()).map(|i| grad(s, i + 100)).collect();
            let mut params = [
                ParamRef::new("rnn.weight_ih_l0", w, &gw),
                ParamRef::new("decoder.bias", b, &gb),
            ];
            opt.step(&mut params, 0.01).unwrap();
        }
    }

    #[test]
    fn state_round_trip_resumes_bit_identically() {
        let fresh = |k: usize| all_optimizers().swap_remove(k);
        for k in 0..all_optimizers().len() {
            let (name, mut straight) = fresh(k);
            let (mut w1, mut b1) = (vec![0.3_f32; 5], vec![-0.2_f32; 3]);
            steps(straight.as_mut(), &mut w1, &mut b1, 0..6);

            let (_, mut first) = fresh(k);
            let (mut w2, mut b2) = (vec![0.3_f32; 5], vec![-0.2_f32; 3]);
            steps(first.as_mut(), &mut w2, &mut b2, 0..3);
            let saved = first.state();
            drop(first);
            let (_, mut resumed) = fresh(k);
            resumed.load_state(&saved).unwrap();
            assert_eq!(resumed.state(), saved, "{name}");
            assert_eq!(resumed.steps(), 3, "{name}");
            steps(resumed.as_mut(), &mut w2, &mut b2, 3..6);

            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w1), bits(&w2), "{name}: weights differ after resume");
            assert_eq!(bits(&b1), bits(&b2), "{name}: biases differ after resume");
            assert_eq!(straight.state(), resumed.state(), "{name}: state differs");
        }
    }

    #[test]
    fn parameter_set_changes_are_errors_naming_the_parameter() {
        for (name, mut opt) in all_optimizers() {
            let (mut w, mut b, g2, g3) = (
                vec![0.0_f32; 2],
                vec![0.0_f32; 3],
                [1.0_f32; 2],
                [1.0_f32; 3],
            );
            opt.step(
                &mut [
                    ParamRef::new("w", &mut w, &g2),
                    ParamRef::new("b", &mut b, &g3),
                ],
                0.1,
            )
            .unwrap();
            let before = opt.state();
            // A missing parameter.
            let e = opt
                .step(&mut [ParamRef::new("w", &mut w, &g2)], 0.1)
                .unwrap_err();
            assert!(e.to_string().contains("`b`"), "{name}: {e}");
            // A new parameter.
            let e = opt
                .step(
                    &mut [
                        ParamRef::new("w", &mut w, &g2),
                        ParamRef::new("c", &mut b, &g3),
                    ],
                    0.1,
                )
                .unwrap_err();
            assert!(e.to_string().contains("`c`"), "{name}: {e}");
            // A parameter whose length changed.
            let (mut b2, g2b) = (vec![0.0_f32; 2], [1.0_f32; 2]);
            let e = opt
                .step(
                    &mut [
                        ParamRef::new("w", &mut w, &g2),
                        ParamRef::new("b", &mut b2, &g2b),
                    ],
                    0.1,
                )
                .unwrap_err();
            assert!(e.to_string().contains("`b`"), "{name}: {e}");
            // A gradient of the wrong length, a repeated name, a bad learning rate.
            let e = opt
                .step(
                    &mut [
                        ParamRef::new("w", &mut w, &g3),
                        ParamRef::new("b", &mut b, &g3),
                    ],
                    0.1,
                )
                .unwrap_err();
            assert!(e.to_string().contains("`w`"), "{name}: {e}");
            let (mut w2, mut w3) = (vec![0.0_f32; 2], vec![0.0_f32; 2]);
            let e = opt
                .step(
                    &mut [
                        ParamRef::new("w", &mut w2, &g2),
                        ParamRef::new("w", &mut w3, &g2),
                    ],
                    0.1,
                )
                .unwrap_err();
            assert!(e.to_string().contains("twice"), "{name}: {e}");
            for lr in [-0.1, f32::NAN, f32::INFINITY] {
                let mut params = [
                    ParamRef::new("w", &mut w, &g2),
                    ParamRef::new("b", &mut b, &g3),
                ];
                assert!(opt.step(&mut params, lr).is_err(), "{name}: lr {lr}");
            }
            // Nothing changed on error.
            assert_eq!(opt.state(), before, "{name}");
            assert_eq!(opt.steps(), 1, "{name}");
        }
    }

    #[test]
    fn load_state_rejects_foreign_or_broken_state() {
        for (name, mut opt) in all_optimizers() {
            let (mut w, g) = (vec![0.0_f32; 2], [1.0_f32; 2]);
            opt.step(&mut [ParamRef::new("w", &mut w, &g)], 0.1)
                .unwrap();
            let good = opt.state();
            let mut unknown = good.clone();
            unknown.insert("bogus.w".into(), vec![0.0; 2]);
            assert!(opt.load_state(&unknown).is_err(), "{name}");
            let mut no_step = good.clone();
            no_step.remove("step");
            // (An empty map is a fresh optimizer's state, which loads.)
            assert!(
                no_step.is_empty() || opt.load_state(&no_step).is_err(),
                "{name}"
            );
            let mut bad_step = good.clone();
            bad_step.insert("step".into(), vec![1.5, 0.0, 0.0, 0.0]);
            assert!(opt.load_state(&bad_step).is_err(), "{name}");
            if let Some(key) = good.keys().find(|k| *k != "step").cloned() {
                let mut missing = good.clone();
                missing.remove(&key);
                assert!(opt.load_state(&missing).is_err(), "{name}: without {key}");
            }
            assert_eq!(opt.state(), good, "{name}: state changed by a failed load");
            opt.load_state(&good).unwrap();
        }
    }
}
