//! The reference implementation: plain per-element loops in `f64`.
//!
//! This module is the oracle the fast path is tested against, and the place to learn the math.
//! It is written to be read, not to be fast: one sequence and one step at a time, every matrix
//! product a double loop, every intermediate value kept. It matches PyTorch's `nn.LSTM`, `nn.GRU`
//! and `nn.RNN` (gate order, parameter shapes, packed-sequence semantics), as checked against the
//! golden cases in `tests/fixtures/cases` (see the tests at the bottom of this file).
//!
//! ```
//! use rnnkit::reference::{self, RefInputs, RefModel, RefUpstream};
//! use rnnkit::{CellKind, RnnConfig};
//!
//! let cfg = RnnConfig::new(CellKind::Gru, 2, 3).num_layers(2).bidirectional(true);
//! let model = RefModel::random(cfg, 7, 0.5);
//! let (t, b) = (4, 2);
//! let mut inputs = RefInputs::new(t, b, vec![0.25; t * b * 2]); // [T, B, I]
//! inputs.lengths = Some(vec![4, 2]);
//! let out = reference::forward(&model, &inputs);
//! assert_eq!(out.output.len(), t * b * 6); // [T, B, D*H]
//! assert_eq!(out.output[(2 * b + 1) * 6], 0.0); // t = 2 is padding for sequence 1
//!
//! let upstream = RefUpstream {
//!     grad_output: vec![1.0; out.output.len()],
//!     grad_h_n: vec![0.0; out.h_n.len()],
//!     grad_c_n: None,
//! };
//! let grads = reference::backward(&model, &inputs, &upstream);
//! assert_eq!(grads.layers.len(), 4); // layers[layer * D + dir]
//! assert_eq!(grads.input.len(), inputs.input.len());
//! ```
//!
//! # Notation
//!
//! One step of one sequence: `x` `[I]` the step's input, `h_prev` `[H_out]` and `c_prev` `[H]`
//! the state before the step, `h`, `c` after it. `H` is `hidden_size`, `H_out` is `proj_size`
//! when projecting (LSTM only) and `H` otherwise, `G` the number of gates. `W x` is a
//! matrix-vector product, `⊙` the elementwise product, `σ(a) = 1 / (1 + e^(−a))`. A weight's
//! rows are stacked in gate blocks of `H` rows, in PyTorch's order, so `W_ii` below is rows
//! `0..H` of `W_ih`, `W_if` rows `H..2H`, and so on. A `d` prefix is the gradient of the loss:
//! `dh = ∂loss/∂h`.
//!
//! # Forward, one step
//!
//! ```text
//! LSTM, gates i, f, g, o (W_ih [4H, I], W_hh [4H, H_out], W_hr [H_out, H]):
//!   a = W_ih x + b_ih + W_hh h_prev + b_hh           [4H], blocks a_i a_f a_g a_o
//!   i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//!   c = f ⊙ c_prev + i ⊙ g
//!   m = o ⊙ tanh(c)                                   [H]
//!   h = W_hr m   with proj_size > 0,   else h = m     [H_out]
//!
//! GRU, gates r, z, n (the PyTorch/cuDNN variant: r multiplies W_hn h + b_hn):
//!   gi = W_ih x + b_ih      gh = W_hh h_prev + b_hh  [3H] each, blocks _r _z _n
//!   r = σ(gi_r + gh_r)      z = σ(gi_z + gh_z)
//!   n = tanh(gi_n + r ⊙ gh_n)
//!   h = (1 − z) ⊙ n + z ⊙ h_prev
//!
//! RNN (tanh or relu):
//!   a = W_ih x + b_ih + W_hh h_prev + b_hh            [H]
//!   h = tanh(a)   or   h = max(a, 0)
//! ```
//!
//! # Backward, one step (derived line by line)
//!
//! Backward receives `dh` (from this step's output plus, through `h`, from step `t+1`) and, for
//! the LSTM, `dc` (from step `t+1`), and returns `dh_prev`, `dc_prev` and `dx`, adding into the
//! parameter gradients. Every cell ends with the same affine part:
//!
//! ```text
//! Affine part. For y = W v + b:   dW += dy vᵀ,   db += dy,   dv += Wᵀ dy.
//! Applied twice, once with (W_ih, b_ih, v = x,      dy = da_ih) giving dx,
//!            and once with (W_hh, b_hh, v = h_prev, dy = da_hh) giving dh_prev.
//! For the LSTM and the RNN both halves of a see the same gradient: da_ih = da_hh = da.
//! ```
//!
//! ```text
//! LSTM
//!   m feeds h:            dm = W_hrᵀ dh,   dW_hr += dh mᵀ     (no projection: dm = dh)
//!   m = o ⊙ tanh(c):      do = dm ⊙ tanh(c)
//!                         dc = dc + dm ⊙ o ⊙ (1 − tanh²(c))   (c reaches the loss two ways:
//!                                                              through c_next and through m)
//!   c = f ⊙ c_prev + i ⊙ g:
//!                         di = dc ⊙ g,   dg = dc ⊙ i,   df = dc ⊙ c_prev,   dc_prev = dc ⊙ f
//!   through the activations (σ' = σ(1 − σ), tanh' = 1 − tanh²):
//!                         da_i = di ⊙ i(1 − i)    da_f = df ⊙ f(1 − f)
//!                         da_g = dg ⊙ (1 − g²)    da_o = do ⊙ o(1 − o)
//!   affine part with da = [da_i, da_f, da_g, da_o].
//!
//! GRU
//!   h = (1 − z) ⊙ n + z ⊙ h_prev:
//!                         dn = dh ⊙ (1 − z),   dz = dh ⊙ (h_prev − n),   dh_prev = z ⊙ dh  (direct)
//!   n = tanh(p), p = gi_n + r ⊙ gh_n:
//!                         dp = dn ⊙ (1 − n²)
//!                         dgi_n = dp,   dgh_n = dp ⊙ r,   dr = dp ⊙ gh_n
//!   r = σ(gi_r + gh_r):   dgi_r = dgh_r = dr ⊙ r(1 − r)
//!   z = σ(gi_z + gh_z):   dgi_z = dgh_z = dz ⊙ z(1 − z)
//!   affine part with da_ih = dgi and da_hh = dgh; the W_hh half adds to the direct path:
//!                         dh_prev = z ⊙ dh + W_hhᵀ dgh
//!   so h_prev gets its gradient three ways: directly (z ⊙ dh), through the r and z gates, and
//!   through the r-gated path W_hn h_prev (whose gradient dgh_n carries the factor r).
//!
//! RNN
//!   tanh:   da = dh ⊙ (1 − h²)
//!   relu:   da = dh ⊙ [h > 0]        (the derivative at a = 0 is taken as 0, as PyTorch does)
//!   affine part with da.
//! ```
//!
//! # The stack: layers, directions, lengths
//!
//! Sequences are time-major: the input is `[T, B, I]`. Sequence `b` has `len_b` valid steps
//! (`1..=T`, all `T` when `lengths` is absent), as with PyTorch's packed sequences:
//!
//! - The forward direction (`dir = 0`) runs `t = 0, 1, …, len_b − 1` from the initial state; the
//!   reverse direction (`dir = 1`) runs `t = len_b − 1, …, 1, 0` from the initial state. `h_n`
//!   (and `c_n`) is the state after the last step run: `t = len_b − 1` forward, `t = 0` reverse.
//! - The output at `t ≥ len_b` is exactly 0; the output at `t < len_b` is
//!   `[h_fwd(t), h_rev(t)]` `[D·H_out]`, forward direction first.
//! - Layer `k > 0` reads the output of layer `k − 1`, multiplied elementwise by that layer's
//!   dropout mask if one is given (`dropout_masks[k − 1]`, typically `0` or `1 / (1 − p)`).
//! - Initial and final states are `[L·D, B, H_out]` (`c`: `[L·D, B, H]`), indexed `layer·D + dir`.
//!
//! Backward walks it in the reverse order: layers from last to first; within a layer each
//! direction and sequence runs its steps in the reverse of the order forward ran them
//! (backpropagation through time). The gradient entering step `t` is
//! `dh = dh_from_step_after + d_output[t]`, starting from `grad_h_n` (and `dc` from `grad_c_n`);
//! after the first step forward ran, the running `dh`, `dc` are the gradients of `h0`, `c0`.
//! `d_output` at padded positions is never read, so it has no effect. The input gradients of
//! both directions add into the same `dx` `[T, B, I_k]`, which (times the mask) is `d_output`
//! of the layer below.

