//! Adam and AdamW, as `torch.optim.Adam` and `torch.optim.AdamW`.
//!
//! Per parameter `p` with gradient `g`, at step `t` (1-based), learning rate `lr`:
//! ```text
//! Adam:   g = g + weight_decay · p            (L2 penalty added to the gradient)
//! AdamW:  p = p · (1 − lr · weight_decay)     (decoupled decay, before the update)
//! m = lerp(m, g, 1 − β₁)                      (= β₁·m + (1 − β₁)·g)
//! v = β₂·v + (1 − β₂)·g²
//! v̄ = max(v̄, v), used instead of v below   (amsgrad only)
//! p = p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
//! ```
//! As in PyTorch, `eps` is added after the square root of the bias-corrected second moment,
//! and the bias corrections are computed in double precision.

use super::state::ParamState;
use super::{Optimizer, ParamRef};
use crate::error::{Error, Result};
use crate::optim::sgd::check_nonneg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyperparameters of Adam ([`Adam`] with L2 weight decay), named as `torch.optim.Adam`'s.
///
/// ```
/// use rnnkit::optim::AdamConfig;
/// let cfg: AdamConfig = serde_json::from_str(r#"{"lr": 2e-3, "betas": [0.9, 0.99]}"#).unwrap();
/// assert_eq!(cfg.eps, 1e-8);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Base learning rate (a schedule starts from it). Default 1e-3, PyTorch's (and Kingma & Ba's).
    pub lr: f64,
    /// Decay rates `[β₁, β₂]` of the first and second moments, each in `[0, 1)`.
    /// Default `[0.9, 0.999]`, PyTorch's.
    pub betas: [f64; 2],
    /// Added to the denominator for stability. Default 1e-8, PyTorch's.
    pub eps: f64,
    /// L2 penalty added to the gradient. Default 0, PyTorch's.
    pub weight_decay: f64,
    /// AMSGrad (Reddi et al. 2018): divide by the running maximum of the second moment.
    /// Default false, PyTorch's.
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    /// `torch.optim.Adam`'s defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay,
    /// no AMSGrad.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

/// Hyperparameters of AdamW ([`Adam`] with decoupled weight decay, Loshchilov & Hutter 2019),
/// named as `torch.optim.AdamW`'s.
///
/// ```
/// use rnnkit::optim::AdamWConfig;
/// assert_eq!(AdamWConfig::default().weight_decay, 1e-2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// Base learning rate (a schedule starts from it). Default 1e-3, PyTorch's.
    pub lr: f64,
    /// Decay rates `[β₁, β₂]`, each in `[0, 1)`. Default `[0.9, 0.999]`, PyTorch's.
    pub betas: [f64; 2],
    /// Added to the denominator for stability. Default 1e-8, PyTorch's.
    pub eps: f64,
    /// Decoupled decay: `p *= 1 − lr · weight_decay` each step. Default 1e-2, PyTorch's.
    pub weight_decay: f64,
    /// AMSGrad (Reddi et al. 2018): divide by the running maximum of the second moment.
    /// Default false, PyTorch's.
    pub amsgrad: bool,
}

impl Default for AdamWConfig {
    /// `torch.optim.AdamW`'s defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay
    /// 1e-2 (AdamW without decay is Adam), no AMSGrad.
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// Checks ranges as PyTorch does (and finiteness).
    ///
    /// ```
    /// use rnnkit::optim::AdamConfig;
    /// assert!(AdamConfig { betas: [1.0, 0.999], ..AdamConfig::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        validate("adam", self.lr, self.betas, self.eps, self.weight_decay)
    }

    /// Validates and builds Adam.
    ///
    /// ```
    /// use rnnkit::optim::{AdamConfig, Optimizer};
    /// assert_eq!(AdamConfig::default().build().unwrap().steps(), 0);
    /// ```
    pub fn build(&self) -> Result<Adam> {
        self.validate()?;
        Ok(Adam::new(self, false))
    }
}

impl AdamWConfig {
    /// Checks ranges as PyTorch does (and finiteness).
    ///
    /// ```
    /// use rnnkit::optim::AdamWConfig;
    /// assert!(AdamWConfig { eps: -1.0, ..AdamWConfig::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        validate("adamw", self.lr, self.betas, self.eps, self.weight_decay)
    }

    /// Validates and builds AdamW.
    ///
    /// ```
    /// use rnnkit::optim::{AdamWConfig, Optimizer, ParamRef};
    /// let mut opt = AdamWConfig { weight_decay: 0.5, ..AdamWConfig::default() }.build().unwrap();
    /// let (mut w, g) = ([2.0_f32], [0.0_f32]);
    /// opt.step(&mut [ParamRef::new("w", &mut w, &g)], 0.1).unwrap();
    /// assert_eq!(w, [1.9]); // decay only: 2 · (1 − 0.1 · 0.5)
    /// ```
    pub fn build(&self) -> Result<Adam> {
        self.validate()?;
        let as_adam = AdamConfig {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
        };
        Ok(Adam::new(&as_adam, true))
    }
}

