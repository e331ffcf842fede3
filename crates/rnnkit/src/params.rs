//! Parameters of a recurrent stack, named and shaped as PyTorch's `state_dict`.
//!
//! One struct, [`LayerParams`], serves for weights and for their gradients (same names, same
//! shapes), as in llm.c. [`RnnParams`] holds one `LayerParams` per layer and direction, in
//! PyTorch's order: `layers[layer * D + direction]`.

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use std::collections::BTreeMap;

/// The parameters (or gradients) of one layer and direction.
///
/// Shapes (PyTorch's): `weight_ih [G*H, I_k]`, `weight_hh [G*H, P]`, `bias_ih`, `bias_hh`
/// `[G*H]` (absent when `bias = false`), `weight_hr [P, H]` (LSTM with projection only).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// Input-to-gates weights `[G*H, I_k]`.
    pub weight_ih: Array2<f32>,
    /// Hidden-to-gates weights `[G*H, P]`.
    pub weight_hh: Array2<f32>,
    /// Input-side gate bias `[G*H]`.
    pub bias_ih: Option<Array1<f32>>,
    /// Hidden-side gate bias `[G*H]`.
    pub bias_hh: Option<Array1<f32>>,
    /// LSTM projection `[P, H]`.
    pub weight_hr: Option<Array2<f32>>,
}

impl LayerParams {
    /// All-zero parameters of the shapes `config` gives layer `layer`.
    pub fn zeros(config: &RnnConfig, layer: usize) -> Self {
        let (gh, i, p, h) = (
            config.gate_size(),
            config.layer_input_size(layer),
            config.h_out(),
            config.hidden_size,
        );
        LayerParams {
            weight_ih: Array2::zeros((gh, i)),
            weight_hh: Array2::zeros((gh, p)),
            bias_ih: config.bias.then(|| Array1::zeros(gh)),
            bias_hh: config.bias.then(|| Array1::zeros(gh)),
            weight_hr: (config.proj_size > 0).then(|| Array2::zeros((p, h))),
        }
    }
}

/// All parameters (or gradients) of a recurrent stack.
///
/// ```
/// use rnnkit::{CellKind, RnnConfig, RnnParams};
/// let cfg = RnnConfig::new(CellKind::Lstm, 3, 5).num_layers(2).bidirectional(true);
/// let p = RnnParams::zeros(&cfg);
/// let names: Vec<String> = p.named_tensors(&cfg).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names[0], "weight_ih_l0");
/// assert!(names.contains(&"bias_hh_l1_reverse".to_string()));
/// assert_eq!(p.num_elements(), 2 * (4 * 5 * (3 + 5 + 2)) + 2 * (4 * 5 * (10 + 5 + 2)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RnnParams {
    /// One entry per layer and direction: `layers[layer * D + direction]`.
    pub layers: Vec<LayerParams>,
}

/// A borrowed parameter tensor with its PyTorch name.
pub type NamedTensor<'a> = (String, TensorRef<'a>);

/// A parameter tensor: its shape and row-major values.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    /// PyTorch shape.
    pub shape: &'a [usize],
    /// Values in row-major order.
    pub data: &'a [f32],
}

/// The PyTorch name of a parameter: `{kind}_l{layer}` plus `_reverse` for direction 1.
pub fn param_name(kind: &str, layer: usize, direction: usize) -> String {
    let suffix = if direction == 1 { "_reverse" } else { "" };
    format!("{kind}_l{layer}{suffix}")
}

impl RnnParams {
    /// All-zero parameters shaped by `config` (the start of a gradient buffer).
    pub fn zeros(config: &RnnConfig) -> Self {
        let d = config.num_directions();
        RnnParams {
            layers: (0..config.num_layers * d)
                .map(|k| LayerParams::zeros(config, k / d))
                .collect(),
        }
    }

    /// Total number of scalars.
    pub fn num_elements(&self) -> usize {
        self.tensors().map(|a| a.len()).sum()
    }

    /// Sets every value to zero (between optimizer steps).
    pub fn fill_zero(&mut self) {
        self.tensors_mut().for_each(|a| a.fill(0.0));
    }