// Plain index loops are the point of this module: they read like the equations.
#![allow(clippy::needless_range_loop)]

use crate::config::{CellKind, RnnConfig};

/// Parameters of one (layer, direction) of a stack, in PyTorch's `state_dict` shapes, row-major.
///
/// The same struct holds the gradients of those parameters (see [`RefGrads`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RefLayer {
    /// `weight_ih_l{k}`: `[G*H, I_k]`, gate blocks in PyTorch's order.
    pub w_ih: Vec<f64>,
    /// `weight_hh_l{k}`: `[G*H, H_out]`.
    pub w_hh: Vec<f64>,
    /// `bias_ih_l{k}`: `[G*H]`; `None` when `bias` is false.
    pub b_ih: Option<Vec<f64>>,
    /// `bias_hh_l{k}`: `[G*H]`; `None` when `bias` is false.
    pub b_hh: Option<Vec<f64>>,
    /// `weight_hr_l{k}`: `[H_out, H]`, the LSTM projection; `Some` exactly when `proj_size > 0`.
    pub w_hr: Option<Vec<f64>>,
}

impl RefLayer {
    /// All-zero parameters (or gradients) for layer `layer` of a stack with this config.
    pub fn zeros(config: &RnnConfig, layer: usize) -> RefLayer {
        let gh = config.gate_size();
        let bias = || config.bias.then(|| vec![0.0; gh]);
        RefLayer {
            w_ih: vec![0.0; gh * config.layer_input_size(layer)],
            w_hh: vec![0.0; gh * config.h_out()],
            b_ih: bias(),
            b_hh: bias(),
            w_hr: (config.proj_size > 0).then(|| vec![0.0; config.h_out() * config.hidden_size]),
        }
    }

    /// The tensors that exist, with their PyTorch base names (`weight_ih`, `weight_hh`,
    /// `bias_ih`, `bias_hh`, `weight_hr`), in PyTorch's `named_parameters` order.
    /// [`param_name`] turns a base name into the full `state_dict` name.
    pub fn tensors(&self) -> Vec<(&'static str, &[f64])> {
        let mut v: Vec<(&'static str, &[f64])> =
            vec![("weight_ih", &self.w_ih), ("weight_hh", &self.w_hh)];
        if let Some(b) = &self.b_ih {
            v.push(("bias_ih", b));
        }
        if let Some(b) = &self.b_hh {
            v.push(("bias_hh", b));
        }
        if let Some(w) = &self.w_hr {
            v.push(("weight_hr", w));
        }
        v
    }

    /// Like [`RefLayer::tensors`], mutable.
    pub fn tensors_mut(&mut self) -> Vec<(&'static str, &mut [f64])> {
        let mut v: Vec<(&'static str, &mut [f64])> =
            vec![("weight_ih", &mut self.w_ih), ("weight_hh", &mut self.w_hh)];
        if let Some(b) = &mut self.b_ih {
            v.push(("bias_ih", b));
        }
        if let Some(b) = &mut self.b_hh {
            v.push(("bias_hh", b));
        }
        if let Some(w) = &mut self.w_hr {
            v.push(("weight_hr", w));
        }
        v
    }
}

/// PyTorch's `state_dict` name of a parameter: `param_name("weight_ih", 1, 1)` is
/// `weight_ih_l1_reverse`.
///
/// ```
/// assert_eq!(rnnkit::reference::param_name("bias_hh", 0, 0), "bias_hh_l0");
/// assert_eq!(rnnkit::reference::param_name("weight_ih", 1, 1), "weight_ih_l1_reverse");
/// ```
pub fn param_name(base: &str, layer: usize, dir: usize) -> String {
    let suffix = if dir == 1 { "_reverse" } else { "" };
    format!("{base}_l{layer}{suffix}")
}

/// A recurrent stack's shape and parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct RefModel {
    /// The stack's shape.
    pub config: RnnConfig,
    /// One entry per (layer, direction), at index `layer * D + dir`.
    pub layers: Vec<RefLayer>,
}

impl RefModel {
    /// Parameters drawn uniformly from `(-scale, scale)` by a small deterministic generator
    /// (splitmix64): the same `seed` gives the same model on every machine. Tensors are filled
    /// in `layers` order and, within a layer, in [`RefLayer::tensors`] order.
    pub fn random(config: RnnConfig, seed: u64, scale: f64) -> RefModel {
        let mut rng = SplitMix64(seed);
        let mut layers = Vec::new();
        for layer in 0..config.num_layers {
            for _dir in 0..config.num_directions() {
                let mut p = RefLayer::zeros(&config, layer);
                for (_, t) in p.tensors_mut() {
                    for v in t.iter_mut() {
                        *v = rng.uniform(scale);
                    }
                }
                layers.push(p);
            }
        }
        RefModel { config, layers }
    }
}

/// Inputs of one forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct RefInputs {
    /// Time steps `T`.
    pub t: usize,
    /// Batch size `B`.
    pub b: usize,
    /// `[T, B, I]`, time-major.
    pub input: Vec<f64>,
    /// `[B]`, each in `1..=T`, any order; `None` means all `T`.
    pub lengths: Option<Vec<usize>>,
    /// `[L*D, B, H_out]`; `None` means zeros.
    pub h0: Option<Vec<f64>>,
    /// `[L*D, B, H]` (LSTM only); `None` means zeros.
    pub c0: Option<Vec<f64>>,
    /// Empty, or one mask per layer `1..L`, each `[T, B, D*H_out]`, multiplied elementwise into
    /// that layer's input (the previous layer's output).
    pub dropout_masks: Vec<Vec<f64>>,
}

impl RefInputs {
    /// Inputs with full lengths, zero initial states and no dropout.
    pub fn new(t: usize, b: usize, input: Vec<f64>) -> RefInputs {
        RefInputs {
            t,
            b,
            input,
            lengths: None,
            h0: None,
            c0: None,
            dropout_masks: Vec::new(),
        }
    }
}

/// Results of a forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct RefOutputs {
    /// `[T, B, D*H_out]`, the last layer's output; exactly 0 at `t >= len_b`.
    pub output: Vec<f64>,
    /// `[L*D, B, H_out]`, the state after each direction's last step.
    pub h_n: Vec<f64>,
    /// `[L*D, B, H]` for the LSTM, else `None`.
    pub c_n: Option<Vec<f64>>,
}

/// Gradients of the loss with respect to the outputs, which define the loss
/// `Σ output⊙grad_output + Σ h_n⊙grad_h_n + Σ c_n⊙grad_c_n` (see [`loss`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RefUpstream {
    /// `[T, B, D*H_out]`; values at padded positions have no effect.
    pub grad_output: Vec<f64>,
    /// `[L*D, B, H_out]`.
    pub grad_h_n: Vec<f64>,
    /// `[L*D, B, H]` (LSTM only; must be `None` for the other cells); `None` means zeros.
    pub grad_c_n: Option<Vec<f64>>,
}

/// Gradients of the loss with respect to everything the forward pass read.
#[derive(Clone, Debug, PartialEq)]
pub struct RefGrads {
    /// `[T, B, I]`; 0 at padded positions.
    pub input: Vec<f64>,
    /// `[L*D, B, H_out]`, always present (the gradient at the zero state when `h0` was absent).
    pub h0: Vec<f64>,
    /// `[L*D, B, H]` for the LSTM (always, like `h0`), else `None`.
    pub c0: Option<Vec<f64>>,
    /// Parameter gradients, `layers[layer * D + dir]`, shaped like [`RefModel::layers`].
    pub layers: Vec<RefLayer>,
}

