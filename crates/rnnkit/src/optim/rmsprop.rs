//! RMSprop, as `torch.optim.RMSprop`.
//!
//! Per parameter `p` with gradient `g`, learning rate `lr`:
//! ```text
//! g  = g + weight_decay · p
//! v  = α·v + (1 − α)·g²                          (square_avg)
//! if centered:  ḡ = lerp(ḡ, g, 1 − α);  s = √(v − ḡ²) + eps     (grad_avg)
//! else:         s = √v + eps
//! if momentum > 0:  buf = momentum·buf + g / s;  p = p − lr·buf   (momentum_buffer)
//! else:             p = p − lr · g / s
//! ```
//! Note PyTorch's (and Hinton's) `eps` outside the square root, unlike Keras/TensorFlow.

use super::adam::lerp;
use super::state::ParamState;
use super::{Optimizer, ParamRef};
use crate::error::{Error, Result};
use crate::optim::sgd::check_nonneg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyperparameters of [`RmsProp`], named as `torch.optim.RMSprop`'s.
///
/// ```
/// use rnnkit::optim::RmsPropConfig;
/// let cfg: RmsPropConfig = serde_json::from_str(r#"{"centered": true}"#).unwrap();
/// assert_eq!(cfg.alpha, 0.99);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RmsPropConfig {
    /// Base learning rate (a schedule starts from it). Default 1e-2, PyTorch's.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average, in `[0, 1]`. Default 0.99, PyTorch's.
    pub alpha: f64,
    /// Added to the denominator for stability. Default 1e-8, PyTorch's.
    pub eps: f64,
    /// L2 penalty added to the gradient. Default 0, PyTorch's.
    pub weight_decay: f64,
    /// Momentum factor (0 = none). Default 0, PyTorch's.
    pub momentum: f64,
    /// Normalize by the estimated variance instead of the raw second moment (Graves 2013).
    /// Default false, PyTorch's.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    /// `torch.optim.RMSprop`'s defaults: lr 1e-2, alpha 0.99, eps 1e-8, no weight decay, no
    /// momentum, not centered.
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmsPropConfig {
    /// Checks ranges as PyTorch does (and finiteness).
    ///
    /// ```
    /// use rnnkit::optim::RmsPropConfig;
    /// assert!(RmsPropConfig { alpha: 1.5, ..RmsPropConfig::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        check_nonneg("rmsprop", "lr", self.lr)?;
        check_nonneg("rmsprop", "eps", self.eps)?;
        check_nonneg("rmsprop", "weight_decay", self.weight_decay)?;
        check_nonneg("rmsprop", "momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::Config(format!(
                "rmsprop: alpha = {} is invalid: it must be in [0, 1]",
                self.alpha
            )));
        }
        Ok(())
    }

    /// Validates and builds the optimizer.
    ///
    /// ```
    /// use rnnkit::optim::{Optimizer, ParamRef, RmsPropConfig};
    /// let mut opt = RmsPropConfig { alpha: 0.0, eps: 0.0, ..RmsPropConfig::default() }.build().unwrap();
    /// let (mut w, g) = ([1.0_f32], [-4.0_f32]);
    /// opt.step(&mut [ParamRef::new("w", &mut w, &g)], 0.5).unwrap();
    /// assert_eq!(w, [1.5]); // alpha 0: g / |g|
    /// ```
    pub fn build(&self) -> Result<RmsProp> {
        self.validate()?;
        let mut kinds = vec![("square_avg", 0.0)];
        if self.momentum > 0.0 {
            kinds.push(("momentum_buffer", 0.0));
        }
        if self.centered {
            kinds.push(("grad_avg", 0.0));
        }
        Ok(RmsProp {
            config: self.clone(),
            state: ParamState::new(kinds),
        })
    }
}

/// RMSprop; build it with [`RmsPropConfig::build`].
///
/// State: `square_avg.{param}`, `momentum_buffer.{param}` (with momentum), `grad_avg.{param}`
/// (centered) and `step`.
///
/// ```
/// use rnnkit::optim::{Optimizer, RmsPropConfig};
/// let opt = RmsPropConfig { momentum: 0.9, centered: true, ..RmsPropConfig::default() }
///     .build()
///     .unwrap();
/// assert_eq!(opt.config().momentum, 0.9);
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp {
    config: RmsPropConfig,
    state: ParamState,
}