fn validate(who: &str, lr: f64, betas: [f64; 2], eps: f64, weight_decay: f64) -> Result<()> {
    check_nonneg(who, "lr", lr)?;
    check_nonneg(who, "eps", eps)?;
    check_nonneg(who, "weight_decay", weight_decay)?;
    for (k, b) in betas.into_iter().enumerate() {
        if !(0.0..1.0).contains(&b) {
            return Err(Error::Config(format!(
                "{who}: betas[{k}] = {b} is invalid: it must be in [0, 1)"
            )));
        }
    }
    Ok(())
}

/// Adam or AdamW; build it with [`AdamConfig::build`] or [`AdamWConfig::build`].
///
/// State: `exp_avg.{param}`, `exp_avg_sq.{param}`, `max_exp_avg_sq.{param}` (AMSGrad only)
/// and `step`.
///
/// ```
/// use rnnkit::optim::{AdamConfig, Optimizer, ParamRef};
/// let mut adam = AdamConfig::default().build().unwrap();
/// let (mut w, g) = ([0.0_f32, 0.0], [3.0_f32, -0.5]);
/// adam.step(&mut [ParamRef::new("w", &mut w, &g)], 0.01).unwrap();
/// // The first step is lr · sign(g) (up to eps).
/// assert!((w[0] + 0.01).abs() < 1e-7 && (w[1] - 0.01).abs() < 1e-7);
/// assert_eq!(adam.state().len(), 3); // step, exp_avg.w, exp_avg_sq.w
/// ```
#[derive(Clone, Debug)]
pub struct Adam {
    /// Hyperparameters (`lr` is the base rate; `step` takes the current one).
    config: AdamConfig,
    /// AdamW's decoupled weight decay instead of Adam's L2.
    decoupled: bool,
    state: ParamState,
}

impl Adam {
    fn new(config: &AdamConfig, decoupled: bool) -> Self {
        let mut kinds = vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)];
        if config.amsgrad {
            kinds.push(("max_exp_avg_sq", 0.0));
        }
        Adam {
            config: config.clone(),
            decoupled,
            state: ParamState::new(kinds),
        }
    }

    /// Whether this is AdamW (decoupled weight decay).
    ///
    /// ```
    /// use rnnkit::optim::{AdamConfig, AdamWConfig};
    /// assert!(AdamWConfig::default().build().unwrap().is_adamw());
    /// assert!(!AdamConfig::default().build().unwrap().is_adamw());
    /// ```
    pub fn is_adamw(&self) -> bool {
        self.decoupled
    }

    /// The base learning rate of the config it was built from.
    ///
    /// ```
    /// use rnnkit::optim::AdamConfig;
    /// assert_eq!(AdamConfig::default().build().unwrap().base_lr(), 1e-3);
    /// ```
    pub fn base_lr(&self) -> f64 {
        self.config.lr
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [ParamRef<'_>], lr: f32) -> Result<()> {
        let t = self.state.begin_step(params, lr)? as f64;
        let c = &self.config;
        let [beta1, beta2] = c.betas;
        // Scalars as PyTorch forms them: Python floats, cast to f32 by the kernels.
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2_sqrt = (1.0 - beta2.powf(t)).sqrt() as f32;
        let step_size = (lr as f64 / bias_correction1) as f32;
        let decay = (1.0 - lr as f64 * c.weight_decay) as f32;
        let decoupled = self.decoupled && c.weight_decay != 0.0;
        let l2 = if self.decoupled {
            0.0
        } else {
            c.weight_decay as f32
        };
        let (w1, w2) = ((1.0 - beta1) as f32, (1.0 - beta2) as f32);
        let (beta2, eps) = (beta2 as f32, c.eps as f32);
        for p in params.iter_mut() {
            let (m, v, mut vmax) = match self.state.bufs_mut(p.name) {
                [m, v] => (m, v, None),
                [m, v, vmax] => (m, v, Some(vmax)),
                _ => unreachable!("Adam keeps two or three buffers"),
            };
            for (i, (w, &g)) in p.value.iter_mut().zip(p.grad).enumerate() {
                if decoupled {
                    *w *= decay;
                }
                let g = if l2 != 0.0 { g + l2 * *w } else { g };
                m[i] = lerp(m[i], g, w1);
                v[i] = v[i] * beta2 + w2 * g * g;
                let second = match vmax.as_deref_mut() {
                    Some(vmax) => {
                        vmax[i] = vmax[i].max(v[i]);
                        vmax[i]
                    }
                    None => v[i],
                };
                let denom = second.sqrt() / bias_correction2_sqrt + eps;
                *w += -step_size * (m[i] / denom);
            }
        }
        Ok(())
    }

    param_state_methods!();
}

