//! Which number format the recurrent layers' matrix products use.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The arithmetic of the recurrent layers' matrix products (`train.precision`).
///
/// `Bf16` is mixed precision as `torch.autocast("cpu", dtype=torch.bfloat16)` does it: weights
/// and activations are rounded to bfloat16 as they enter a product, which accumulates in f32;
/// the master weights, their gradients, the optimizer, the gate math and the cell state stay
/// f32. It needs AVX512-BF16; [`Precision::effective`] says what a CPU will run.
///
/// ```
/// use rnnkit::Precision;
/// assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
/// assert_eq!(Precision::default(), Precision::F32);
/// assert_eq!(Precision::F32.effective(), Precision::F32);
/// assert!("fp8".parse::<Precision>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 throughout (the default).
    #[default]
    F32,
    /// bfloat16 operands in the recurrent products, f32 accumulation and master weights.
    Bf16,
}

impl Precision {
    /// The name in configs: `f32` or `bf16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// What runs on this CPU: `Bf16` needs AVX512-BF16 (see
    /// [`crate::kernels::bf16::has_bf16_dot`]); without it, `F32`.
    pub fn effective(self) -> Precision {
        match self {
            Precision::Bf16 if !crate::kernels::bf16::has_bf16_dot() => Precision::F32,
            p => p,
        }
    }

    /// A line for the user when this CPU cannot run the asked precision, else `None`.
    pub fn fallback_notice(self) -> Option<String> {
        (self.effective() != self).then(|| {
            format!(
                "precision = \"{}\" needs AVX512-BF16, which this CPU lacks \
                 (or RNNKIT_NO_AVX512=1 turned off); training in f32 instead",
                self.as_str()
            )
        })
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(Error::Config(format!(
                "unknown precision {s:?}: use \"f32\" or \"bf16\""
            ))),
        }
    }
}