impl RmsProp {
    /// The hyperparameters.
    ///
    /// ```
    /// use rnnkit::optim::RmsPropConfig;
    /// assert_eq!(RmsPropConfig::default().build().unwrap().config().lr, 1e-2);
    /// ```
    pub fn config(&self) -> &RmsPropConfig {
        &self.config
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, params: &mut [ParamRef<'_>], lr: f32) -> Result<()> {
        self.state.begin_step(params, lr)?;
        let c = &self.config;
        let (alpha, keep) = (c.alpha as f32, (1.0 - c.alpha) as f32);
        let (eps, wd, momentum) = (c.eps as f32, c.weight_decay as f32, c.momentum as f32);
        let has_momentum = c.momentum > 0.0;
        for p in params.iter_mut() {
            let bufs = self.state.bufs_mut(p.name);
            let (square_avg, rest) = bufs.split_first_mut().expect("square_avg");
            let (mut momentum_buf, mut grad_avg) = (None, None);
            let mut rest = rest.iter_mut();
            if has_momentum {
                momentum_buf = rest.next();
            }
            if c.centered {
                grad_avg = rest.next();
            }
            for (i, (w, &g)) in p.value.iter_mut().zip(p.grad).enumerate() {
                let g = if wd != 0.0 { g + wd * *w } else { g };
                let v = &mut square_avg[i];
                *v = *v * alpha + keep * g * g;
                let avg = match grad_avg.as_deref_mut() {
                    Some(ga) => {
                        ga[i] = lerp(ga[i], g, keep);
                        (*v + -ga[i] * ga[i]).sqrt()
                    }
                    None => v.sqrt(),
                } + eps;
                match momentum_buf.as_deref_mut() {
                    Some(buf) => {
                        buf[i] = buf[i] * momentum + g / avg;
                        *w += -lr * buf[i];
                    }
                    None => *w += -lr * (g / avg),
                }
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
    fn hand_computed_centered_momentum() {
        // alpha 0.5, eps 0, momentum 0.5, centered, lr 1, w0 = 0, g = 2 then 1:
        // t1: v = 2, ḡ = 1, s = √(2 − 1) = 1, buf = 2, w = −2
        // t2: v = 1 + 0.5 = 1.5, ḡ = 1, s = √0.5, buf = 1 + 1/√0.5, w = −2 − buf
        let cfg = RmsPropConfig {
            alpha: 0.5,
            eps: 0.0,
            momentum: 0.5,
            centered: true,
            ..RmsPropConfig::default()
        };
        let mut opt = cfg.build().unwrap();
        let mut w = [0.0_f32];
        opt.step(&mut [ParamRef::new("w", &mut w, &[2.0])], 1.0)
            .unwrap();
        assert_close(&w, &[-2.0], 1e-7);
        opt.step(&mut [ParamRef::new("w", &mut w, &[1.0])], 1.0)
            .unwrap();
        assert_close(&w, &[-3.0 - 1.0 / 0.5_f64.sqrt()], 1e-6);
    }

    #[test]
    fn matches_pytorch() {
        // run(torch.optim.RMSprop, 0.01)
        let (w, b) = run_golden(Box::new(RmsPropConfig::default().build().unwrap()), 0.01);
        assert_close(
            &w,
            &[
                0.35813388228416443,
                -1.203199863433838,
                1.9364687204360962,
                0.19076381623744965,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.8523415923118591, 0.3922045826911926], 1e-6);

        // run(torch.optim.RMSprop, 0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.5,
        //     centered=True)
        let cfg = RmsPropConfig {
            lr: 0.01,
            alpha: 0.9,
            eps: 1e-6,
            weight_decay: 0.01,
            momentum: 0.5,
            centered: true,
        };
        let (w, b) = run_golden(Box::new(cfg.build().unwrap()), 0.01);
        assert_close(
            &w,
            &[
                0.4375775456428528,
                -1.226975679397583,
                1.9712984561920166,
                0.15393127501010895,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.7972201704978943, 0.340468168258667], 1e-6);
    }
}