/// `torch.lerp(start, end, weight)` as PyTorch computes it (two forms for accuracy).
pub(crate) fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::{assert_close, run_golden};

    #[test]
    fn hand_computed_two_steps() {
        // β = (0.5, 0.75), eps 0, lr 1, w0 = 0, g = 2 then 1:
        // t1: m = 1, v = 1, m̂ = 1/0.5 = 2, v̂ = 1/0.25 = 4 → w = −2/2 = −1
        // t2: m = 0.5 + 0.5 = 1, v = 0.75 + 0.25 = 1, bc1 = 0.75, bc2 = 0.4375
        //     w = −1 − (1/0.75) / (1/√0.4375) = −1 − √0.4375/0.75
        let cfg = AdamConfig {
            betas: [0.5, 0.75],
            eps: 0.0,
            ..AdamConfig::default()
        };
        let mut opt = cfg.build().unwrap();
        let mut w = [0.0_f32];
        opt.step(&mut [ParamRef::new("w", &mut w, &[2.0])], 1.0)
            .unwrap();
        assert_close(&w, &[-1.0], 1e-7);
        opt.step(&mut [ParamRef::new("w", &mut w, &[1.0])], 1.0)
            .unwrap();
        assert_close(&w, &[-1.0 - 0.4375_f64.sqrt() / 0.75], 1e-6);
    }

    #[test]
    fn matches_pytorch_adam() {
        // run(torch.optim.Adam, 0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
        let cfg = AdamConfig {
            lr: 0.01,
            betas: [0.8, 0.95],
            eps: 1e-6,
            weight_decay: 0.1,
            amsgrad: false,
        };
        let (w, b) = run_golden(Box::new(cfg.build().unwrap()), 0.01);
        assert_close(
            &w,
            &[
                0.48333677649497986,
                -1.2413432598114014,
                1.9899755716323853,
                0.13251134753227234,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.7639287710189819, 0.31339067220687866], 1e-6);
    }

    #[test]
    fn matches_pytorch_adamw() {
        // run(torch.optim.AdamW, 0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)
        let cfg = AdamWConfig {
            lr: 0.01,
            betas: [0.8, 0.95],
            eps: 1e-6,
            weight_decay: 0.1,
            amsgrad: false,
        };
        let (w, b) = run_golden(Box::new(cfg.build().unwrap()), 0.01);
        assert_close(
            &w,
            &[
                0.48297300934791565,
                -1.2416199445724487,
                1.989082932472229,
                0.13239727914333344,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.7628504633903503, 0.31299248337745667], 1e-6);
    }

    #[test]
    fn matches_pytorch_amsgrad() {
        // run(torch.optim.Adam, 0.01, betas=(0.8, 0.95), eps=1e-6, amsgrad=True)
        let cfg = AdamConfig {
            lr: 0.01,
            betas: [0.8, 0.95],
            eps: 1e-6,
            weight_decay: 0.0,
            amsgrad: true,
        };
        let (w, b) = run_golden(Box::new(cfg.build().unwrap()), 0.01);
        assert_close(
            &w,
            &[
                0.48384955525398254,
                -1.2437995672225952,
                1.9925743341445923,
                0.13262280821800232,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.7641709446907043, 0.313444584608078], 1e-6);

        // run(torch.optim.AdamW, 0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1,
        //     amsgrad=True)
        let cfg = AdamWConfig {
            lr: 0.01,
            betas: [0.8, 0.95],
            eps: 1e-6,
            weight_decay: 0.1,
            amsgrad: true,
        };
        let (w, b) = run_golden(Box::new(cfg.build().unwrap()), 0.01);
        assert_close(
            &w,
            &[
                0.48298367857933044,
                -1.2416199445724487,
                1.989082932472229,
                0.13239727914333344,
            ],
            1e-6,
        );
        assert_close(&b, &[-0.7628504633903503, 0.312911719083786], 1e-6);
    }
}
