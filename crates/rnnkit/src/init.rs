//! Weight initialization schemes, selectable per weight kind, seeded and reproducible.
//!
//! | scheme | what | when |
//! |---|---|---|
//! | [`WeightInit::PytorchUniform`] | U(−1/√H, 1/√H) for every parameter | default: PyTorch parity |
//! | [`WeightInit::Uniform`] | U(−a, a) | Zaremba et al. (±0.1, ±0.05) |
//! | [`WeightInit::GlorotUniform`] / [`WeightInit::GlorotNormal`] | Glorot & Bengio (2010), per gate block | input weights (Keras default) |
//! | [`WeightInit::Orthogonal`] | orthogonal per gate block, times `gain` (Saxe et al. 2014) | recurrent weights (Keras default) |
//! | [`WeightInit::Identity`] | `gain · I` per gate block (IRNN, Le et al. 2015) | relu RNNs |
//!
//! Biases are either PyTorch's uniform or zero; `forget_bias` sets the LSTM forget-gate bias
//! (in `bias_ih`, with `bias_hh`'s forget block zeroed, so the sum is the value given).

use crate::config::{CellKind, RnnConfig};
use crate::error::{Error, Result};
use crate::params::RnnParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How to fill one weight matrix.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WeightInit {
    /// U(−1/√H, 1/√H), as `torch.nn.LSTM.reset_parameters`.
    PytorchUniform,
    /// U(−a, a).
    Uniform {
        /// Half-width.
        a: f32,
    },
    /// U(−√(6/(fan_in+fan_out)), +…) per gate block.
    GlorotUniform,
    /// N(0, 2/(fan_in+fan_out)) per gate block.
    GlorotNormal,
    /// A random orthogonal matrix per gate block, scaled by `gain`.
    Orthogonal {
        /// Scale (1.0 usually).
        gain: f32,
    },
    /// `gain` times the identity per gate block.
    Identity {
        /// Scale (1.0 for IRNN).
        gain: f32,
    },
}

/// How biases start.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasInit {
    /// U(−1/√H, 1/√H), as PyTorch.
    PytorchUniform,
    /// All zero (Keras).
    Zeros,
}

/// An initialization recipe for a recurrent stack.
///
/// ```
/// use rnnkit::{CellKind, Init, RnnConfig};
/// let cfg = RnnConfig::new(CellKind::Lstm, 4, 8);
/// let p = Init::practitioner().params(&cfg, 42).unwrap();
/// let b = p.layers[0].bias_ih.as_ref().unwrap();
/// assert_eq!(b[8], 1.0); // forget gate block starts at H = 8
/// // Same seed, same weights.
/// assert_eq!(p, Init::practitioner().params(&cfg, 42).unwrap());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Init {
    /// Input weights `weight_ih` (and the projection `weight_hr`). Default: PyTorch's uniform.
    pub input: WeightInit,
    /// Recurrent weights `weight_hh`. Default: PyTorch's uniform.
    pub recurrent: WeightInit,
    /// Biases. Default: PyTorch's uniform.
    pub bias: BiasInit,
    /// LSTM forget-gate bias; `None` leaves it to `bias`. Default `None` (PyTorch parity);
    /// practitioners use 1.0 (Jozefowicz et al. 2015).
    pub forget_bias: Option<f32>,
}

impl Default for Init {
    /// PyTorch's own initialization, for parity.
    fn default() -> Self {
        Init {
            input: WeightInit::PytorchUniform,
            recurrent: WeightInit::PytorchUniform,
            bias: BiasInit::PytorchUniform,
            forget_bias: None,
        }
    }
}

impl Init {
    /// The Keras-style recipe practitioners use: Glorot-uniform inputs, orthogonal recurrent
    /// weights, zero biases, LSTM forget bias 1.
    pub fn practitioner() -> Self {
        Init {
            input: WeightInit::GlorotUniform,
            recurrent: WeightInit::Orthogonal { gain: 1.0 },
            bias: BiasInit::Zeros,
            forget_bias: Some(1.0),
        }
    }