    /// Every tensor, in `state_dict` order, as flat row-major slices.
    ///
    /// # Panics
    /// If an array was replaced by one in non-standard layout ([`RnnParams::check`] reports it).
    pub fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        self.layers.iter().flat_map(|l| {
            [
                Some(l.weight_ih.as_slice().expect("standard layout")),
                Some(l.weight_hh.as_slice().expect("standard layout")),
                l.bias_ih
                    .as_ref()
                    .map(|b| b.as_slice().expect("standard layout")),
                l.bias_hh
                    .as_ref()
                    .map(|b| b.as_slice().expect("standard layout")),
                l.weight_hr
                    .as_ref()
                    .map(|w| w.as_slice().expect("standard layout")),
            ]
            .into_iter()
            .flatten()
        })
    }

    /// Mutable form of [`RnnParams::tensors`].
    pub fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.layers.iter_mut().flat_map(|l| {
            [
                Some(l.weight_ih.as_slice_mut().expect("standard layout")),
                Some(l.weight_hh.as_slice_mut().expect("standard layout")),
                l.bias_ih
                    .as_mut()
                    .map(|b| b.as_slice_mut().expect("standard layout")),
                l.bias_hh
                    .as_mut()
                    .map(|b| b.as_slice_mut().expect("standard layout")),
                l.weight_hr
                    .as_mut()
                    .map(|w| w.as_slice_mut().expect("standard layout")),
            ]
            .into_iter()
            .flatten()
        })
    }

    /// `(name, tensor)` pairs with PyTorch's `state_dict` names, in its order.
    pub fn named_tensors(&self, config: &RnnConfig) -> Vec<NamedTensor<'_>> {
        let d = config.num_directions();
        let mut out = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            let (layer, dir) = (k / d, k % d);
            out.push((
                param_name("weight_ih", layer, dir),
                tensor_ref2(&l.weight_ih),
            ));
            out.push((
                param_name("weight_hh", layer, dir),
                tensor_ref2(&l.weight_hh),
            ));
            if let Some(b) = &l.bias_ih {
                out.push((param_name("bias_ih", layer, dir), tensor_ref1(b)));
            }
            if let Some(b) = &l.bias_hh {
                out.push((param_name("bias_hh", layer, dir), tensor_ref1(b)));
            }
            if let Some(w) = &l.weight_hr {
                out.push((param_name("weight_hr", layer, dir), tensor_ref2(w)));
            }
        }
        out
    }

    /// Builds parameters from named tensors (a `state_dict`), checking that every expected name
    /// is present with the right shape and that no other name is there.
    ///
    /// `prefix` is stripped from names first (e.g. `"rnn."` inside a whole model's file).
    pub fn from_named(
        config: &RnnConfig,
        tensors: &BTreeMap<String, ArrayD<f32>>,
        prefix: &str,
    ) -> Result<Self> {
        config.validate()?;
        let expected = expected_shapes(config);
        for (name, shape) in &expected {
            let full = format!("{prefix}{name}");
            let t = tensors.get(&full).ok_or_else(|| {
                Error::Params(format!(
                    "missing tensor `{full}` (expected shape {shape:?} for a {} stack)",
                    config.cell
                ))
            })?;
            if t.shape() != shape.as_slice() {
                return Err(Error::Params(format!(
                    "tensor `{full}` has shape {:?}, expected {shape:?}",
                    t.shape()
                )));
            }
        }
        let known: std::collections::HashSet<String> = expected
            .iter()
            .map(|(n, _)| format!("{prefix}{n}"))
            .collect();
        if let Some(extra) = tensors
            .keys()
            .find(|k| k.starts_with(prefix) && !known.contains(*k))
        {
            return Err(Error::Params(format!(
                "unexpected tensor `{extra}`: not a parameter of this {} stack \
                 (check num_layers, bidirectional, bias and proj_size)",
                config.cell
            )));
        }
        // Only now, with every shape checked against the file, allocate.
        let mut params = RnnParams::zeros(config);
        let d = config.num_directions();
        for (k, l) in params.layers.iter_mut().enumerate() {
            let (layer, dir) = (k / d, k % d);
            let get = |kind: &str| -> &ArrayD<f32> {
                &tensors[&format!("{prefix}{}", param_name(kind, layer, dir))]
            };
            copy_into(l.weight_ih.as_slice_mut(), get("weight_ih"));
            copy_into(l.weight_hh.as_slice_mut(), get("weight_hh"));
            if let Some(b) = &mut l.bias_ih {
                copy_into(b.as_slice_mut(), get("bias_ih"));
            }
            if let Some(b) = &mut l.bias_hh {
                copy_into(b.as_slice_mut(), get("bias_hh"));
            }
            if let Some(w) = &mut l.weight_hr {
                copy_into(w.as_slice_mut(), get("weight_hr"));
            }
        }
        Ok(params)
    }

    /// Checks shapes against `config` and that every array is in standard (row-major) layout.
    /// Allocates nothing: forward calls it on every step of a stream.
    pub fn check(&self, config: &RnnConfig) -> Result<()> {
        let want = expected_shapes(config);
        let have = self.named_tensors_checked(config)?;
        if self.layers.len() != config.num_layers * config.num_directions() {
            return Err(Error::Params(format!(
                "{} layer-directions given, the config needs {}",
                self.layers.len(),
                config.num_layers * config.num_directions()
            )));
        }
        for ((name, w), (hn, h)) in want.iter().zip(&have) {
            if name != hn {
                return Err(Error::Params(format!(
                    "`{hn}` present where `{name}` was expected: optional tensors (biases, \
                     weight_hr) do not match bias/proj_size"
                )));
            }
            if w != h {
                return Err(Error::Params(format!(
                    "`{name}` has shape {h:?}, expected {w:?}"
                )));
            }
        }
        if have.len() != want.len() {
            return Err(Error::Params(
                "optional tensors (biases, weight_hr) do not match bias/proj_size".into(),
            ));
        }
        Ok(())
    }

    fn named_tensors_checked(&self, config: &RnnConfig) -> Result<Vec<(String, Vec<usize>)>> {
        let d = config.num_directions();
        let mut out = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            let (layer, dir) = (k / d, k % d);
            let mut add = |kind: &str, shape: &[usize], standard: bool| -> Result<()> {
                let name = param_name(kind, layer, dir);
                if !standard {
                    return Err(Error::Params(format!(
                        "`{name}` is not in standard row-major layout (use .as_standard_layout())"
                    )));
                }
                out.push((name, shape.to_vec()));
                Ok(())
            };
            add(
                "weight_ih",
                l.weight_ih.shape(),
                l.weight_ih.is_standard_layout(),
            )?;
            add(
                "weight_hh",
                l.weight_hh.shape(),
                l.weight_hh.is_standard_layout(),
            )?;
            if let Some(b) = &l.bias_ih {
                add("bias_ih", b.shape(), b.is_standard_layout())?;
            }
            if let Some(b) = &l.bias_hh {
                add("bias_hh", b.shape(), b.is_standard_layout())?;
            }
            if let Some(w) = &l.weight_hr {
                add("weight_hr", w.shape(), w.is_standard_layout())?;
            }
        }
        Ok(out)
    }

    /// Owned `(name, array)` pairs, ready to save.
    pub fn to_named_arrays(&self, config: &RnnConfig) -> BTreeMap<String, ArrayD<f32>> {
        self.named_tensors(config)
            .into_iter()
            .map(|(n, t)| {
                let a = ArrayD::from_shape_vec(IxDyn(t.shape), t.data.to_vec())
                    .expect("shape matches data");
                (n, a)
            })
            .collect()
    }
}

