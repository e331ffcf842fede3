//! [`OptimizerConfig`]: any optimizer, chosen and tuned from a config file.

use super::{AdagradConfig, AdamConfig, AdamWConfig, Optimizer, RmsPropConfig, SgdConfig};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Which optimizer, with its hyperparameters; `kind` selects it and the other keys are that
/// optimizer's config (unknown keys are errors, missing keys take PyTorch's defaults).
///
/// In TOML:
/// ```toml
/// [optimizer]
/// kind = "sgd"          # sgd | adam | adamw | rmsprop | adagrad
/// lr = 1.0
/// momentum = 0.9
/// ```
///
/// ```
/// use rnnkit::optim::{OptimizerConfig, SgdConfig};
/// let cfg: OptimizerConfig =
///     serde_json::from_str(r#"{"kind": "sgd", "lr": 1.0, "momentum": 0.9}"#).unwrap();
/// assert_eq!(cfg, OptimizerConfig::Sgd(SgdConfig { lr: 1.0, momentum: 0.9, ..SgdConfig::default() }));
/// assert_eq!(cfg.lr(), 1.0);
/// assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "adam", "beta1": 0.9}"#).is_err());
/// let opt = cfg.build().unwrap();
/// assert_eq!(opt.steps(), 0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// `torch.optim.SGD`.
    Sgd(SgdConfig),
    /// `torch.optim.Adam`.
    Adam(AdamConfig),
    /// `torch.optim.AdamW`.
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
    /// `torch.optim.RMSprop`.
    #[serde(rename = "rmsprop")]
    RmsProp(RmsPropConfig),
    /// `torch.optim.Adagrad`.
    Adagrad(AdagradConfig),
}

impl Default for OptimizerConfig {
    /// Adam with PyTorch's defaults (lr 1e-3): the robust choice for small tasks. Zaremba-style
    /// language models use SGD at lr 1 with a step decay instead.
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

impl OptimizerConfig {
    /// The base learning rate (where a schedule starts).
    ///
    /// ```
    /// use rnnkit::optim::OptimizerConfig;
    /// assert_eq!(OptimizerConfig::default().lr(), 1e-3);
    /// ```
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::AdamW(c) => c.lr,
            OptimizerConfig::RmsProp(c) => c.lr,
            OptimizerConfig::Adagrad(c) => c.lr,
        }
    }

    /// How many values of state the optimizer keeps per parameter (for memory estimates):
    /// Adam's two moments, SGD's momentum buffer, RMSprop's square average (and momentum and
    /// mean when used), Adagrad's sum.
    ///
    /// ```
    /// use rnnkit::optim::OptimizerConfig;
    /// assert_eq!(OptimizerConfig::default().state_slots(), 2); // Adam
    /// ```
    pub fn state_slots(&self) -> usize {
        match self {
            OptimizerConfig::Sgd(c) => usize::from(c.momentum != 0.0),
            OptimizerConfig::Adam(_) | OptimizerConfig::AdamW(_) => 2,
            OptimizerConfig::RmsProp(c) => {
                1 + usize::from(c.momentum != 0.0) + usize::from(c.centered)
            }
            OptimizerConfig::Adagrad(_) => 1,
        }
    }

    /// The `kind` key: `sgd`, `adam`, `adamw`, `rmsprop` or `adagrad`.
    ///
    /// ```
    /// use rnnkit::optim::OptimizerConfig;
    /// assert_eq!(OptimizerConfig::default().kind_name(), "adam");
    /// ```
    pub fn kind_name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdamW(_) => "adamw",
            OptimizerConfig::RmsProp(_) => "rmsprop",
            OptimizerConfig::Adagrad(_) => "adagrad",
        }
    }

    /// Checks the hyperparameters.
    ///
    /// ```
    /// use rnnkit::optim::OptimizerConfig;
    /// let bad: OptimizerConfig = serde_json::from_str(r#"{"kind": "adagrad", "lr": -1}"#).unwrap();
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerConfig::Sgd(c) => c.validate(),
            OptimizerConfig::Adam(c) => c.validate(),
            OptimizerConfig::AdamW(c) => c.validate(),
            OptimizerConfig::RmsProp(c) => c.validate(),
            OptimizerConfig::Adagrad(c) => c.validate(),
        }
    }

    /// Validates and builds the optimizer.
    ///
    /// ```
    /// use rnnkit::optim::{OptimizerConfig, ParamRef};
    /// let cfg: OptimizerConfig = serde_json::from_str(r#"{"kind": "rmsprop"}"#).unwrap();
    /// let mut opt = cfg.build().unwrap();
    /// let (mut w, g) = ([1.0_f32], [1.0_f32]);
    /// opt.step(&mut [ParamRef::new("w", &mut w, &g)], cfg.lr() as f32).unwrap();
    /// assert!(w[0] < 1.0);
    /// ```
    pub fn build(&self) -> Result<Box<dyn Optimizer + Send>> {
        Ok(match self {
            OptimizerConfig::Sgd(c) => Box::new(c.build()?),
            OptimizerConfig::Adam(c) => Box::new(c.build()?),
            OptimizerConfig::AdamW(c) => Box::new(c.build()?),
            OptimizerConfig::RmsProp(c) => Box::new(c.build()?),
            OptimizerConfig::Adagrad(c) => Box::new(c.build()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_every_kind() {
        for kind in ["sgd", "adam", "adamw", "rmsprop", "adagrad"] {
            let cfg: OptimizerConfig =
                serde_json::from_str(&format!(r#"{{"kind": "{kind}"}}"#)).unwrap();
            assert_eq!(cfg.kind_name(), kind);
            let text = serde_json::to_string(&cfg).unwrap();
            assert_eq!(serde_json::from_str::<OptimizerConfig>(&text).unwrap(), cfg);
            cfg.build().unwrap();
            let typo = format!(r#"{{"kind": "{kind}", "learning_rate": 0.1}}"#);
            assert!(
                serde_json::from_str::<OptimizerConfig>(&typo).is_err(),
                "{kind}"
            );
        }
        assert!(serde_json::from_str::<OptimizerConfig>(r#"{"kind": "lbfgs"}"#).is_err());
    }
}