    /// IRNN (Le et al. 2015): identity recurrent weights, small Gaussian-free uniform inputs,
    /// zero biases; meant for `rnn_relu`.
    pub fn irnn() -> Self {
        Init {
            input: WeightInit::GlorotUniform,
            recurrent: WeightInit::Identity { gain: 1.0 },
            bias: BiasInit::Zeros,
            forget_bias: None,
        }
    }

    /// Fresh parameters for `config`, drawn from a ChaCha8 stream seeded with `seed`.
    pub fn params(&self, config: &RnnConfig, seed: u64) -> Result<RnnParams> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = RnnParams::zeros(config);
        let (h, g) = (config.hidden_size, config.cell.num_gates());
        let stdv = 1.0 / (h as f32).sqrt();
        for layer in &mut params.layers {
            let i = layer.weight_ih.ncols();
            fill(
                self.input,
                layer.weight_ih.as_slice_mut().expect("fresh"),
                g,
                h,
                i,
                stdv,
                &mut rng,
            )?;
            let p = layer.weight_hh.ncols();
            fill(
                self.recurrent,
                layer.weight_hh.as_slice_mut().expect("fresh"),
                g,
                h,
                p,
                stdv,
                &mut rng,
            )?;
            for b in [&mut layer.bias_ih, &mut layer.bias_hh]
                .into_iter()
                .flatten()
            {
                let b = b.as_slice_mut().expect("fresh");
                match self.bias {
                    BiasInit::PytorchUniform => b
                        .iter_mut()
                        .for_each(|v| *v = rng.random_range(-stdv..=stdv)),
                    BiasInit::Zeros => b.fill(0.0),
                }
            }
            if let Some(w) = &mut layer.weight_hr {
                let (rows, cols) = w.dim();
                let scheme = match self.input {
                    WeightInit::Identity { .. } => WeightInit::GlorotUniform,
                    s => s,
                };
                fill(
                    scheme,
                    w.as_slice_mut().expect("fresh"),
                    1,
                    rows,
                    cols,
                    stdv,
                    &mut rng,
                )?;
            }
            if let (Some(fb), CellKind::Lstm, Some(bi), Some(bh)) = (
                self.forget_bias,
                config.cell,
                &mut layer.bias_ih,
                &mut layer.bias_hh,
            ) {
                bi.slice_mut(ndarray::s![h..2 * h]).fill(fb);
                bh.slice_mut(ndarray::s![h..2 * h]).fill(0.0);
            }
        }
        Ok(params)
    }
}

