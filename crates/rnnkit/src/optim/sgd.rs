//! Stochastic gradient descent with momentum, as `torch.optim.SGD`.
//!
//! Per parameter `p` with gradient `g`, at step `t` (1-based), learning rate `lr`:
//! ```text
//! d = g + weight_decay · p                          (L2 penalty added to the gradient)
//! if momentum ≠ 0:
//!     buf = d                                        (t = 1: no dampening on the first step)
//!     buf = momentum · buf + (1 − dampening) · d     (t > 1)
//!     d   = d + momentum · buf   if nesterov, else buf
//! p = p − lr · d
//! ```
//! Zaremba et al. (2014) train with plain SGD (`momentum = 0`) at `lr = 1` and a step decay.

use super::state::ParamState;
use super::{Optimizer, ParamRef};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyperparameters of [`Sgd`], named as `torch.optim.SGD`'s arguments.
///
/// ```
/// use rnnkit::optim::SgdConfig;
/// let cfg: SgdConfig = serde_json::from_str(r#"{"lr": 1.0, "momentum": 0.9, "nesterov": true}"#).unwrap();
/// assert_eq!(cfg.dampening, 0.0);
/// cfg.validate().unwrap();
/// assert!(serde_json::from_str::<SgdConfig>(r#"{"lr": 1.0, "momentun": 0.9}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdConfig {
    /// Base learning rate (a schedule starts from it). Default 1e-3, PyTorch's.
    pub lr: f64,
    /// Momentum factor, `0 ≤ momentum`. Default 0 (plain SGD), PyTorch's.
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer. Default 0, PyTorch's.
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening = 0`). Default false, PyTorch's.
    pub nesterov: bool,
    /// L2 penalty: `weight_decay · p` is added to the gradient. Default 0, PyTorch's.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    /// `torch.optim.SGD`'s defaults: lr 1e-3, no momentum, no dampening, no Nesterov, no
    /// weight decay — so a config that names only `lr` means what it means in PyTorch.
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Checks the ranges PyTorch checks (and finiteness).
    ///
    /// ```
    /// use rnnkit::optim::SgdConfig;
    /// let bad = SgdConfig { nesterov: true, ..SgdConfig::default() };
    /// assert!(bad.validate().is_err()); // Nesterov needs momentum
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_nonneg("sgd", "lr", self.lr)?;
        check_nonneg("sgd", "momentum", self.momentum)?;
        check_nonneg("sgd", "weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(Error::Config(format!(
                "sgd: dampening {} must be finite",
                self.dampening
            )));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Config(format!(
                "sgd: nesterov needs momentum > 0 and dampening = 0 (got momentum {}, \
                 dampening {})",
                self.momentum, self.dampening
            )));
        }
        Ok(())
    }

    /// Validates and builds the optimizer.
    ///
    /// ```
    /// use rnnkit::optim::{Optimizer, ParamRef, SgdConfig};
    /// let mut sgd = SgdConfig::default().build().unwrap();
    /// let (mut w, g) = ([1.0_f32], [2.0_f32]);
    /// sgd.step(&mut [ParamRef::new("w", &mut w, &g)], 0.25).unwrap();
    /// assert_eq!(w, [0.5]);
    /// ```
    pub fn build(&self) -> Result<Sgd> {
        self.validate()?;
        let kinds = if self.momentum != 0.0 {
            vec![("momentum_buffer", 0.0)]
        } else {
            vec![]
        };
        Ok(Sgd {
            config: self.clone(),
            state: ParamState::new(kinds),
        })
    }
}

/// SGD with momentum; build it with [`SgdConfig::build`].
///
/// State: `momentum_buffer.{param}` (only with momentum) and `step`.
///
/// ```
/// use rnnkit::optim::{Optimizer, ParamRef, SgdConfig};
/// let mut sgd = SgdConfig { momentum: 0.5, ..SgdConfig::default() }.build().unwrap();
/// let (mut w, g) = ([0.0_f32], [1.0_f32]);
/// for _ in 0..2 {
///     sgd.step(&mut [ParamRef::new("w", &mut w, &g)], 1.0).unwrap();
/// }
/// assert_eq!(w, [-2.5]); // buffer 1, then 0.5·1 + 1
/// ```
#[derive(Clone, Debug)]
pub struct Sgd {
    config: SgdConfig,
    state: ParamState,
}