/// `Σ output⊙grad_output + Σ h_n⊙grad_h_n + Σ c_n⊙grad_c_n`: the loss whose gradients
/// [`backward`] returns.
pub fn loss(outputs: &RefOutputs, upstream: &RefUpstream) -> f64 {
    let dot = |a: &[f64], b: &[f64], what: &str| {
        assert_eq!(
            a.len(),
            b.len(),
            "reference::loss: {what} has the wrong length"
        );
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()
    };
    let mut total = dot(&outputs.output, &upstream.grad_output, "grad_output");
    total += dot(&outputs.h_n, &upstream.grad_h_n, "grad_h_n");
    if let (Some(c), Some(g)) = (&outputs.c_n, &upstream.grad_c_n) {
        total += dot(c, g, "grad_c_n");
    }
    total
}

/// Runs the stack forward.
///
/// # Panics
/// If a shape does not fit the config (this is a test oracle: it checks, it does not recover).
pub fn forward(model: &RefModel, inputs: &RefInputs) -> RefOutputs {
    run_forward(model, inputs).outputs
}

/// Gradients of [`loss`] with respect to the input, the initial states and every parameter.
/// Recomputes the forward pass itself.
///
/// # Panics
/// If a shape does not fit the config.
pub fn backward(model: &RefModel, inputs: &RefInputs, upstream: &RefUpstream) -> RefGrads {
    let trace = run_forward(model, inputs);
    let cfg = &model.config;
    let sizes = Sizes::of(cfg, inputs);
    let Sizes {
        t: tt,
        b: bb,
        d: dd,
        h,
        h_out,
        ..
    } = sizes;
    let lstm = cfg.cell == CellKind::Lstm;
    check_len(
        &upstream.grad_output,
        tt * bb * dd * h_out,
        "grad_output [T, B, D*H_out]",
    );
    check_len(
        &upstream.grad_h_n,
        sizes.num_states() * h_out,
        "grad_h_n [L*D, B, H_out]",
    );
    if let Some(g) = &upstream.grad_c_n {
        assert!(
            lstm,
            "reference: grad_c_n given, but {} has no cell state",
            cfg.cell
        );
        check_len(g, sizes.num_states() * h, "grad_c_n [L*D, B, H]");
    }

    let mut grads: Vec<RefLayer> = (0..cfg.num_layers * dd)
        .map(|ld| RefLayer::zeros(cfg, ld / dd))
        .collect();
    let mut dh0 = vec![0.0; sizes.num_states() * h_out]; // [L*D, B, H_out]
    let mut dc0 = vec![0.0; if lstm { sizes.num_states() * h } else { 0 }]; // [L*D, B, H]
    // ∂loss/∂(output of the current layer), [T, B, D*H_out]; padded positions are never read.
    let mut dy = upstream.grad_output.clone();

    for layer in (0..cfg.num_layers).rev() {
        let i_k = cfg.layer_input_size(layer);
        let x = &trace.layer_inputs[layer]; // [T, B, I_k]
        let mut dx = vec![0.0; tt * bb * i_k]; // [T, B, I_k]
        for dir in 0..dd {
            let ld = layer * dd + dir;
            let cell = Cell::new(cfg, &model.layers[ld]);
            for b in 0..bb {
                let state = ld * bb + b;
                let mut dh = upstream.grad_h_n[state * h_out..][..h_out].to_vec(); // [H_out]
                let mut dc = match (&upstream.grad_c_n, lstm) {
                    (Some(g), _) => g[state * h..][..h].to_vec(),
                    (None, true) => vec![0.0; h],
                    (None, false) => Vec::new(),
                }; // [H] (LSTM) or empty
                // Walk the steps in the reverse of the order forward ran them.
                for step in trace.steps[ld][b].iter().rev() {
                    let row = step.t * bb + b;
                    let dy_t = &dy[(row * dd + dir) * h_out..][..h_out];
                    for j in 0..h_out {
                        dh[j] += dy_t[j];
                    }
                    let x_t = &x[row * i_k..][..i_k];
                    let dx_t = &mut dx[row * i_k..][..i_k];
                    (dh, dc) = cell.backward(&mut grads[ld], x_t, step, &dh, &dc, dx_t);
                }
                dh0[state * h_out..][..h_out].copy_from_slice(&dh);
                if lstm {
                    dc0[state * h..][..h].copy_from_slice(&dc);
                }
            }
        }
        // The input of this layer was the previous layer's output times its dropout mask.
        if layer > 0 && !inputs.dropout_masks.is_empty() {
            for (v, m) in dx.iter_mut().zip(&inputs.dropout_masks[layer - 1]) {
                *v *= m;
            }
        }
        dy = dx;
    }

    RefGrads {
        input: dy,
        h0: dh0,
        c0: lstm.then_some(dc0),
        layers: grads,
    }
}

// ---------------------------------------------------------------------------------------------
// Forward through the stack, keeping what backward needs.

/// Sizes of one call, checked against the config.
#[derive(Clone, Copy)]
struct Sizes {
    t: usize,
    b: usize,
    l: usize,
    d: usize,
    h: usize,
    h_out: usize,
}

impl Sizes {
    fn of(cfg: &RnnConfig, inputs: &RefInputs) -> Sizes {
        Sizes {
            t: inputs.t,
            b: inputs.b,
            l: cfg.num_layers,
            d: cfg.num_directions(),
            h: cfg.hidden_size,
            h_out: cfg.h_out(),
        }
    }
    /// `L*D*B`: rows of `h0`, `h_n`, `c0`, `c_n`.
    fn num_states(&self) -> usize {
        self.l * self.d * self.b
    }
}

fn check_len(v: &[f64], want: usize, what: &str) {
    assert_eq!(
        v.len(),
        want,
        "reference: {what} has {} values, expected {want}",
        v.len()
    );
}

/// Checks every shape once, so the loops below cannot go out of bounds.
fn check_shapes(model: &RefModel, inputs: &RefInputs) {
    let cfg = &model.config;
    if let Err(e) = cfg.validate() {
        panic!("reference: {e}");
    }
    let s = Sizes::of(cfg, inputs);
    assert_eq!(
        model.layers.len(),
        s.l * s.d,
        "reference: need num_layers * D layers"
    );
    for (ld, p) in model.layers.iter().enumerate() {
        let want = RefLayer::zeros(cfg, ld / s.d);
        let have: Vec<_> = p.tensors().iter().map(|(n, t)| (*n, t.len())).collect();
        let need: Vec<_> = want.tensors().iter().map(|(n, t)| (*n, t.len())).collect();
        assert_eq!(
            have, need,
            "reference: layers[{ld}] has the wrong tensors or sizes"
        );
    }
    check_len(&inputs.input, s.t * s.b * cfg.input_size, "input [T, B, I]");
    if let Some(h0) = &inputs.h0 {
        check_len(h0, s.num_states() * s.h_out, "h0 [L*D, B, H_out]");
    }
    if let Some(c0) = &inputs.c0 {
        assert!(
            cfg.cell.has_cell_state(),
            "reference: c0 given, but {} has no cell state",
            cfg.cell
        );
        check_len(c0, s.num_states() * s.h, "c0 [L*D, B, H]");
    }
    if let Some(lengths) = &inputs.lengths {
        assert_eq!(lengths.len(), s.b, "reference: lengths must have B entries");
        for (b, &n) in lengths.iter().enumerate() {
            assert!(
                (1..=s.t).contains(&n),
                "reference: lengths[{b}] = {n} is not in 1..=T ({})",
                s.t
            );
        }
    }
    if !inputs.dropout_masks.is_empty() {
        assert_eq!(
            inputs.dropout_masks.len(),
            s.l - 1,
            "reference: need one dropout mask per layer 1..L"
        );
        for m in &inputs.dropout_masks {
            check_len(m, s.t * s.b * s.d * s.h_out, "dropout mask [T, B, D*H_out]");
        }
    }
}