/// PyTorch names and shapes of a stack's parameters, in `state_dict` order.
pub fn expected_shapes(config: &RnnConfig) -> Vec<(String, Vec<usize>)> {
    let (gh, p, h, d) = (
        config.gate_size(),
        config.h_out(),
        config.hidden_size,
        config.num_directions(),
    );
    let mut out = Vec::new();
    for k in 0..config.num_layers * d {
        let (layer, dir) = (k / d, k % d);
        out.push((
            param_name("weight_ih", layer, dir),
            vec![gh, config.layer_input_size(layer)],
        ));
        out.push((param_name("weight_hh", layer, dir), vec![gh, p]));
        if config.bias {
            out.push((param_name("bias_ih", layer, dir), vec![gh]));
            out.push((param_name("bias_hh", layer, dir), vec![gh]));
        }
        if config.proj_size > 0 {
            out.push((param_name("weight_hr", layer, dir), vec![p, h]));
        }
    }
    out
}

fn tensor_ref2(a: &Array2<f32>) -> TensorRef<'_> {
    TensorRef {
        shape: a.shape(),
        data: a.as_slice().expect("standard layout"),
    }
}

fn tensor_ref1(a: &Array1<f32>) -> TensorRef<'_> {
    TensorRef {
        shape: a.shape(),
        data: a.as_slice().expect("standard layout"),
    }
}

fn copy_into(dst: Option<&mut [f32]>, src: &ArrayD<f32>) {
    let dst = dst.expect("freshly allocated arrays are standard layout");
    for (d, s) in dst.iter_mut().zip(src.iter()) {
        *d = *s;
    }
}
