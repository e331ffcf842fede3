//! What a recurrent stack is: cell kind and sizes, named as PyTorch names them.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The recurrent cell of a stack.
///
/// ```
/// use rnnkit::CellKind;
/// assert_eq!(CellKind::Lstm.num_gates(), 4);
/// assert_eq!("gru".parse::<CellKind>().unwrap(), CellKind::Gru);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Long short-term memory, gates `i, f, g, o` (PyTorch order).
    Lstm,
    /// Gated recurrent unit, PyTorch/cuDNN variant, gates `r, z, n`.
    Gru,
    /// Elman RNN with `tanh`.
    RnnTanh,
    /// Elman RNN with `relu`.
    RnnRelu,
}

impl CellKind {
    /// Number of gate blocks stacked in `weight_ih`/`weight_hh` (`G`).
    pub fn num_gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
        }
    }

    /// The name used in case files and configs (`lstm`, `gru`, `rnn_tanh`, `rnn_relu`).
    pub fn as_str(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::RnnTanh => "rnn_tanh",
            CellKind::RnnRelu => "rnn_relu",
        }
    }

    /// Whether the cell carries a cell state `c` besides `h`.
    pub fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }
}

impl std::fmt::Display for CellKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CellKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lstm" => Ok(CellKind::Lstm),
            "gru" => Ok(CellKind::Gru),
            "rnn_tanh" | "rnn" | "tanh" => Ok(CellKind::RnnTanh),
            "rnn_relu" | "relu" => Ok(CellKind::RnnRelu),
            other => Err(Error::Config(format!(
                "unknown cell `{other}`: expected one of lstm, gru, rnn_tanh, rnn_relu"
            ))),
        }
    }
}

/// Shape of a recurrent stack, with PyTorch's names (`torch.nn.LSTM(input_size, hidden_size, ...)`).
///
/// ```
/// use rnnkit::{CellKind, RnnConfig};
/// let cfg = RnnConfig::new(CellKind::Lstm, 32, 64).num_layers(2).bidirectional(true);
/// assert_eq!(cfg.output_size(), 128);
/// cfg.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RnnConfig {
    /// The cell.
    pub cell: CellKind,
    /// Features per input step (`I`).
    pub input_size: usize,
    /// Hidden units per direction (`H`).
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    #[serde(default = "one")]
    pub num_layers: usize,
    /// LSTM projection size (`proj_size`; default 0 = no projection). The output and `h` then
    /// have this size.
    #[serde(default)]
    pub proj_size: usize,
    /// Run a second, reversed direction and concatenate (default false).
    #[serde(default)]
    pub bidirectional: bool,
    /// Whether the four bias vectors exist (default true).
    #[serde(default = "yes")]
    pub bias: bool,
    /// Dropout probability on each layer's output except the last, in training only (default 0).
    #[serde(default)]
    pub dropout: f32,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

impl RnnConfig {
    /// A one-layer, unidirectional stack with biases and no dropout.
    pub fn new(cell: CellKind, input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            cell,
            input_size,
            hidden_size,
            num_layers: 1,
            proj_size: 0,
            bidirectional: false,
            bias: true,
            dropout: 0.0,
        }
    }

    /// Sets `num_layers`.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    /// Sets `proj_size` (LSTM only).
    pub fn proj_size(mut self, p: usize) -> Self {
        self.proj_size = p;
        self
    }
    /// Sets `bidirectional`.
    pub fn bidirectional(mut self, b: bool) -> Self {
        self.bidirectional = b;
        self
    }
    /// Sets `bias`.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    /// Sets the inter-layer `dropout` probability.
    pub fn dropout(mut self, p: f32) -> Self {
        self.dropout = p;
        self
    }

    /// Number of directions `D` (1 or 2).
    pub fn num_directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }
    /// Size of `h` per direction: `proj_size` when projecting, else `hidden_size`.
    pub fn h_out(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }
    /// Features per output step: `D * h_out`.
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.h_out()
    }
    /// Input features of layer `k`: `input_size` for the first, `D * h_out` after.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.output_size()
        }
    }
    /// Gate width `G * H` of every weight matrix's rows.
    pub fn gate_size(&self) -> usize {
        self.cell.num_gates() * self.hidden_size
    }

    /// The stack's parameter count, in f64: it cannot overflow, whatever sizes an untrusted
    /// config gives.
    ///
    /// ```
    /// use rnnkit::{CellKind, RnnConfig};
    /// // One LSTM layer: 4H × (I + H) weights and two 4H biases.
    /// let c = RnnConfig::new(CellKind::Lstm, 3, 5);
    /// assert_eq!(c.param_count_f64(), (4 * 5 * (3 + 5) + 2 * 4 * 5) as f64);
    /// ```
    pub fn param_count_f64(&self) -> f64 {
        let f = |v: usize| v as f64;
        let h_out = f(self.h_out());
        let gates = f(self.cell.num_gates()) * f(self.hidden_size);
        let biases = if self.bias { 2.0 * gates } else { 0.0 };
        let projection = if self.proj_size > 0 {
            h_out * f(self.hidden_size)
        } else {
            0.0
        };
        let layer = |input: f64| gates * (input + h_out) + biases + projection;
        let first = layer(f(self.input_size));
        let rest = layer(f(self.num_directions()) * h_out) * (f(self.num_layers) - 1.0).max(0.0);
        (first + rest) * f(self.num_directions())
    }

    /// Checks sizes and ranges; every constructor taking a config calls this.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.input_size == 0 {
            return bad("input_size must be at least 1".into());
        }
        if self.hidden_size == 0 {
            return bad("hidden_size must be at least 1".into());
        }
        if self.num_layers == 0 {
            return bad("num_layers must be at least 1".into());
        }
        if self.proj_size > 0 && self.cell != CellKind::Lstm {
            return bad(format!(
                "proj_size is only supported for lstm, not {}",
                self.cell
            ));
        }
        if self.proj_size >= self.hidden_size && self.proj_size > 0 {
            return bad(format!(
                "proj_size ({}) must be smaller than hidden_size ({}), as in PyTorch",
                self.proj_size, self.hidden_size
            ));
        }
        // Sizes from files and configs are untrusted: refuse ones whose parameter count would
        // exceed 2^34 values (64 GiB of f32), instead of aborting on allocation. (What fits
        // this machine is checked before training, by `crate::resources`.)
        if self.param_count_f64() > (1u64 << 34) as f64 {
            return bad(format!(
                "a stack with hidden_size {}, input_size {}, {} layers is too large",
                self.hidden_size, self.input_size, self.num_layers
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }
}