impl Sgd {
    /// The hyperparameters.
    ///
    /// ```
    /// use rnnkit::optim::SgdConfig;
    /// assert_eq!(SgdConfig::default().build().unwrap().config().lr, 1e-3);
    /// ```
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [ParamRef<'_>], lr: f32) -> Result<()> {
        let t = self.state.begin_step(params, lr)?;
        let c = &self.config;
        let (wd, momentum) = (c.weight_decay as f32, c.momentum as f32);
        let keep = (1.0 - c.dampening) as f32;
        if wd == 0.0 && momentum == 0.0 {
            // Plain SGD (Zaremba et al.'s): one vectorized pass per parameter.
            for p in params.iter_mut() {
                crate::kernels::elementwise::axpy(p.value, -lr, p.grad);
            }
            return Ok(());
        }
        for p in params.iter_mut() {
            let bufs = self.state.bufs_mut(p.name);
            for (i, (w, &g)) in p.value.iter_mut().zip(p.grad).enumerate() {
                let mut d = g;
                if wd != 0.0 {
                    d += wd * *w;
                }
                if let Some(buf) = bufs.first_mut() {
                    let b = &mut buf[i];
                    *b = if t == 1 { d } else { *b * momentum + keep * d };
                    d = if c.nesterov { d + momentum * *b } else { *b };
                }
                *w += -lr * d;
            }
        }
        Ok(())
    }

    param_state_methods!();
}

/// Errors unless `value` is finite and `>= 0`.
pub(crate) fn check_nonneg(who: &str, field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{who}: {field} = {value} is invalid: it must be finite and >= 0"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{assert_close, run_golden};

    #[test]
    fn hand_computed_momentum_dampening_weight_decay() {
        // momentum 0.5, dampening 0.5, weight decay 0.1, lr 1, w0 = 1, g = 1 every step:
        // t1: d = 1 + 0.1·1 = 1.1, buf = 1.1, w = 1 − 1.1 = −0.1
        // t2: d = 1 + 0.1·(−0.1) = 0.99, buf = 0.5·1.1 + 0.5·0.99 = 1.045, w = −1.145
        let cfg = SgdConfig {
            momentum: 0.5,
            dampening: 0.5,
            weight_decay: 0.1,
            ..SgdConfig::default()
        };
        let mut opt = cfg.build().unwrap();
        let (mut w, g) = ([1.0_f32], [1.0_f32]);
        opt.step(&mut [ParamRef::new("w", &mut w, &g)], 1.0)
            .unwrap();
        assert_close(&w, &[-0.1], 1e-7);
        opt.step(&mut [ParamRef::new("w", &mut w, &g)], 1.0)
            .unwrap();
        assert_close(&w, &[-1.145], 1e-6);
        assert_close(&opt.state()["momentum_buffer.w"], &[1.045], 1e-6);
    }

    #[test]
    fn hand_computed_nesterov() {
        // momentum 0.9, Nesterov, lr 0.1, w0 = 0, g = 1:
        // t1: buf = 1, d = 1 + 0.9 = 1.9, w = −0.19
        // t2: buf = 1.9, d = 1 + 1.71 = 2.71, w = −0.19 − 0.271 = −0.461
        let cfg = SgdConfig {
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        };
        let mut opt = cfg.build().unwrap();
        let (mut w, g) = ([0.0_f32], [1.0_f32]);
        opt.step(&mut [ParamRef::new("w", &mut w, &g)], 0.1)
            .unwrap();
        assert_close(&w, &[-0.19], 1e-7);
        opt.step(&mut [ParamRef::new("w", &mut w, &g)], 0.1)
            .unwrap();
        assert_close(&w, &[-0.461], 1e-6);
    }

    /// Golden values from the PyTorch script quoted in `optim::tests`.
    #[test]
    fn matches_pytorch() {
        // run(torch.optim.SGD, 0.1)
        let plain = SgdConfig::default().build().unwrap();
        let (w, b) = run_golden(Box::new(plain), 0.1);
        assert_close(
            &w,
            &[
                0.4787500202655792,
                -1.2587499618530273,
                1.9987499713897705,
                0.1300000101327896,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.8374999761581421, 0.484375], 1e-6);

        // run(torch.optim.SGD, 0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
        let damped = SgdConfig {
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 0.01,
            ..SgdConfig::default()
        };
        let (w, b) = run_golden(Box::new(damped.build().unwrap()), 0.1);
        assert_close(
            &w,
            &[
                0.46703535318374634,
                -1.2498033046722412,
                1.986451506614685,
                0.1390048712491989,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.9121254086494446, 0.6104231476783752], 1e-6);

        // run(torch.optim.SGD, 0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
        let nesterov = SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..SgdConfig::default()
        };
        let (w, b) = run_golden(Box::new(nesterov.build().unwrap()), 0.1);
        assert_close(
            &w,
            &[
                0.44667860865592957,
                -1.2599093914031982,
                1.9870376586914062,
                0.13713990151882172,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.9816657304763794, 0.7608212232589722], 1e-6);
    }

    #[test]
    fn rejects_bad_config() {
        for bad in [
            SgdConfig {
                lr: -1.0,
                ..SgdConfig::default()
            },
            SgdConfig {
                momentum: f64::NAN,
                ..SgdConfig::default()
            },
            SgdConfig {
                momentum: 0.9,
                dampening: 0.1,
                nesterov: true,
                ..SgdConfig::default()
            },
        ] {
            assert!(bad.build().is_err(), "{bad:?}");
        }
    }
}
