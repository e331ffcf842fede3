//! One way to walk a model's parameters: the [`Module`] trait, and everything derived from it.
//!
//! Every layer and model lists its parameters once, in [`Module::visit_params`] (and its
//! mutable twin), under PyTorch's `state_dict` names: `weight`, `bias`, `weight_ih_l0`, …,
//! prefixed by the path to the layer (`rnn.`, `decoder.`). Naming, saving and loading,
//! counting, zeroing gradients, optimizer wiring and clipping are written once, here, over
//! that walk, so no model keeps parallel lists that must agree.
//!
//! Gradients have the model's own type: [`Grads<M>`] holds an `M` whose parameters are
//! gradient buffers (as [`crate::nn::Linear`] and [`crate::RnnParams`] already serve for
//! weights and for their gradients). Backward functions add into it; the walk pairs each
//! parameter with its gradient by visiting both with the same code.
//!
//! ```
//! use rand::SeedableRng;
//! use rnnkit::module::{self, Grads, Module};
//! use rnnkit::nn::Linear;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let mut layer = Linear::new(3, 2, true, &mut rng);
//! assert_eq!(module::param_names(&layer, "head."), ["head.weight", "head.bias"]);
//! assert_eq!(module::num_params(&layer), 2 * 3 + 2);
//!
//! // Save and load by name.
//! let saved = module::named_tensors(&layer, "");
//! let mut other = Linear::new(3, 2, true, &mut rng);
//! module::load_named(&mut other, "", &saved).unwrap();
//! assert_eq!(other, layer);
//!
//! // Gradients of the same shape, paired with the parameters for an SGD step.
//! let mut grads = Grads::zeros_like(&layer);
//! module::fill(&mut grads.0, 1.0);
//! module::for_each_with_grad(&mut layer, &grads, |_name, value, grad| {
//!     value.iter_mut().zip(grad).for_each(|(v, g)| *v -= 0.1 * g);
//! });
//! ```

use crate::error::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeMap;

/// A parameter tensor as a visitor sees it: its PyTorch shape and its row-major values.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    /// PyTorch shape.
    pub shape: &'a [usize],
    /// Values in row-major order.
    pub data: &'a [f32],
}

/// A mutable parameter tensor: its shape and its row-major values, to be changed in place.
#[derive(Debug)]
pub struct TensorMut<'a> {
    /// PyTorch shape (a copy: the values are borrowed mutably).
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub data: &'a mut [f32],
}

/// A layer or model that owns parameters.
///
/// Implementations list every parameter once, in PyTorch's `state_dict` order, each under
/// `prefix` followed by its name (`prefix` is empty for a whole model and ends with `.` for a
/// part: `rnn.`). A composite model visits its parts with longer prefixes. The two methods
/// must list the same tensors in the same order; the tests of each model check it through
/// [`named_tensors`] and [`load_named`].
///
/// ```
/// use rnnkit::module::{Module, TensorMut, TensorRef};
///
/// /// A learned scale and shift: one parameter tensor `[2]`.
/// struct Affine { shape: [usize; 1], ab: Vec<f32> }
///
/// impl Module for Affine {
///     fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>)) {
///         f(&format!("{prefix}ab"), TensorRef { shape: &self.shape, data: &self.ab });
///     }
///     fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>)) {
///         f(&format!("{prefix}ab"), TensorMut { shape: self.shape.to_vec(), data: &mut self.ab });
///     }
/// }
///
/// let a = Affine { shape: [2], ab: vec![1.0, 0.0] };
/// assert_eq!(rnnkit::module::param_names(&a, "norm."), ["norm.ab"]);
/// ```
pub trait Module {
    /// Calls `f(name, tensor)` for every parameter, in `state_dict` order.
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, TensorRef<'a>));

