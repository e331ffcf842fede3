//! Adagrad, as `torch.optim.Adagrad`.
//!
//! Per parameter `p` with gradient `g`, at step `t` (1-based), learning rate `lr`:
//! ```text
//! g   = g + weight_decay · p
//! clr = lr / (1 + (t − 1) · lr_decay)
//! sum = sum + g²                    (starts at initial_accumulator_value)
//! p   = p − clr · g / (√sum + eps)
//! ```

use super::state::ParamState;
use super::{Optimizer, ParamRef};
use crate::error::Result;
use crate::optim::sgd::check_nonneg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyperparameters of [`Adagrad`], named as `torch.optim.Adagrad`'s.
///
/// ```
/// use rnnkit::optim::AdagradConfig;
/// let cfg: AdagradConfig = serde_json::from_str(r#"{"lr": 0.05}"#).unwrap();
/// assert_eq!(cfg.eps, 1e-10);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdagradConfig {
    /// Base learning rate (a schedule starts from it). Default 1e-2, PyTorch's.
    pub lr: f64,
    /// Learning-rate decay per step: `lr / (1 + (t − 1) · lr_decay)`. Default 0, PyTorch's.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient. Default 0, PyTorch's.
    pub weight_decay: f64,
    /// Starting value of the sum of squared gradients. Default 0, PyTorch's.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for stability. Default 1e-10, PyTorch's.
    pub eps: f64,
}

impl Default for AdagradConfig {
    /// `torch.optim.Adagrad`'s defaults: lr 1e-2, no lr decay, no weight decay, accumulator 0,
    /// eps 1e-10.
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

impl AdagradConfig {
    /// Checks ranges as PyTorch does (and finiteness).
    ///
    /// ```
    /// use rnnkit::optim::AdagradConfig;
    /// assert!(AdagradConfig { lr_decay: -1.0, ..AdagradConfig::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_nonneg("adagrad", "lr", self.lr)?;
        check_nonneg("adagrad", "lr_decay", self.lr_decay)?;
        check_nonneg("adagrad", "weight_decay", self.weight_decay)?;
        check_nonneg(
            "adagrad",
            "initial_accumulator_value",
            self.initial_accumulator_value,
        )?;
        check_nonneg("adagrad", "eps", self.eps)
    }

    /// Validates and builds the optimizer.
    ///
    /// ```
    /// use rnnkit::optim::{AdagradConfig, Optimizer, ParamRef};
    /// let mut opt = AdagradConfig { eps: 0.0, ..AdagradConfig::default() }.build().unwrap();
    /// let (mut w, g) = ([0.0_f32], [3.0_f32]);
    /// opt.step(&mut [ParamRef::new("w", &mut w, &g)], 1.0).unwrap();
    /// assert_eq!(w, [-1.0]); // 3 / √9
    /// ```
    pub fn build(&self) -> Result<Adagrad> {
        self.validate()?;
        let init = self.initial_accumulator_value as f32;
        Ok(Adagrad {
            config: self.clone(),
            state: ParamState::new(vec![("sum", init)]),
        })
    }
}

/// Adagrad; build it with [`AdagradConfig::build`].
///
/// State: `sum.{param}` and `step`.
///
/// ```
/// use rnnkit::optim::{AdagradConfig, Optimizer, ParamRef};
/// let mut opt = AdagradConfig::default().build().unwrap();
/// let (mut w, g) = ([0.0_f32], [2.0_f32]);
/// opt.step(&mut [ParamRef::new("w", &mut w, &g)], 0.1).unwrap();
/// assert_eq!(opt.state()["sum.w"], vec![4.0]);
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad {
    config: AdagradConfig,
    state: ParamState,
}

impl Adagrad {
    /// The hyperparameters.
    ///
    /// ```
    /// use rnnkit::optim::AdagradConfig;
    /// assert_eq!(AdagradConfig::default().build().unwrap().config().eps, 1e-10);
    /// ```
    pub fn config(&self) -> &AdagradConfig {
        &self.config
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, params: &mut [ParamRef<'_>], lr: f32) -> Result<()> {
        let t = self.state.begin_step(params, lr)?;
        let c = &self.config;
        // A Python float in PyTorch, used as f32 by the kernel.
        let clr = (lr as f64 / (1.0 + (t - 1) as f64 * c.lr_decay)) as f32;
        let (wd, eps) = (c.weight_decay as f32, c.eps as f32);
        for p in params.iter_mut() {
            let [sum] = self.state.bufs_mut(p.name) else {
                unreachable!("Adagrad keeps one buffer")
            };
            for ((w, &g), s) in p.value.iter_mut().zip(p.grad).zip(sum) {
                let g = if wd != 0.0 { g + wd * *w } else { g };
                *s += g * g;
                *w += -clr * (g / (s.sqrt() + eps));
            }
        }
        Ok(())
    }

    param_state_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{assert_close, run_golden};

    #[test]
    fn hand_computed_lr_decay() {
        // lr 1, lr_decay 1, eps 0, accumulator 0, w0 = 0, g = 3 then 4:
        // t1: sum = 9, w = −3/3 = −1;  t2: clr = 1/2, sum = 25, w = −1 − 0.5·4/5 = −1.4
        let cfg = AdagradConfig {
            lr_decay: 1.0,
            eps: 0.0,
            ..AdagradConfig::default()
        };
        let mut opt = cfg.build().unwrap();
        let mut w = [0.0_f32];
        opt.step(&mut [ParamRef::new("w", &mut w, &[3.0])], 1.0)
            .unwrap();
        assert_close(&w, &[-1.0], 1e-7);
        opt.step(&mut [ParamRef::new("w", &mut w, &[4.0])], 1.0)
            .unwrap();
        assert_close(&w, &[-1.4], 1e-6);
    }

    #[test]
    fn matches_pytorch() {
        // run(torch.optim.Adagrad, 0.1, lr_decay=0.01, weight_decay=0.01,
        //     initial_accumulator_value=0.1, eps=1e-10)
        let cfg = AdagradConfig {
            lr: 0.1,
            lr_decay: 0.01,
            weight_decay: 0.01,
            initial_accumulator_value: 0.1,
            eps: 1e-10,
        };
        let (w, b) = run_golden(Box::new(cfg.build().unwrap()), 0.1);
        assert_close(
            &w,
            &[
                0.44107502698898315,
                -1.2385673522949219,
                1.9613287448883057,
                0.17073270678520203,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.8469260931015015, 0.39105144143104553], 1e-6);
    }
}