/// What one step of one sequence keeps for backward.
struct Step {
    /// The time index this step read and wrote.
    t: usize,
    /// `[H_out]` the state before the step.
    h_prev: Vec<f64>,
    /// `[H]` (LSTM; empty otherwise) the cell state before the step.
    c_prev: Vec<f64>,
    /// `[G*H]` the activated gates: LSTM `i, f, g, o`; GRU `r, z, n`; RNN `h` itself.
    gates: Vec<f64>,
    /// `[H]` (GRU; empty otherwise) `gh_n = W_hn h_prev + b_hn`, before `r` multiplies it.
    gh_n: Vec<f64>,
    /// `[H]` (LSTM; empty otherwise) the new cell state.
    c: Vec<f64>,
    /// `[H]` (LSTM; empty otherwise) `m = o ⊙ tanh(c)`, the hidden state before projection.
    m: Vec<f64>,
    /// `[H_out]` the new hidden state.
    h: Vec<f64>,
}

/// Everything forward keeps.
struct Trace {
    /// Per layer, its input `[T, B, I_k]` (for `k > 0`: the previous output times the mask).
    layer_inputs: Vec<Vec<f64>>,
    /// `steps[layer * D + dir][b]`: the steps of sequence `b`, in the order they ran.
    steps: Vec<Vec<Vec<Step>>>,
    outputs: RefOutputs,
}