    /// Calls `f(name, tensor)` for every parameter, mutably, in the order of
    /// [`Module::visit_params`].
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(&str, TensorMut<'a>));

    /// Extra `state_dict` entries that are copies of a parameter under another name, as
    /// `(alias, name)`: a tied decoder's `decoder.weight` is the embedding's matrix. Saved
    /// files carry them (PyTorch's `state_dict` does); loading accepts and skips them.
    /// Default: none.
    fn aliases(&self, _prefix: &str) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Gradient buffers of a model: a copy of it whose parameters hold gradients. Backward
/// functions add into it (`+=`); [`Grads::fill_zero`] clears it between optimizer steps.
///
/// ```
/// use rand::SeedableRng;
/// use rnnkit::module::Grads;
/// use rnnkit::nn::Linear;
///
/// let layer = Linear::new(4, 3, true, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// let grads = Grads::zeros_like(&layer);
/// assert!(grads.0.weight().iter().all(|&g| g == 0.0));
/// assert_eq!(grads.0.weight().dim(), layer.weight().dim());
/// ```
#[derive(Clone, Debug)]
pub struct Grads<M>(pub M);

impl<M: Module + Clone> Grads<M> {
    /// Zeroed buffers shaped like `model`'s parameters.
    pub fn zeros_like(model: &M) -> Self {
        let mut g = model.clone();
        fill(&mut g, 0.0);
        Grads(g)
    }

    /// Sets every gradient to zero.
    pub fn fill_zero(&mut self) {
        self.0.visit_params_mut("", &mut |_, t| {
            crate::kernels::elementwise::fill_zero(t.data)
        });
    }

    /// Every gradient tensor as a mutable slice, in parameter order (for clipping).
    pub fn slices_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out = Vec::new();
        self.0.visit_params_mut("", &mut |_, t| out.push(t.data));
        out
    }

    /// Every gradient tensor, in parameter order (for norms).
    pub fn slices(&self) -> Vec<&[f32]> {
        let mut out = Vec::new();
        self.0.visit_params("", &mut |_, t| out.push(t.data));
        out
    }
}

impl<M> std::ops::Deref for Grads<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0
    }
}

impl<M> std::ops::DerefMut for Grads<M> {
    fn deref_mut(&mut self) -> &mut M {
        &mut self.0
    }
}

/// The parameters' names, in `state_dict` order.
pub fn param_names(m: &dyn Module, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    m.visit_params(prefix, &mut |name, _| out.push(name.to_string()));
    out
}

/// Names and shapes of the parameters, in `state_dict` order.
pub fn param_shapes(m: &dyn Module, prefix: &str) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    m.visit_params(prefix, &mut |name, t| {
        out.push((name.to_string(), t.shape.to_vec()))
    });
    out
}

/// The number of scalars in all parameters.
pub fn num_params(m: &dyn Module) -> usize {
    let mut n = 0;
    m.visit_params("", &mut |_, t| n += t.data.len());
    n
}

/// Sets every parameter value to `value`.
pub fn fill(m: &mut dyn Module, value: f32) {
    m.visit_params_mut("", &mut |_, t| t.data.fill(value));
}

/// Every parameter (and alias) as an owned array under its name: what a safetensors file of
/// the model holds.
pub fn named_tensors(m: &dyn Module, prefix: &str) -> BTreeMap<String, ArrayD<f32>> {
    let mut out = BTreeMap::new();
    m.visit_params(prefix, &mut |name, t| {
        let a = ArrayD::from_shape_vec(IxDyn(t.shape), t.data.to_vec())
            .expect("a parameter's data fills its shape");
        out.insert(name.to_string(), a);
    });
    for (alias, name) in m.aliases(prefix) {
        if let Some(a) = out.get(&name).cloned() {
            out.insert(alias, a);
        }
    }
    out
}

/// Replaces every parameter under `prefix` with the same-named tensor of `tensors`.
///
/// Every name and shape is checked before anything is written, so a failed load changes
/// nothing. Tensors outside `prefix` are ignored; under it, a name that is neither a
/// parameter nor an alias is an error (a file of another architecture), as PyTorch's
/// `load_state_dict(strict=True)` reports.
pub fn load_named(
    m: &mut dyn Module,
    prefix: &str,
    tensors: &BTreeMap<String, ArrayD<f32>>,
) -> Result<()> {
    let expected = param_shapes(m, prefix);
    for (name, shape) in &expected {
        let t = tensors.get(name).ok_or_else(|| {
            Error::Params(format!(
                "missing tensor `{name}` (expected shape {shape:?}); check the architecture \
                 (cell, sizes, layers, bidirectional, bias, proj_size) against the file"
            ))
        })?;
        if t.shape() != shape.as_slice() {
            return Err(Error::Params(format!(
                "tensor `{name}` has shape {:?}, the model expects {shape:?}",
                t.shape()
            )));
        }
    }
    let aliases: Vec<String> = m.aliases(prefix).into_iter().map(|(a, _)| a).collect();
    let known = |k: &str| expected.iter().any(|(n, _)| n == k) || aliases.iter().any(|a| a == k);
    if let Some(extra) = tensors.keys().find(|k| k.starts_with(prefix) && !known(k)) {
        return Err(Error::Params(format!(
            "unexpected tensor `{extra}`: not a parameter of this model (check the \
             architecture: layers, bidirectional, bias, proj_size, tied weights)"
        )));
    }
    // A tied model's alias (its `decoder.weight`) must be a copy of the tensor it names: a file
    // whose two differ is of an untied model, and loading it would silently drop one.
    for (alias, name) in m.aliases(prefix) {
        if let (Some(a), Some(t)) = (tensors.get(&alias), tensors.get(&name))
            && a != t
        {
            return Err(Error::Params(format!(
                "`{alias}` differs from `{name}`: the file is of a model without tied weights, \
                 this one ties them (set tie_weights = false, or load a tied model's file)"
            )));
        }
    }
    m.visit_params_mut(prefix, &mut |name, t| {
        // Any memory layout in the file: iterate in logical (row-major) order.
        for (d, s) in t.data.iter_mut().zip(tensors[name].iter()) {
            *d = *s;
        }
    });
    Ok(())
}

