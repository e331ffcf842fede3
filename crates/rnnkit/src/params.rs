//! Parameters of a recurrent stack, named and shaped as PyTorch's `state_dict`.
//!
//! One struct, [`LayerParams`], serves for weights and for their gradients (same names, same
//! shapes), as in llm.c. [`RnnParams`] holds one `LayerParams` per layer and direction, in
//! PyTorch's order: `layers[layer * D + direction]`.

use crate::config::RnnConfig;
use crate::error::{Error, Result};
pub use crate::module::{TensorMut, TensorRef};
use crate::nn::linear::{tensor_mut, tensor_ref};
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

    /// The tensors present, in `state_dict` order, each with its kind (`weight_ih`, ...).
    ///
    /// # Panics
    /// If an array was replaced by one in non-standard layout ([`RnnParams::check`] reports it).
    pub fn tensors(&self) -> Vec<(&'static str, TensorRef<'_>)> {
        let mut out = vec![
            ("weight_ih", tensor_ref(&self.weight_ih)),
            ("weight_hh", tensor_ref(&self.weight_hh)),
        ];
        if let Some(b) = &self.bias_ih {
            out.push(("bias_ih", tensor_ref(b)));
        }
        if let Some(b) = &self.bias_hh {
            out.push(("bias_hh", tensor_ref(b)));
        }
        if let Some(w) = &self.weight_hr {
            out.push(("weight_hr", tensor_ref(w)));
        }
        out
    }

    /// Mutable form of [`LayerParams::tensors`] (arrays in another layout are copied into
    /// standard layout first).
    pub fn tensors_mut(&mut self) -> Vec<(&'static str, TensorMut<'_>)> {
        let mut out = vec![
            ("weight_ih", tensor_mut(&mut self.weight_ih)),
            ("weight_hh", tensor_mut(&mut self.weight_hh)),
        ];
        if let Some(b) = &mut self.bias_ih {
            out.push(("bias_ih", tensor_mut(b)));
        }
        if let Some(b) = &mut self.bias_hh {
            out.push(("bias_hh", tensor_mut(b)));
        }
        if let Some(w) = &mut self.weight_hr {
            out.push(("weight_hr", tensor_mut(w)));
        }
        out
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
        self.layers
            .iter()
            .flat_map(|l| l.tensors().into_iter().map(|(_, t)| t.data))
    }

    /// Mutable form of [`RnnParams::tensors`].
    pub fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.tensors_mut().into_iter().map(|(_, t)| t.data))
    }

    /// Calls `f(name, tensor)` for every tensor with its PyTorch name under `prefix`
    /// (`weight_ih_l0`, ..., `_reverse` for direction 1); `config` gives the directions.
    pub fn visit<'a>(
        &'a self,
        config: &RnnConfig,
        prefix: &str,
        f: &mut dyn FnMut(&str, TensorRef<'a>),
    ) {
        let d = config.num_directions();
        for (k, l) in self.layers.iter().enumerate() {
            for (kind, t) in l.tensors() {
                f(&format!("{prefix}{}", param_name(kind, k / d, k % d)), t);
            }
        }
    }

    /// Mutable form of [`RnnParams::visit`].
    pub fn visit_mut<'a>(
        &'a mut self,
        config: &RnnConfig,
        prefix: &str,
        f: &mut dyn FnMut(&str, TensorMut<'a>),
    ) {
        let d = config.num_directions();
        for (k, l) in self.layers.iter_mut().enumerate() {
            for (kind, t) in l.tensors_mut() {
                f(&format!("{prefix}{}", param_name(kind, k / d, k % d)), t);
            }
        }
    }

    /// `(name, tensor)` pairs with PyTorch's `state_dict` names, in its order.
    pub fn named_tensors(&self, config: &RnnConfig) -> Vec<NamedTensor<'_>> {
        let mut out = Vec::new();
        self.visit(config, "", &mut |name, t| out.push((name.to_string(), t)));
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
        params.visit_mut(config, prefix, &mut |name, t| {
            for (d, s) in t.data.iter_mut().zip(tensors[name].iter()) {
                *d = *s;
            }
        });
        Ok(params)
    }

    /// Checks shapes against `config` and that every array is in standard (row-major) layout.
    pub fn check(&self, config: &RnnConfig) -> Result<()> {
        let want = expected_shapes(config);
        if self.layers.len() != config.num_layers * config.num_directions() {
            return Err(Error::Params(format!(
                "{} layer-directions given, the config needs {}",
                self.layers.len(),
                config.num_layers * config.num_directions()
            )));
        }
        let d = config.num_directions();
        let mut have = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            let arrays: [(&str, Option<ShapeAndLayout>); 5] = [
                ("weight_ih", Some(shape_of(&l.weight_ih))),
                ("weight_hh", Some(shape_of(&l.weight_hh))),
                ("bias_ih", l.bias_ih.as_ref().map(shape_of)),
                ("bias_hh", l.bias_hh.as_ref().map(shape_of)),
                ("weight_hr", l.weight_hr.as_ref().map(shape_of)),
            ];
            for (kind, a) in arrays {
                if let Some((shape, standard)) = a {
                    let name = param_name(kind, k / d, k % d);
                    if !standard {
                        return Err(Error::Params(format!(
                            "`{name}` is not in standard row-major layout (use \
                             .as_standard_layout())"
                        )));
                    }
                    have.push((name, shape.to_vec()));
                }
            }
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

    /// Owned `(name, array)` pairs, ready to save.
    pub fn to_named_arrays(&self, config: &RnnConfig) -> BTreeMap<String, ArrayD<f32>> {
        let mut out = BTreeMap::new();
        self.visit(config, "", &mut |name, t| {
            let a = ArrayD::from_shape_vec(IxDyn(t.shape), t.data.to_vec())
                .expect("shape matches data");
            out.insert(name.to_string(), a);
        });
        out
    }
}

/// An array's shape and whether it is in standard layout.
type ShapeAndLayout<'a> = (&'a [usize], bool);

fn shape_of<D: ndarray::Dimension>(a: &ndarray::Array<f32, D>) -> ShapeAndLayout<'_> {
    (a.shape(), a.is_standard_layout())
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