fn run_forward(model: &RefModel, inputs: &RefInputs) -> Trace {
    check_shapes(model, inputs);
    let cfg = &model.config;
    let Sizes {
        t: tt,
        b: bb,
        d: dd,
        h,
        h_out,
        ..
    } = Sizes::of(cfg, inputs);
    let lstm = cfg.cell == CellKind::Lstm;
    let num_states = cfg.num_layers * dd * bb;
    let lengths = inputs.lengths.clone().unwrap_or_else(|| vec![tt; bb]);

    let mut h_n = vec![0.0; num_states * h_out]; // [L*D, B, H_out]
    let mut c_n = vec![0.0; if lstm { num_states * h } else { 0 }]; // [L*D, B, H]
    let mut layer_inputs = Vec::new();
    let mut steps = Vec::new();
    let mut x = inputs.input.clone(); // [T, B, I_k]

    for layer in 0..cfg.num_layers {
        if layer > 0 && !inputs.dropout_masks.is_empty() {
            for (v, m) in x.iter_mut().zip(&inputs.dropout_masks[layer - 1]) {
                *v *= m;
            }
        }
        let i_k = cfg.layer_input_size(layer);
        let mut out = vec![0.0; tt * bb * dd * h_out]; // [T, B, D*H_out], padding stays 0
        for dir in 0..dd {
            let ld = layer * dd + dir;
            let cell = Cell::new(cfg, &model.layers[ld]);
            let mut per_seq = Vec::with_capacity(bb);
            for b in 0..bb {
                let state = ld * bb + b;
                let len = lengths[b];
                let order: Vec<usize> = if dir == 0 {
                    (0..len).collect()
                } else {
                    (0..len).rev().collect()
                };
                let mut hs = match &inputs.h0 {
                    Some(h0) => h0[state * h_out..][..h_out].to_vec(),
                    None => vec![0.0; h_out],
                }; // [H_out]
                let mut cs = match (&inputs.c0, lstm) {
                    (Some(c0), _) => c0[state * h..][..h].to_vec(),
                    (None, true) => vec![0.0; h],
                    (None, false) => Vec::new(),
                }; // [H] (LSTM) or empty
                let mut seq = Vec::with_capacity(len);
                for t in order {
                    let row = t * bb + b;
                    let step = cell.forward(t, &x[row * i_k..][..i_k], &hs, &cs);
                    out[(row * dd + dir) * h_out..][..h_out].copy_from_slice(&step.h);
                    hs.clone_from(&step.h);
                    cs.clone_from(&step.c);
                    seq.push(step);
                }
                h_n[state * h_out..][..h_out].copy_from_slice(&hs);
                if lstm {
                    c_n[state * h..][..h].copy_from_slice(&cs);
                }
                per_seq.push(seq);
            }
            steps.push(per_seq);
        }
        layer_inputs.push(std::mem::replace(&mut x, out));
    }

    Trace {
        layer_inputs,
        steps,
        outputs: RefOutputs {
            output: x,
            h_n,
            c_n: lstm.then_some(c_n),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// One cell: a step forward and its backward.

/// One (layer, direction)'s parameters with the sizes needed to read them.
struct Cell<'a> {
    kind: CellKind,
    p: &'a RefLayer,
    /// Hidden size `H`.
    h: usize,
}

impl<'a> Cell<'a> {
    fn new(cfg: &RnnConfig, p: &'a RefLayer) -> Cell<'a> {
        Cell {
            kind: cfg.cell,
            p,
            h: cfg.hidden_size,
        }
    }

    /// One step: `x` `[I_k]`, `h_prev` `[H_out]`, `c_prev` `[H]` (LSTM) or empty.
    fn forward(&self, t: usize, x: &[f64], h_prev: &[f64], c_prev: &[f64]) -> Step {
        let p = self.p;
        let hh = self.h;
        let gi = affine(&p.w_ih, p.b_ih.as_deref(), x); // [G*H] W_ih x + b_ih
        let gh = affine(&p.w_hh, p.b_hh.as_deref(), h_prev); // [G*H] W_hh h_prev + b_hh
        let mut gates = vec![0.0; gi.len()]; // [G*H]
        let (mut gh_n, mut c, mut m) = (Vec::new(), Vec::new(), Vec::new());
        let h = match self.kind {
            CellKind::Lstm => {
                c = vec![0.0; hh];
                m = vec![0.0; hh];
                for j in 0..hh {
                    let i = sigmoid(gi[j] + gh[j]);
                    let f = sigmoid(gi[hh + j] + gh[hh + j]);
                    let g = (gi[2 * hh + j] + gh[2 * hh + j]).tanh();
                    let o = sigmoid(gi[3 * hh + j] + gh[3 * hh + j]);
                    c[j] = f * c_prev[j] + i * g;
                    m[j] = o * c[j].tanh();
                    (
                        gates[j],
                        gates[hh + j],
                        gates[2 * hh + j],
                        gates[3 * hh + j],
                    ) = (i, f, g, o);
                }
                match &p.w_hr {
                    Some(w_hr) => affine(w_hr, None, &m), // [H_out] W_hr m
                    None => m.clone(),
                }
            }
            CellKind::Gru => {
                gh_n = gh[2 * hh..].to_vec();
                let mut h = vec![0.0; hh];
                for j in 0..hh {
                    let r = sigmoid(gi[j] + gh[j]);
                    let z = sigmoid(gi[hh + j] + gh[hh + j]);
                    let n = (gi[2 * hh + j] + r * gh_n[j]).tanh();
                    h[j] = (1.0 - z) * n + z * h_prev[j];
                    (gates[j], gates[hh + j], gates[2 * hh + j]) = (r, z, n);
                }
                h
            }
            CellKind::RnnTanh | CellKind::RnnRelu => {
                for j in 0..hh {
                    let a = gi[j] + gh[j];
                    gates[j] = if self.kind == CellKind::RnnTanh {
                        a.tanh()
                    } else {
                        a.max(0.0)
                    };
                }
                gates.clone()
            }
        };
        Step {
            t,
            h_prev: h_prev.to_vec(),
            c_prev: c_prev.to_vec(),
            gates,
            gh_n,
            c,
            m,
            h,
        }
    }

    /// Backward of [`Cell::forward`]: given `dh` `[H_out]` and `dc` `[H]` (LSTM) after the step,
    /// adds into the parameter gradients `g` and into `dx` `[I_k]`, and returns
    /// `(dh_prev [H_out], dc_prev [H] or empty)`.
    fn backward(
        &self,
        g: &mut RefLayer,
        x: &[f64],
        s: &Step,
        dh: &[f64],
        dc: &[f64],
        dx: &mut [f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let p = self.p;
        let hh = self.h;
        let mut dh_prev = vec![0.0; s.h_prev.len()]; // [H_out]
        let mut dc_prev = Vec::new(); // [H] (LSTM)
        // Gradients of the two affine halves, W_ih x + b_ih and W_hh h_prev + b_hh.
        let mut da_ih = vec![0.0; s.gates.len()]; // [G*H]
        let mut da_hh = vec![0.0; s.gates.len()]; // [G*H]
        match self.kind {
            CellKind::Lstm => {
                // dm = W_hrᵀ dh, dW_hr += dh mᵀ (no projection: dm = dh).
                let dm = match (&p.w_hr, &mut g.w_hr) {
                    (Some(w_hr), Some(dw_hr)) => {
                        let mut dm = vec![0.0; hh];
                        affine_backward(w_hr, &s.m, dh, dw_hr, None, &mut dm);
                        dm
                    }
                    _ => dh.to_vec(),
                }; // [H]
                dc_prev = vec![0.0; hh];
                for j in 0..hh {
                    let (i, f, gg, o) = (
                        s.gates[j],
                        s.gates[hh + j],
                        s.gates[2 * hh + j],
                        s.gates[3 * hh + j],
                    );
                    let tanh_c = s.c[j].tanh();
                    let d_o = dm[j] * tanh_c;
                    let dc_j = dc[j] + dm[j] * o * (1.0 - tanh_c * tanh_c);
                    let di = dc_j * gg;
                    let dg = dc_j * i;
                    let df = dc_j * s.c_prev[j];
                    dc_prev[j] = dc_j * f;
                    da_ih[j] = di * i * (1.0 - i);
                    da_ih[hh + j] = df * f * (1.0 - f);
                    da_ih[2 * hh + j] = dg * (1.0 - gg * gg);
                    da_ih[3 * hh + j] = d_o * o * (1.0 - o);
                }
                da_hh.copy_from_slice(&da_ih);
            }
            CellKind::Gru => {
                for j in 0..hh {
                    let (r, z, n) = (s.gates[j], s.gates[hh + j], s.gates[2 * hh + j]);
                    let dn = dh[j] * (1.0 - z);
                    let dz = dh[j] * (s.h_prev[j] - n);
                    dh_prev[j] = z * dh[j]; // the direct path
                    let dp = dn * (1.0 - n * n); // p = gi_n + r ⊙ gh_n
                    let dr = dp * s.gh_n[j];
                    let da_r = dr * r * (1.0 - r);
                    let da_z = dz * z * (1.0 - z);
                    (da_ih[j], da_hh[j]) = (da_r, da_r);
                    (da_ih[hh + j], da_hh[hh + j]) = (da_z, da_z);
                    (da_ih[2 * hh + j], da_hh[2 * hh + j]) = (dp, dp * r);
                }
            }
            CellKind::RnnTanh | CellKind::RnnRelu => {
                for j in 0..hh {
                    let h = s.gates[j];
                    da_ih[j] = if self.kind == CellKind::RnnTanh {
                        dh[j] * (1.0 - h * h)
                    } else if h > 0.0 {
                        dh[j]
                    } else {
                        0.0
                    };
                }
                da_hh.copy_from_slice(&da_ih);
            }
        }
        affine_backward(&p.w_ih, x, &da_ih, &mut g.w_ih, g.b_ih.as_deref_mut(), dx);
        affine_backward(
            &p.w_hh,
            &s.h_prev,
            &da_hh,
            &mut g.w_hh,
            g.b_hh.as_deref_mut(),
            &mut dh_prev,
        );
        (dh_prev, dc_prev)
    }
}

fn sigmoid(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

/// `y = W v + b`, `W` `[rows, cols]` row-major, `v` `[cols]`, `b` `[rows]`.
fn affine(w: &[f64], b: Option<&[f64]>, v: &[f64]) -> Vec<f64> {
    let cols = v.len();
    let rows = w.len() / cols;
    let mut y = vec![0.0; rows];
    for r in 0..rows {
        let mut acc = 0.0;
        for c in 0..cols {
            acc += w[r * cols + c] * v[c];
        }
        y[r] = acc + b.map_or(0.0, |b| b[r]);
    }
    y
}

/// Backward of `y = W v + b`: `dW += dy vᵀ`, `db += dy`, `dv += Wᵀ dy`.
fn affine_backward(
    w: &[f64],
    v: &[f64],
    dy: &[f64],
    dw: &mut [f64],
    db: Option<&mut [f64]>,
    dv: &mut [f64],
) {
    let cols = v.len();
    for r in 0..dy.len() {
        for c in 0..cols {
            dw[r * cols + c] += dy[r] * v[c];
            dv[c] += w[r * cols + c] * dy[r];
        }
    }
    if let Some(db) = db {
        for r in 0..dy.len() {
            db[r] += dy[r];
        }
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, good-enough generator for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-scale, scale)`.
    fn uniform(&mut self, scale: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        (2.0 * u - 1.0) * scale
    }
}

#[cfg(test)]
mod tests {
    //! Finite-difference checks of every gradient, the packed-sequence rules, and PyTorch's own
    //! answers for the golden cases in `tests/fixtures/cases` (made by `tools/gen_fixtures.py`).

    use super::*;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    /// Central-difference step. With `f64` and losses of order 1–10, the rounding error of a
    /// difference quotient is about `1e-16 · 10 / 1e-6 = 1e-9` and its truncation error about
    /// `eps² = 1e-12`, far inside the tolerance below.
    const EPS: f64 = 1e-6;
    /// Finite-difference tolerance: `|analytic − fd| ≤ FD_RTOL · max(|analytic|, |fd|) + FD_ATOL`.
    const FD_RTOL: f64 = 1e-6;
    const FD_ATOL: f64 = 1e-8;

    // -----------------------------------------------------------------------------------------
    // Test problems.

    /// What to build: a config, sizes, which optional inputs to give.
    #[derive(Clone, Debug)]
    struct Spec {
        cfg: RnnConfig,
        t: usize,
        b: usize,
        lengths: Option<Vec<usize>>,
        h0: bool,
        c0: bool,
        masks: bool,
        seed: u64,
    }

    /// `T = 4`, `B = 3`, full lengths, no initial state, no masks.
    fn spec(cfg: RnnConfig) -> Spec {
        Spec {
            cfg,
            t: 4,
            b: 3,
            lengths: None,
            h0: false,
            c0: false,
            masks: false,
            seed: 1,
        }
    }

    struct Problem {
        model: RefModel,
        inputs: RefInputs,
        upstream: RefUpstream,
    }

    fn random_vec(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| rng.uniform(scale)).collect()
    }

    /// Weights U(±0.6), inputs U(±1), h0 U(±0.9), c0 U(±1), upstream gradients U(±1) everywhere
    /// (padded positions included), masks 0 with probability 0.3 and 1/0.7 otherwise.
    fn build(s: &Spec) -> Problem {
        let cfg = &s.cfg;
        let model = RefModel::random(cfg.clone(), s.seed, 0.6);
        let mut rng = SplitMix64(s.seed.wrapping_mul(0x1234_5678_9ABC_DEF1) ^ 0x5EED);
        let (d, h, h_out) = (cfg.num_directions(), cfg.hidden_size, cfg.h_out());
        let states = cfg.num_layers * d * s.b;
        let out_len = s.t * s.b * d * h_out;
        let lstm = cfg.cell == CellKind::Lstm;
        let mut inputs = RefInputs::new(
            s.t,
            s.b,
            random_vec(&mut rng, s.t * s.b * cfg.input_size, 1.0),
        );
        inputs.lengths = s.lengths.clone();
        inputs.h0 = s.h0.then(|| random_vec(&mut rng, states * h_out, 0.9));
        inputs.c0 = s.c0.then(|| random_vec(&mut rng, states * h, 1.0));
        if s.masks {
            inputs.dropout_masks = (1..cfg.num_layers)
                .map(|_| {
                    (0..out_len)
                        .map(|_| {
                            if rng.uniform(0.5) < -0.2 {
                                0.0
                            } else {
                                1.0 / 0.7
                            }
                        })
                        .collect()
                })
                .collect();
        }
        let upstream = RefUpstream {
            grad_output: random_vec(&mut rng, out_len, 1.0),
            grad_h_n: random_vec(&mut rng, states * h_out, 1.0),
            grad_c_n: lstm.then(|| random_vec(&mut rng, states * h, 1.0)),
        };
        Problem {
            model,
            inputs,
            upstream,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Finite differences.

    /// Compares `analytic` with central differences of `loss_at(k, δ)` (the loss with element
    /// `k` moved by `δ`); prints and returns whether every element is within tolerance.
    fn check_tensor(
        label: &str,
        name: &str,
        analytic: &[f64],
        loss_at: impl Fn(usize, f64) -> f64,
    ) -> bool {
        let mut worst = (0.0_f64, 0_usize, 0.0_f64, 0.0_f64); // (err / tol, k, analytic, fd)
        for (k, &an) in analytic.iter().enumerate() {
            let fd = (loss_at(k, EPS) - loss_at(k, -EPS)) / (2.0 * EPS);
            let ratio = (an - fd).abs() / (FD_RTOL * an.abs().max(fd.abs()) + FD_ATOL);
            if ratio.is_nan() || ratio > worst.0 {
                worst = (ratio, k, an, fd);
            }
        }
        let ok = worst.0 <= 1.0;
        if !ok {
            eprintln!(
                "FAIL {label}: {name}[{}]: analytic {:.12e}, finite difference {:.12e} ({:.1}x tolerance)",
                worst.1, worst.2, worst.3, worst.0
            );
        }
        ok
    }

    /// Checks every gradient `backward` returns (input, h0, c0, every parameter of every layer and
    /// direction) against central differences of `loss(forward(..))`.
    fn fd_check(label: &str, pr: &Problem) {
        let Problem {
            model,
            inputs,
            upstream,
        } = pr;
        let cfg = &model.config;
        let grads = backward(model, inputs, upstream);
        let loss_of = |m: &RefModel, i: &RefInputs| loss(&forward(m, i), upstream);
        let mut ok = true;

        ok &= check_tensor(label, "input", &grads.input, |k, delta| {
            let mut i = inputs.clone();
            i.input[k] += delta;
            loss_of(model, &i)
        });
        // The gradient at a zero initial state is the gradient at an explicit zero h0.
        let states = cfg.num_layers * cfg.num_directions() * inputs.b;
        let h0 = inputs
            .h0
            .clone()
            .unwrap_or_else(|| vec![0.0; states * cfg.h_out()]);
        ok &= check_tensor(label, "h0", &grads.h0, |k, delta| {
            let mut i = inputs.clone();
            let mut h = h0.clone();
            h[k] += delta;
            i.h0 = Some(h);
            loss_of(model, &i)
        });
        assert_eq!(
            grads.c0.is_some(),
            cfg.cell == CellKind::Lstm,
            "{label}: c0 gradient presence"
        );
        if let Some(dc0) = &grads.c0 {
            let c0 = inputs
                .c0
                .clone()
                .unwrap_or_else(|| vec![0.0; states * cfg.hidden_size]);
            ok &= check_tensor(label, "c0", dc0, |k, delta| {
                let mut i = inputs.clone();
                let mut c = c0.clone();
                c[k] += delta;
                i.c0 = Some(c);
                loss_of(model, &i)
            });
        }
        assert_eq!(grads.layers.len(), model.layers.len());
        let d = cfg.num_directions();
        for (ld, g) in grads.layers.iter().enumerate() {
            let names: Vec<_> = g.tensors().iter().map(|(n, t)| (*n, t.len())).collect();
            let want: Vec<_> = model.layers[ld]
                .tensors()
                .iter()
                .map(|(n, t)| (*n, t.len()))
                .collect();
            assert_eq!(names, want, "{label}: gradient tensors of layers[{ld}]");
            for (ti, (base, dp)) in g.tensors().into_iter().enumerate() {
                let name = param_name(base, ld / d, ld % d);
                ok &= check_tensor(label, &name, dp, |k, delta| {
                    let mut m = model.clone();
                    m.layers[ld].tensors_mut()[ti].1[k] += delta;
                    loss_of(&m, inputs)
                });
            }
        }
        assert!(
            ok,
            "{label}: gradients disagree with finite differences (see above)"
        );
    }

    const ALL_CELLS: [CellKind; 4] = [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::RnnTanh,
        CellKind::RnnRelu,
    ];

    /// Every cell kind × {1, 2 layers} × {uni, bi} × {equal, variable lengths} × {with, without h0}.
    fn fd_grid(cell: CellKind) {
        let mut seed = 10;
        for layers in [1, 2] {
            for bi in [false, true] {
                for varlen in [false, true] {
                    for h0 in [false, true] {
                        seed += 1;
                        let cfg = RnnConfig::new(cell, 3, 3)
                            .num_layers(layers)
                            .bidirectional(bi);
                        let mut s = spec(cfg);
                        s.lengths = varlen.then(|| vec![2, 4, 1]);
                        s.h0 = h0;
                        s.c0 = h0 && cell == CellKind::Lstm;
                        s.seed = seed;
                        let label = format!("{cell} L={layers} bi={bi} varlen={varlen} h0={h0}");
                        fd_check(&label, &build(&s));
                    }
                }
            }
        }
    }

    #[test]
    fn fd_lstm() {
        fd_grid(CellKind::Lstm);
    }

    #[test]
    fn fd_gru() {
        fd_grid(CellKind::Gru);
    }

    #[test]
    fn fd_rnn_tanh() {
        fd_grid(CellKind::RnnTanh);
    }

    #[test]
    fn fd_rnn_relu() {
        fd_grid(CellKind::RnnRelu);
    }

    #[test]
    fn fd_lstm_projection() {
        let mut seed = 100;
        for layers in [1, 2] {
            for bi in [false, true] {
                for varlen in [false, true] {
                    seed += 1;
                    let cfg = RnnConfig::new(CellKind::Lstm, 3, 3)
                        .proj_size(2)
                        .num_layers(layers)
                        .bidirectional(bi);
                    let mut s = spec(cfg);
                    s.lengths = varlen.then(|| vec![3, 1, 4]);
                    s.h0 = seed % 2 == 0;
                    s.c0 = seed % 2 == 0;
                    s.seed = seed;
                    fd_check(
                        &format!("lstm proj=2 L={layers} bi={bi} varlen={varlen}"),
                        &build(&s),
                    );
                }
            }
        }
    }

    #[test]
    fn fd_lstm_only_one_initial_state() {
        for (h0, c0) in [(true, false), (false, true)] {
            let cfg = RnnConfig::new(CellKind::Lstm, 2, 3)
                .num_layers(2)
                .bidirectional(true);
            let mut s = spec(cfg);
            s.lengths = Some(vec![4, 2, 3]);
            (s.h0, s.c0, s.seed) = (h0, c0, 200);
            fd_check(&format!("lstm h0={h0} c0={c0}"), &build(&s));
        }
    }

    #[test]
    fn fd_no_bias() {
        for (n, cell) in ALL_CELLS.into_iter().enumerate() {
            let cfg = RnnConfig::new(cell, 3, 3)
                .num_layers(2)
                .bidirectional(true)
                .bias(false);
            let mut s = spec(cfg);
            s.lengths = Some(vec![3, 4, 1]);
            (s.h0, s.c0, s.seed) = (true, cell == CellKind::Lstm, 300 + n as u64);
            let pr = build(&s);
            assert!(
                pr.model
                    .layers
                    .iter()
                    .all(|p| p.b_ih.is_none() && p.b_hh.is_none())
            );
            fd_check(&format!("{cell} bias=false"), &pr);
        }
        let cfg = RnnConfig::new(CellKind::Lstm, 3, 3)
            .proj_size(1)
            .num_layers(2)
            .bidirectional(true)
            .bias(false);
        let mut s = spec(cfg);
        s.lengths = Some(vec![1, 4, 2]);
        (s.h0, s.c0, s.seed) = (true, true, 310);
        fd_check("lstm proj=1 bias=false", &build(&s));
    }

    #[test]
    fn fd_dropout_masks() {
        for (n, cell) in ALL_CELLS.into_iter().enumerate() {
            for (layers, bi) in [(2, true), (3, false)] {
                let cfg = RnnConfig::new(cell, 2, 3)
                    .num_layers(layers)
                    .bidirectional(bi)
                    .dropout(0.3);
                let mut s = spec(cfg);
                s.lengths = Some(vec![4, 1, 3]);
                (s.h0, s.masks, s.seed) = (true, true, 400 + n as u64);
                let pr = build(&s);
                assert!(pr.inputs.dropout_masks.iter().flatten().any(|&m| m == 0.0));
                fd_check(
                    &format!("{cell} L={layers} bi={bi} with dropout masks"),
                    &pr,
                );
            }
        }
        let cfg = RnnConfig::new(CellKind::Lstm, 2, 3)
            .proj_size(2)
            .num_layers(2)
            .bidirectional(true);
        let mut s = spec(cfg);
        s.lengths = Some(vec![4, 2, 3]);
        (s.h0, s.c0, s.masks, s.seed) = (true, true, true, 410);
        fd_check("lstm proj=2 with dropout masks", &build(&s));
    }

    // -----------------------------------------------------------------------------------------
    // Packed-sequence rules and the reverse direction.

    #[test]
    fn padded_outputs_are_zero_and_h_n_is_the_last_valid_step() {
        for cell in ALL_CELLS {
            let cfg = RnnConfig::new(cell, 3, 3).num_layers(2).bidirectional(true);
            let mut s = spec(cfg.clone());
            s.lengths = Some(vec![2, 4, 1]);
            s.h0 = true;
            let pr = build(&s);
            let out = forward(&pr.model, &pr.inputs);
            let grads = backward(&pr.model, &pr.inputs, &pr.upstream);
            let (t, b, ho, i) = (s.t, s.b, cfg.h_out(), cfg.input_size);
            let last = cfg.num_layers - 1;
            for (bi, &len) in s.lengths.as_ref().unwrap().iter().enumerate() {
                for ti in 0..t {
                    let y = &out.output[(ti * b + bi) * 2 * ho..][..2 * ho];
                    let dx = &grads.input[(ti * b + bi) * i..][..i];
                    if ti >= len {
                        assert!(
                            y.iter().all(|&v| v == 0.0),
                            "{cell}: output[{ti}, {bi}] is padding"
                        );
                        assert!(
                            dx.iter().all(|&v| v == 0.0),
                            "{cell}: grad input[{ti}, {bi}] is padding"
                        );
                    } else if cell != CellKind::RnnRelu {
                        // (relu outputs can be exactly 0 at valid steps too)
                        assert!(
                            y.iter().all(|&v| v != 0.0),
                            "{cell}: output[{ti}, {bi}] is valid"
                        );
                    }
                }
                // Forward direction: h_n is the output at len - 1; reverse: the output at 0.
                let h_fwd = &out.h_n[((last * 2) * b + bi) * ho..][..ho];
                let h_rev = &out.h_n[((last * 2 + 1) * b + bi) * ho..][..ho];
                assert_eq!(h_fwd, &out.output[((len - 1) * b + bi) * 2 * ho..][..ho]);
                assert_eq!(h_rev, &out.output[bi * 2 * ho + ho..][..ho]);
            }
        }
    }

    #[test]
    fn padded_grad_output_has_no_effect() {
        for cell in ALL_CELLS {
            let cfg = RnnConfig::new(cell, 3, 3).num_layers(2).bidirectional(true);
            let mut s = spec(cfg.clone());
            let lengths = vec![3, 1, 4];
            s.lengths = Some(lengths.clone());
            let pr = build(&s);
            let mut clean = pr.upstream.clone();
            let w = cfg.output_size();
            for (bi, &len) in lengths.iter().enumerate() {
                for ti in len..s.t {
                    clean.grad_output[(ti * s.b + bi) * w..][..w].fill(0.0);
                }
            }
            assert_ne!(clean, pr.upstream);
            assert_eq!(
                backward(&pr.model, &pr.inputs, &pr.upstream),
                backward(&pr.model, &pr.inputs, &clean),
                "{cell}"
            );
        }
    }

    #[test]
    fn full_lengths_equal_no_lengths() {
        for cell in ALL_CELLS {
            let cfg = RnnConfig::new(cell, 3, 3).num_layers(2).bidirectional(true);
            let mut s = spec(cfg);
            s.h0 = true;
            let pr = build(&s);
            let mut with = pr.inputs.clone();
            with.lengths = Some(vec![s.t; s.b]);
            assert_eq!(
                forward(&pr.model, &pr.inputs),
                forward(&pr.model, &with),
                "{cell}"
            );
            assert_eq!(
                backward(&pr.model, &pr.inputs, &pr.upstream),
                backward(&pr.model, &with, &pr.upstream),
                "{cell}"
            );
        }
    }

    /// The reverse direction of a one-layer bidirectional stack is the forward direction of a
    /// unidirectional stack, with the same weights, run on the time-reversed sequence.
    #[test]
    fn reverse_direction_is_forward_on_reversed_sequence() {
        for cell in ALL_CELLS {
            let bi_cfg = RnnConfig::new(cell, 3, 3).bidirectional(true);
            let mut s = spec(bi_cfg.clone());
            (s.h0, s.c0) = (true, cell == CellKind::Lstm);
            let pr = build(&s);
            let (t, b, i, h) = (s.t, s.b, bi_cfg.input_size, bi_cfg.hidden_size);
            let state =
                |v: &Option<Vec<f64>>, width: usize| v.as_ref().map(|v| v[b * width..].to_vec());
            let reversed = |v: &[f64], width: usize| -> Vec<f64> {
                (0..t)
                    .rev()
                    .flat_map(|ti| v[ti * b * width..][..b * width].to_vec())
                    .collect()
            };
            let uni = RefModel {
                config: RnnConfig::new(cell, 3, 3),
                layers: vec![pr.model.layers[1].clone()],
            };
            let mut uni_in = RefInputs::new(t, b, reversed(&pr.inputs.input, i));
            uni_in.h0 = state(&pr.inputs.h0, h);
            uni_in.c0 = state(&pr.inputs.c0, h);

            let bi_out = forward(&pr.model, &pr.inputs);
            let uni_out = forward(&uni, &uni_in);
            for ti in 0..t {
                for bi in 0..b {
                    assert_eq!(
                        &bi_out.output[((ti * b + bi) * 2 + 1) * h..][..h],
                        &uni_out.output[((t - 1 - ti) * b + bi) * h..][..h],
                        "{cell}: t={ti} b={bi}"
                    );
                }
            }
            assert_eq!(&bi_out.h_n[b * h..], &uni_out.h_n[..]);

            // Backward: with upstream gradients on the reverse direction only, the reverse
            // direction's weight gradients and the input gradient match the unidirectional ones.
            let mut up = pr.upstream.clone();
            for row in 0..t * b {
                up.grad_output[row * 2 * h..][..h].fill(0.0);
            }
            up.grad_h_n[..b * h].fill(0.0);
            if let Some(g) = &mut up.grad_c_n {
                g[..b * h].fill(0.0);
            }
            let uni_up = RefUpstream {
                grad_output: reversed(
                    &(0..t * b)
                        .flat_map(|row| up.grad_output[(row * 2 + 1) * h..][..h].to_vec())
                        .collect::<Vec<_>>(),
                    h,
                ),
                grad_h_n: up.grad_h_n[b * h..].to_vec(),
                grad_c_n: state(&up.grad_c_n, h),
            };
            let bi_g = backward(&pr.model, &pr.inputs, &up);
            let uni_g = backward(&uni, &uni_in, &uni_up);
            assert_eq!(bi_g.layers[1], uni_g.layers[0], "{cell}");
            assert_eq!(bi_g.input, reversed(&uni_g.input, i), "{cell}");
            assert_eq!(&bi_g.h0[b * h..], &uni_g.h0[..], "{cell}");
        }
    }

    #[test]
    fn random_is_deterministic_and_in_range() {
        let cfg = RnnConfig::new(CellKind::Lstm, 3, 4)
            .proj_size(2)
            .num_layers(2)
            .bidirectional(true);
        let a = RefModel::random(cfg.clone(), 5, 0.3);
        assert_eq!(a, RefModel::random(cfg.clone(), 5, 0.3));
        assert_ne!(a, RefModel::random(cfg, 6, 0.3));
        let all: Vec<f64> = a
            .layers
            .iter()
            .flat_map(|p| p.tensors())
            .flat_map(|(_, t)| t.to_vec())
            .collect();
        assert!(all.iter().all(|v| v.abs() < 0.3));
        assert!(all.iter().any(|&v| v > 0.2) && all.iter().any(|&v| v < -0.2));
    }

    #[test]
    #[should_panic(expected = "lengths[1] = 0 is not in 1..=T")]
    fn zero_length_is_rejected() {
        let mut pr = build(&spec(RnnConfig::new(CellKind::Gru, 3, 3)));
        pr.inputs.lengths = Some(vec![4, 0, 2]);
        forward(&pr.model, &pr.inputs);
    }

    // -----------------------------------------------------------------------------------------
    // PyTorch's answers.

    /// The golden cases, made by PyTorch in float64 from float32 inputs and rounded to float32:
    /// `/work/venv/bin/python tools/gen_fixtures.py` (base seed 20240611, per-case seed
    /// `base + crc32(name)`; see `tests/fixtures/cases/README.md`).
    fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cases")
    }

    /// A safetensors file's tensors as `f64` (`lengths` converted from i64), with shapes, and
    /// its metadata.
    struct Loaded {
        tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
        meta: HashMap<String, String>,
    }

    fn load(path: &Path) -> Loaded {
        use safetensors::{Dtype, SafeTensors};
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let data: Vec<f64> = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                Dtype::I64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{}: {name} has dtype {other:?}", path.display()),
            };
            tensors.insert(name, (view.shape().to_vec(), data));
        }
        Loaded {
            tensors,
            meta: metadata.metadata().clone().unwrap_or_default(),
        }
    }

    /// Runs one golden case; returns the failures and the worst relative difference.
    fn golden_case(case_path: &Path) -> (Vec<String>, f64) {
        let case = load(case_path);
        let expected = load(&case_path.with_extension("expected.safetensors"));
        let meta = |k: &str| {
            case.meta
                .get(k)
                .unwrap_or_else(|| panic!("metadata {k}"))
                .as_str()
        };
        let num = |k: &str| meta(k).parse::<usize>().unwrap();
        let cfg = RnnConfig::new(
            meta("cell").parse().unwrap(),
            num("input_size"),
            num("hidden_size"),
        )
        .num_layers(num("num_layers"))
        .proj_size(num("proj_size"))
        .bidirectional(meta("bidirectional") == "true")
        .bias(meta("bias") == "true");
        let get = |k: &str| case.tensors.get(k).map(|(_, v)| v.clone());
        let d = cfg.num_directions();
        let layers = (0..cfg.num_layers * d)
            .map(|ld| {
                let mut p = RefLayer::zeros(&cfg, ld / d);
                for (base, t) in p.tensors_mut() {
                    t.copy_from_slice(&get(&param_name(base, ld / d, ld % d)).unwrap());
                }
                p
            })
            .collect();
        let model = RefModel {
            config: cfg,
            layers,
        };
        let shape = &case.tensors["input"].0;
        let mut inputs = RefInputs::new(shape[0], shape[1], get("input").unwrap());
        inputs.lengths = get("lengths").map(|v| v.iter().map(|&n| n as usize).collect());
        inputs.h0 = get("h0");
        inputs.c0 = get("c0");
        let upstream = RefUpstream {
            grad_output: get("grad_output").unwrap(),
            grad_h_n: get("grad_h_n").unwrap(),
            grad_c_n: get("grad_c_n"),
        };
        let out = forward(&model, &inputs);
        let grads = backward(&model, &inputs, &upstream);

        let mut ours: Vec<(String, Vec<f64>)> = vec![
            ("output".into(), out.output),
            ("h_n".into(), out.h_n),
            ("grad_input".into(), grads.input),
        ];
        ours.extend(out.c_n.map(|c| ("c_n".into(), c)));
        if inputs.h0.is_some() {
            ours.push(("grad_h0".into(), grads.h0));
        }
        if let (Some(_), Some(dc0)) = (&inputs.c0, grads.c0) {
            ours.push(("grad_c0".into(), dc0));
        }
        for (ld, g) in grads.layers.iter().enumerate() {
            for (base, t) in g.tensors() {
                ours.push((
                    format!("grad.{}", param_name(base, ld / d, ld % d)),
                    t.to_vec(),
                ));
            }
        }
        // The expected values are correctly rounded to f32 (relative error ≤ 2^-24 ≈ 6e-8).
        let mut failures = Vec::new();
        let mut worst_rel = 0.0_f64;
        for (name, got) in &ours {
            let Some((_, want)) = expected.tensors.get(name) else {
                failures.push(format!("{name}: not in the expected file"));
                continue;
            };
            if got.len() != want.len() {
                failures.push(format!(
                    "{name}: {} values, expected {}",
                    got.len(),
                    want.len()
                ));
                continue;
            }
            let (mut worst, mut at) = (0.0_f64, 0);
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                let ratio = (g - w).abs() / (1e-6 * w.abs() + 1e-9);
                if ratio.is_nan() || ratio > worst {
                    (worst, at) = (ratio, k);
                }
                worst_rel = crate::verify::worse(worst_rel, (g - w).abs() / w.abs().max(1e-3));
            }
            if worst.is_nan() || worst > 1.0 {
                failures.push(format!(
                    "{name}[{at}]: {:.9e}, PyTorch {:.9e}",
                    got[at], want[at]
                ));
            }
        }
        if ours.len() != expected.tensors.len() {
            failures.push(format!(
                "compared {} tensors, the expected file has {}",
                ours.len(),
                expected.tensors.len()
            ));
        }
        (failures, worst_rel)
    }

    #[test]
    fn matches_pytorch_golden_cases() {
        let dir = fixtures_dir();
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name.ends_with(".safetensors") && !name.ends_with(".expected.safetensors")
            })
            .collect();
        cases.sort();
        assert!(
            cases.len() >= 100,
            "expected the golden cases in {}",
            dir.display()
        );
        let mut bad = 0;
        let mut worst = (0.0_f64, String::new());
        for path in &cases {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (failures, rel) = golden_case(path);
            if rel > worst.0 {
                worst = (rel, name.clone());
            }
            if !failures.is_empty() {
                bad += 1;
                eprintln!("FAIL {name}:\n  {}", failures.join("\n  "));
            }
        }
        eprintln!(
            "{} golden cases, {bad} failed; worst relative difference {:.2e} ({})",
            cases.len(),
            worst.0,
            worst.1
        );
        assert_eq!(bad, 0, "reference disagrees with PyTorch (see above)");
    }
}