/// Calls `f(name, value, grad)` for every parameter of `m` with its gradient in `grads`
/// (the optimizer's view).
///
/// # Panics
/// If `grads` lists other tensors than `m` (a [`Grads`] made from another model).
pub fn for_each_with_grad<M: Module>(
    m: &mut M,
    grads: &Grads<M>,
    mut f: impl FnMut(&str, &mut [f32], &[f32]),
) {
    for (name, value, grad) in params_with_grads(m, grads) {
        f(&name, value, grad);
    }
}

/// Every parameter with its name and gradient, paired by name in one walk of each: the
/// optimizer's view (see [`crate::optim::ParamRef`]).
///
/// # Panics
/// When `grads` is not of this model's architecture (a programming error: `Grads::zeros_like`
/// of the same model always pairs).
///
/// ```
/// use rand::SeedableRng;
/// use rnnkit::module::{self, Grads};
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mut layer = rnnkit::nn::Linear::new(2, 1, true, &mut rng);
/// let grads = Grads::zeros_like(&layer);
/// let pairs = module::params_with_grads(&mut layer, &grads);
/// assert_eq!(pairs.iter().map(|(n, _, _)| n.as_str()).collect::<Vec<_>>(), ["weight", "bias"]);
/// ```
pub fn params_with_grads<'a, M: Module>(
    m: &'a mut M,
    grads: &'a Grads<M>,
) -> Vec<(String, &'a mut [f32], &'a [f32])> {
    let mut gs = Vec::new();
    grads
        .0
        .visit_params("", &mut |name, t| gs.push((name.to_string(), t.data)));
    let mut out = Vec::with_capacity(gs.len());
    let mut k = 0;
    m.visit_params_mut("", &mut |name, t| {
        assert!(
            k < gs.len(),
            "parameter `{name}` has no gradient: grads of another model"
        );
        let (gname, g) = &gs[k];
        assert!(
            gname == name && g.len() == t.data.len(),
            "gradient `{gname}` paired with parameter `{name}`: grads of another model"
        );
        out.push((gname.clone(), t.data, *g));
        k += 1;
    });
    assert_eq!(k, gs.len(), "grads of another model");
    out
}

/// `prefix` followed by `name`, for composite models: `join("rnn.", "weight_hh_l0")`.
pub fn join(prefix: &str, name: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + name.len());
    s.push_str(prefix);
    s.push_str(name);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Linear;
    use rand::SeedableRng;

    #[test]
    fn load_checks_everything_before_writing() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut l = Linear::new(3, 2, true, &mut rng);
        let before = l.clone();
        let mut t = named_tensors(&l, "");
        t.insert("bias".into(), ArrayD::zeros(IxDyn(&[3])));
        let e = load_named(&mut l, "", &t).unwrap_err().to_string();
        assert!(e.contains("`bias`") && e.contains("[2]"), "{e}");
        assert_eq!(l, before, "a failed load changed the layer");
        let mut t = named_tensors(&l, "");
        t.insert("weight_hr".into(), ArrayD::zeros(IxDyn(&[1])));
        let e = load_named(&mut l, "", &t).unwrap_err().to_string();
        assert!(e.contains("unexpected tensor `weight_hr`"), "{e}");
        t.remove("weight");
        let e = load_named(&mut l, "", &t).unwrap_err().to_string();
        assert!(e.contains("missing tensor `weight`"), "{e}");
        // Tensors outside the prefix are someone else's.
        let mut t = named_tensors(&l, "head.");
        t.insert("rnn.weight_ih_l0".into(), ArrayD::zeros(IxDyn(&[1])));
        load_named(&mut l, "head.", &t).unwrap();
    }

    #[test]
    fn loading_a_transposed_array_reads_it_in_logical_order() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut l = Linear::new(3, 2, false, &mut rng);
        let w = ndarray::Array2::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f32);
        let t = BTreeMap::from([("weight".to_string(), w.t().to_owned().into_dyn())]);
        load_named(&mut l, "", &t).unwrap();
        assert_eq!(l.weight(), &w.t());
    }

    #[test]
    #[should_panic(expected = "grads of another model")]
    fn grads_of_another_model_are_refused() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut a = Linear::new(3, 2, true, &mut rng);
        let b = Linear::new(3, 2, false, &mut rng);
        let g = Grads::zeros_like(&b);
        for_each_with_grad(&mut a, &g, |_, _, _| {});
    }
}