/// Fills a `[blocks * rows, cols]` matrix block by block.
fn fill(
    scheme: WeightInit,
    w: &mut [f32],
    blocks: usize,
    rows: usize,
    cols: usize,
    stdv: f32,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    for block in w.chunks_exact_mut(rows * cols).take(blocks) {
        let glorot = (6.0 / (rows + cols) as f32).sqrt();
        match scheme {
            WeightInit::PytorchUniform => block
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-stdv..=stdv)),
            WeightInit::Uniform { a } => {
                // The range's width 2a must be finite for the sampler.
                if !(a > 0.0 && a <= f32::MAX / 2.0) {
                    return Err(Error::Config(format!(
                        "uniform init needs 0 < a <= {:e}, got {a}",
                        f32::MAX / 2.0
                    )));
                }
                block.iter_mut().for_each(|v| *v = rng.random_range(-a..=a))
            }
            WeightInit::GlorotUniform => block
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-glorot..=glorot)),
            WeightInit::GlorotNormal => {
                let std = (2.0 / (rows + cols) as f64).sqrt();
                block
                    .iter_mut()
                    .for_each(|v| *v = (normal(rng) * std) as f32)
            }
            WeightInit::Orthogonal { gain } => orthogonal(block, rows, cols, gain, rng),
            WeightInit::Identity { gain } => {
                block.fill(0.0);
                for k in 0..rows.min(cols) {
                    block[k * cols + k] = gain;
                }
            }
        }
    }
    Ok(())
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A `[rows, cols]` matrix with orthonormal rows (or columns, whichever are fewer), by
/// Gram–Schmidt on a Gaussian matrix in f64.
fn orthogonal(out: &mut [f32], rows: usize, cols: usize, gain: f32, rng: &mut ChaCha8Rng) {
    // Orthonormalize the `short` vectors of length `long`, then lay them out as rows or columns.
    let (short, long) = if rows <= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(short);
    while q.len() < short {
        let mut v: Vec<f64> = (0..long).map(|_| normal(rng)).collect();
        for _ in 0..2 {
            for u in &q {
                let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-6 {
            v.iter_mut().for_each(|a| *a /= norm);
            q.push(v);
        }
    }
    for r in 0..rows {
        for c in 0..cols {
            let val = if rows <= cols { q[r][c] } else { q[c][r] };
            out[r * cols + c] = gain * val as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_ranges_the_sampler_cannot_draw_from_are_errors() {
        let cfg = RnnConfig::new(CellKind::Lstm, 3, 4);
        for a in [0.0, -1.0, f32::NAN, f32::INFINITY, 2e38] {
            let init = Init {
                input: WeightInit::Uniform { a },
                ..Init::default()
            };
            assert!(init.params(&cfg, 0).is_err(), "a = {a}");
        }
        let ok = Init {
            input: WeightInit::Uniform { a: 1e38 },
            ..Init::default()
        };
        assert!(ok.params(&cfg, 0).is_ok());
    }

    #[test]
    fn orthogonal_blocks_are_orthogonal() {
        let cfg = RnnConfig::new(CellKind::Gru, 3, 6);
        let init = Init {
            recurrent: WeightInit::Orthogonal { gain: 1.0 },
            ..Init::default()
        };
        let p = init.params(&cfg, 3).unwrap();
        let w = &p.layers[0].weight_hh; // [3*6, 6]
        for g in 0..3 {
            for a in 0..6 {
                for b in 0..6 {
                    let dot: f32 = (0..6).map(|k| w[[g * 6 + a, k]] * w[[g * 6 + b, k]]).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "block {g} rows {a},{b}: {dot}");
                }
            }
        }
    }

    #[test]
    fn pytorch_uniform_stays_in_range_and_identity_is_identity() {
        let cfg = RnnConfig::new(CellKind::RnnRelu, 5, 16);
        let p = Init::default().params(&cfg, 1).unwrap();
        let bound = 0.25 + 1e-7;
        assert!(p.tensors().flatten().all(|v| v.abs() <= bound));
        assert!(p.tensors().flatten().any(|v| v.abs() > 0.2));
        let p = Init::irnn().params(&cfg, 1).unwrap();
        assert_eq!(p.layers[0].weight_hh, ndarray::Array2::<f32>::eye(16));
        assert!(
            p.layers[0]
                .bias_ih
                .as_ref()
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
    }

    #[test]
    fn glorot_normal_has_the_right_spread() {
        let cfg = RnnConfig::new(CellKind::RnnTanh, 200, 200);
        let init = Init {
            input: WeightInit::GlorotNormal,
            ..Init::default()
        };
        let p = init.params(&cfg, 9).unwrap();
        let w = p.layers[0].weight_ih.as_slice().unwrap();
        let var = w.iter().map(|v| (v * v) as f64).sum::<f64>() / w.len() as f64;
        assert!((var - 2.0 / 400.0).abs() < 0.0005, "variance {var}");
    }

    #[test]
    fn different_seeds_differ() {
        let cfg = RnnConfig::new(CellKind::Lstm, 2, 3);
        assert_ne!(
            Init::default().params(&cfg, 1).unwrap(),
            Init::default().params(&cfg, 2).unwrap()
        );
    }
}
