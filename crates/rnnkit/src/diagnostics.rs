//! Gradient-through-time diagnostics for the vanishing-gradient lab: how fast the gradient of a
//! loss at the last step fades (or blows up) as it flows back through the recurrent state, and
//! how saturated the gates of an LSTM or GRU are.
//!
//! # Which state a distance names
//!
//! For an input of `T` steps, `h_t` is the state of every layer *after reading step `t`*
//! (`t = 0..T`), and `h_{−1}` is the initial (zero) state. Distance `d` names `h_{T−1−d}`:
//! `d = 0` is the final state, `d = T − 1` the state after the first step, `d = T` the initial
//! state. The loss is `L = Σ d_last ⊙ y_{T−1}`, with `y_{T−1}` the top layer's output at the
//! last step.
//!
//! The gradient at distance `d` is that of `L` with respect to the state *handed from step
//! `T−1−d` to step `T−d`*: the state of every layer (and, for the LSTM, the cell state `c`) is
//! replaced by a free variable, steps `T−d..T` are run from it, and `L` is read at the end.
//! Equivalently, it is the running `dh` (and `dc`) that backpropagation through time carries
//! from step `T−d` into step `T−1−d`, before the output gradient of step `T−1−d` is added. So:
//!
//! - `d = 0`: no step runs after the state, the loss reads the top layer's `h` directly, and the
//!   gradient is `d_last` for the top layer and zero for every other layer (and for `c`).
//! - `d ≥ 1`: computed exactly with the engine's own backward (below).
//!
//! For a one-layer stack this is the total derivative `∂L/∂h_{T−1−d}`. For a deeper stack, a
//! lower layer's `h_t` also feeds the layer above at step `t`; that path is not part of the
//! carried gradient, which is the quantity whose decay with `d` the lab studies.
//!
//! # How it is computed
//!
//! One inference pass over the sequence collects the states at every wanted distance; then,
//! for each distance `d ≥ 1`, a training forward over the last `d` steps starts from the state
//! at `d` and [`Rnn::backward`] with the upstream gradient only at its last step returns the
//! gradient of that initial state. The cost is `T + Σ d` steps forward and `Σ d` backward. Dropout
//! is switched off (the diagnostics describe the model at evaluation time).
//!
//! Bidirectional stacks are rejected: the reverse direction's last output is its first step, so
//! "distance back from the last step" does not describe it.

use crate::config::{CellKind, RnnConfig};
use crate::error::{Error, Result};
use crate::kernels::activation::{sigmoid, tanh};
use crate::params::{LayerParams, RnnParams};
use crate::recurrent::{Rnn, RnnState, Upstream};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A gate value above this counts as saturated high (`frac_high`).
pub const SATURATED_HIGH: f32 = 0.95;
/// A gate value below this counts as saturated low (`frac_low`).
pub const SATURATED_LOW: f32 = 0.05;

/// The gradient of the last-step loss with respect to the state at one distance (see the
/// [module docs](self) for what the state and the distance are).
#[derive(Clone, Debug, PartialEq)]
pub struct StateGrad {
    /// Steps back from the last one: this is the gradient of `h_{T−1−distance}`.
    pub distance: usize,
    /// `[L, B, P]` gradient of every layer's `h`.
    pub h: Array3<f32>,
    /// `[L, B, H]` gradient of every layer's `c` (LSTM only).
    pub c: Option<Array3<f32>>,
}

/// Norms of the state gradient against the distance back in time.
///
/// Every norm is the **mean over the batch of the per-example Euclidean norm**: the examples of
/// a batch are independent, so example `b`'s gradient is that of its own loss
/// `Σ_k d_last[b, k] y_{T−1}[b, k]`, and averaging its norm gives a number that does not grow
/// with the batch size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientProfile {
    /// The distances asked for, in the order asked.
    pub distances: Vec<usize>,
    /// Norm of `∂L/∂h` over all layers' `h` stacked, one per distance.
    pub norm: Vec<f64>,
    /// `per_layer[layer][i]`: norm of layer `layer`'s part of `∂L/∂h` at `distances[i]`.
    pub per_layer: Vec<Vec<f64>>,
    /// Norm of `∂L/∂c` over all layers (LSTM only), one per distance.
    pub cell_norm: Option<Vec<f64>>,
}

impl GradientProfile {
    /// The profile of state gradients of a stack with `num_layers` layers.
    ///
    /// ```
    /// use ndarray::Array3;
    /// use rnnkit::diagnostics::{GradientProfile, StateGrad};
    /// let mut h = Array3::<f32>::zeros((1, 2, 2)); // [L, B, P]
    /// h[[0, 0, 0]] = 3.0;
    /// h[[0, 0, 1]] = 4.0; // example 0 has norm 5, example 1 norm 0
    /// let g = StateGrad { distance: 1, h, c: None };
    /// let p = GradientProfile::from_state_grads(&[g], 1);
    /// assert_eq!(p.norm, vec![2.5]);
    /// assert_eq!(p.per_layer, vec![vec![2.5]]);
    /// ```
    pub fn from_state_grads(grads: &[StateGrad], num_layers: usize) -> Self {
        let cell = grads.first().is_some_and(|g| g.c.is_some());
        GradientProfile {
            distances: grads.iter().map(|g| g.distance).collect(),
            norm: grads
                .iter()
                .map(|g| mean_example_norm(&g.h, None))
                .collect(),
            per_layer: (0..num_layers)
                .map(|l| {
                    grads
                        .iter()
                        .map(|g| mean_example_norm(&g.h, Some(l)))
                        .collect()
                })
                .collect(),
            cell_norm: cell.then(|| {
                grads
                    .iter()
                    .map(|g| g.c.as_ref().map_or(0.0, |c| mean_example_norm(c, None)))
                    .collect()
            }),
        }
    }

    /// The per-step growth rate of the gradient: `exp(slope)` of a least-squares line through
    /// `(d, ln norm(d))` over the distances whose norm is finite and positive. Below 1 the
    /// gradient vanishes with distance, above 1 it explodes. `None` with fewer than two distinct
    /// such distances.
    ///
    /// ```
    /// use rnnkit::diagnostics::GradientProfile;
    /// let p = GradientProfile {
    ///     distances: vec![0, 1, 2, 3],
    ///     norm: vec![1.0, 0.5, 0.25, 0.0], // the zero is left out of the fit
    ///     per_layer: vec![],
    ///     cell_norm: None,
    /// };
    /// assert!((p.decay_rate().unwrap() - 0.5).abs() < 1e-12);
    /// ```
    pub fn decay_rate(&self) -> Option<f64> {
        log_linear_rate(&self.distances, &self.norm)
    }

    /// [`GradientProfile::decay_rate`] of the cell-state gradient (LSTM only).
    pub fn cell_decay_rate(&self) -> Option<f64> {
        log_linear_rate(&self.distances, self.cell_norm.as_ref()?)
    }

    /// The profile as pretty-printed JSON (non-finite norms become `null`).
    ///
    /// ```
    /// use rnnkit::diagnostics::GradientProfile;
    /// let p = GradientProfile { distances: vec![0], norm: vec![1.0], per_layer: vec![vec![1.0]], cell_norm: None };
    /// assert!(p.to_json().contains("\"distances\""));
    /// ```
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a struct of numbers serializes")
    }
}

/// `exp` of the least-squares slope of `ln y` against `x`, over finite positive `y`.
fn log_linear_rate(x: &[usize], y: &[f64]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|&(_, &v)| v.is_finite() && v > 0.0)
        .map(|(&d, &v)| (d as f64, v.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some((sxy / sxx).exp())
}

/// Mean over the batch (axis 1 of `[L, B, W]`) of the per-example norm over all layers, or over
/// layer `layer` only.
fn mean_example_norm(g: &Array3<f32>, layer: Option<usize>) -> f64 {
    let (layers, batch, _) = g.dim();
    if batch == 0 {
        return 0.0;
    }
    let range = layer.map_or(0..layers, |l| l..l + 1);
    let total: f64 = (0..batch)
        .map(|b| {
            range
                .clone()
                .flat_map(|l| g.slice(s![l, b, ..]).to_vec())
                .map(|v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum();
    total / batch as f64
}

pub(crate) fn check_unidirectional(cfg: &RnnConfig, what: &str) -> Result<()> {
    if cfg.bidirectional {
        return Err(Error::Config(format!(
            "{what} needs a unidirectional stack (bidirectional = false): the reverse direction \
             reads the sequence from its end, so distance back from the last step does not \
             describe it"
        )));
    }
    Ok(())
}

pub(crate) fn check_inputs(cfg: &RnnConfig, inputs: ArrayView3<f32>) -> Result<()> {
    let (steps, batch, feat) = inputs.dim();
    if steps == 0 || batch == 0 {
        return Err(Error::Shape(format!(
            "inputs [{steps}, {batch}, {feat}] are empty: give at least one step and one sequence"
        )));
    }
    if feat != cfg.input_size {
        return Err(Error::Shape(format!(
            "inputs have {feat} features per step, the stack expects input_size = {}",
            cfg.input_size
        )));
    }
    Ok(())
}

/// The stack with dropout off (a clone only when it had dropout).
pub(crate) fn without_dropout(rnn: &Rnn) -> Result<Cow<'_, Rnn>> {
    if rnn.config().dropout == 0.0 {
        return Ok(Cow::Borrowed(rnn));
    }
    let mut r = rnn.clone();
    r.set_dropout(0.0)?;
    Ok(Cow::Owned(r))
}

/// The gradient of `L = Σ d_last ⊙ y_{T−1}` with respect to the state at each distance in
/// `distances` (each in `0..=T`; see the [module docs](self) for the definitions), in the order
/// given. `inputs` is `[T, B, I]` (all sequences run all `T` steps), `d_last` is `[B, P]`.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use rnnkit::diagnostics::state_gradients;
/// use rnnkit::{CellKind, Init, Rnn, RnnConfig};
///
/// let rnn = Rnn::new(RnnConfig::new(CellKind::Lstm, 2, 4), &Init::default(), 1).unwrap();
/// let x = Array3::<f32>::ones((6, 3, 2)); // [T, B, I]
/// let d_last = Array2::<f32>::ones((3, 4)); // [B, P]
/// let g = state_gradients(&rnn, x.view(), d_last.view(), &[0, 2, 6]).unwrap();
/// assert_eq!(g[0].h.index_axis(ndarray::Axis(0), 0), d_last); // d = 0: the loss reads h itself
/// assert_eq!(g[2].h.shape(), &[1, 3, 4]); // d = 6 = T: the initial state
/// assert!(g[1].c.is_some());
/// ```
///
/// # Errors
/// [`Error::Config`] for a bidirectional stack or a distance past `T`; [`Error::Shape`] when
/// `inputs` or `d_last` do not fit the stack.
pub fn state_gradients(
    rnn: &Rnn,
    inputs: ArrayView3<f32>,
    d_last: ArrayView2<f32>,
    distances: &[usize],
) -> Result<Vec<StateGrad>> {
    let cfg = rnn.config();
    check_unidirectional(cfg, "gradient_through_time")?;
    check_inputs(cfg, inputs)?;
    let (steps, batch, _) = inputs.dim();
    let (layers, p, hid) = (cfg.num_layers, cfg.h_out(), cfg.hidden_size);
    if d_last.dim() != (batch, p) {
        return Err(Error::Shape(format!(
            "d_last is {:?}, expected [{batch}, {p}] (batch × the top layer's output size)",
            d_last.shape()
        )));
    }
    if let Some(&d) = distances.iter().find(|&&d| d > steps) {
        return Err(Error::Config(format!(
            "distance {d} reaches before the initial state: with {steps} steps, distances must \
             be in 0..={steps} ({steps} is the initial state)"
        )));
    }
    let rnn = without_dropout(rnn)?;
    let lstm = cfg.cell.has_cell_state();

    // The state after step t, for every t = T−1−d that starts a segment; one pass over the
    // sequence, resumed from the previous wanted state.
    let mut wanted: Vec<usize> = distances
        .iter()
        .filter(|&&d| d >= 1 && d < steps)
        .map(|&d| steps - 1 - d)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut states: BTreeMap<usize, RnnState> = BTreeMap::new();
    let mut state = RnnState::zeros(cfg, batch);
    let mut next = 0; // first step not yet read
    for &t in &wanted {
        let out = rnn.forward(inputs.slice(s![next..=t, .., ..]), Some(&state), None)?;
        state = out.state;
        next = t + 1;
        states.insert(t, state.clone());
    }

    // Dropout is off, so the generator is never drawn from; the backward's parameter gradients
    // are a by-product nobody reads.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut param_grads = RnnParams::zeros(cfg);
    distances
        .iter()
        .map(|&d| {
            if d == 0 {
                let mut h = Array3::zeros((layers, batch, p));
                h.index_axis_mut(Axis(0), layers - 1).assign(&d_last);
                let c = lstm.then(|| Array3::zeros((layers, batch, hid)));
                return Ok(StateGrad { distance: 0, h, c });
            }
            // Steps T−d..T run from the state after step T−1−d (the initial state when d = T).
            let start = steps - d;
            let state0 = if d == steps {
                None
            } else {
                Some(&states[&(start - 1)])
            };
            let seg = inputs.slice(s![start.., .., ..]);
            let (out, cache) = rnn.forward_train(seg, state0, None, &mut rng)?;
            let mut dy = Array3::zeros(out.output.dim()); // [d, B, P]
            dy.index_axis_mut(Axis(0), d - 1).assign(&d_last);
            let g = rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut param_grads)?;
            Ok(StateGrad {
                distance: d,
                h: g.h0,
                c: g.c0,
            })
        })
        .collect()
}

/// The [`GradientProfile`] of [`state_gradients`]: how `‖∂L/∂h_{T−1−d}‖` falls off with `d`
/// for the last-step loss `L = Σ d_last ⊙ y_{T−1}`.
///
/// ```
/// use ndarray::{Array2, Array3};
/// use rnnkit::diagnostics::gradient_through_time;
/// use rnnkit::{CellKind, Init, Rnn, RnnConfig, WeightInit};
///
/// // Small recurrent weights: a contraction, so the gradient must vanish.
/// let init = Init { recurrent: WeightInit::Uniform { a: 0.1 }, ..Init::default() };
/// let rnn = Rnn::new(RnnConfig::new(CellKind::RnnTanh, 2, 8), &init, 3).unwrap();
/// let x = Array3::<f32>::from_elem((30, 4, 2), 0.5); // [T, B, I]
/// let d_last = Array2::<f32>::ones((4, 8)); // [B, P]
/// let p = gradient_through_time(&rnn, x.view(), d_last.view(), &[0, 5, 10, 20]).unwrap();
/// assert!(p.decay_rate().unwrap() < 1.0);
/// assert!(p.norm[3] < 0.1 * p.norm[0]);
/// assert!(p.cell_norm.is_none());
/// ```
///
/// # Errors
/// As [`state_gradients`].
pub fn gradient_through_time(
    rnn: &Rnn,
    inputs: ArrayView3<f32>,
    d_last: ArrayView2<f32>,
    distances: &[usize],
) -> Result<GradientProfile> {
    let grads = state_gradients(rnn, inputs, d_last, distances)?;
    let mut profile = GradientProfile::from_state_grads(&grads, rnn.config().num_layers);
    if profile.cell_norm.is_none() && rnn.config().cell.has_cell_state() {
        profile.cell_norm = Some(Vec::new()); // no distances asked: keep "this is an LSTM"
    }
    Ok(profile)
}

/// Activation statistics of one gate over all steps, batch rows and units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateStat {
    /// `input`, `forget`, `output` (LSTM) or `reset`, `update` (GRU).
    pub gate: String,
    /// Mean activation, in `[0, 1]`.
    pub mean: f64,
    /// Fraction of activations above [`SATURATED_HIGH`].
    pub frac_high: f64,
    /// Fraction of activations below [`SATURATED_LOW`].
    pub frac_low: f64,
}

/// The gate statistics of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateStats {
    /// The layer, from 0 at the input.
    pub layer: usize,
    /// One entry per sigmoid gate, in PyTorch's gate order.
    pub gates: Vec<GateStat>,
}

impl GateStats {
    /// The statistics of the gate named `name` (`"forget"`, `"update"`, ...).
    pub fn gate(&self, name: &str) -> Option<&GateStat> {
        self.gates.iter().find(|g| g.gate == name)
    }
}

/// Running sums of one gate.
#[derive(Clone, Copy, Default)]
struct GateAcc {
    sum: f64,
    high: u64,
    low: u64,
    n: u64,
}

impl GateAcc {
    fn add(&mut self, v: f32) {
        self.sum += f64::from(v);
        self.high += u64::from(v > SATURATED_HIGH);
        self.low += u64::from(v < SATURATED_LOW);
        self.n += 1;
    }

    fn finish(&self, gate: &str) -> GateStat {
        let n = self.n.max(1) as f64;
        GateStat {
            gate: gate.to_string(),
            mean: self.sum / n,
            frac_high: self.high as f64 / n,
            frac_low: self.low as f64 / n,
        }
    }
}

/// The names of the sigmoid gates a cell reports.
fn gate_names(cell: CellKind) -> &'static [&'static str] {
    match cell {
        CellKind::Lstm => &["input", "forget", "output"],
        CellKind::Gru => &["reset", "update"],
        CellKind::RnnTanh | CellKind::RnnRelu => &[],
    }
}

/// Per layer, the mean and saturation of the sigmoid gates over all steps and batch rows of
/// `inputs` `[T, B, I]` (zero initial state, no dropout): the input, forget and output gates of
/// an LSTM, the reset and update gates of a GRU. An Elman RNN has no gates: the result is empty.
/// The gates are recomputed here from the parameters with the cells' equations.
///
/// ```
/// use ndarray::Array3;
/// use rnnkit::diagnostics::gate_stats;
/// use rnnkit::{CellKind, Init, Rnn, RnnConfig};
///
/// let rnn = Rnn::new(RnnConfig::new(CellKind::Lstm, 2, 4).num_layers(2), &Init::default(), 1)
///     .unwrap();
/// let stats = gate_stats(&rnn, Array3::<f32>::ones((5, 3, 2)).view()).unwrap();
/// assert_eq!(stats.len(), 2);
/// let f = stats[0].gate("forget").unwrap();
/// assert!(f.mean > 0.0 && f.mean < 1.0 && f.frac_high + f.frac_low <= 1.0);
/// ```
///
/// # Errors
/// [`Error::Config`] for a bidirectional stack; [`Error::Shape`] when `inputs` do not fit.
pub fn gate_stats(rnn: &Rnn, inputs: ArrayView3<f32>) -> Result<Vec<GateStats>> {
    let cfg = rnn.config();
    check_unidirectional(cfg, "gate_stats")?;
    check_inputs(cfg, inputs)?;
    rnn.params().check(cfg)?;
    let names = gate_names(cfg.cell);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut acc = vec![vec![GateAcc::default(); names.len()]; cfg.num_layers];
    trace(rnn, inputs, &mut acc);
    Ok(acc
        .iter()
        .enumerate()
        .map(|(layer, a)| GateStats {
            layer,
            gates: a.iter().zip(names).map(|(a, n)| a.finish(n)).collect(),
        })
        .collect())
}

/// Runs the stack step by step with the cells' equations, adding every sigmoid gate activation
/// into `acc[layer]` (in [`gate_names`] order), and returns the top layer's output `[T, B, P]`.
/// Shapes are checked by the caller.
fn trace(rnn: &Rnn, inputs: ArrayView3<f32>, acc: &mut [Vec<GateAcc>]) -> Array3<f32> {
    let cfg = rnn.config();
    let (steps, batch, _) = inputs.dim();
    let mut x = inputs.to_owned(); // [T, B, I_k] the layer's input
    for (layer, lp) in rnn.params().layers.iter().enumerate() {
        x = trace_layer(cfg.cell, lp, x.view(), &mut acc[layer]);
    }
    debug_assert_eq!(x.dim(), (steps, batch, cfg.h_out()));
    x
}

/// One layer of [`trace`]: returns its output `[T, B, P]`.
fn trace_layer(
    cell: CellKind,
    lp: &LayerParams,
    x: ArrayView3<f32>,
    acc: &mut [GateAcc],
) -> Array3<f32> {
    let (steps, batch, feat) = x.dim();
    let (hid, p) = (
        lp.weight_hh.nrows() / cell.num_gates(),
        lp.weight_hh.ncols(),
    );
    let x2 = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((steps * batch, feat))
        .expect("[T·B, I]");
    let mut gx = x2.dot(&lp.weight_ih.t()); // [T·B, G·H]
    if let Some(b) = &lp.bias_ih {
        gx += b;
    }
    let mut h = Array2::<f32>::zeros((batch, p)); // [B, P]
    let mut c = Array2::<f32>::zeros((batch, hid)); // [B, H] (LSTM)
    let mut out = Array3::<f32>::zeros((steps, batch, p));
    let mut m = Array2::<f32>::zeros((batch, hid)); // [B, H] o ⊙ tanh(c) or the new h
    for t in 0..steps {
        let mut gh = h.dot(&lp.weight_hh.t()); // [B, G·H]
        if let Some(b) = &lp.bias_hh {
            gh += b;
        }
        let gxt = gx.slice(s![t * batch..(t + 1) * batch, ..]);
        for b in 0..batch {
            for j in 0..hid {
                let a = |k: usize| gxt[[b, k * hid + j]] + gh[[b, k * hid + j]];
                match cell {
                    CellKind::Lstm => {
                        let (i, f, g, o) =
                            (sigmoid(a(0)), sigmoid(a(1)), tanh(a(2)), sigmoid(a(3)));
                        let cn = f * c[[b, j]] + i * g;
                        c[[b, j]] = cn;
                        m[[b, j]] = o * tanh(cn);
                        acc[0].add(i);
                        acc[1].add(f);
                        acc[2].add(o);
                    }
                    CellKind::Gru => {
                        let r = sigmoid(a(0));
                        let z = sigmoid(a(1));
                        // r multiplies the whole recurrent part W_hn h + b_hn (PyTorch/cuDNN).
                        let n = tanh(gxt[[b, 2 * hid + j]] + r * gh[[b, 2 * hid + j]]);
                        m[[b, j]] = n + z * (h[[b, j]] - n);
                        acc[0].add(r);
                        acc[1].add(z);
                    }
                    CellKind::RnnTanh => m[[b, j]] = tanh(a(0)),
                    CellKind::RnnRelu => m[[b, j]] = a(0).max(0.0),
                }
            }
        }
        h = match &lp.weight_hr {
            Some(w) => m.dot(&w.t()),
            None => m.clone(),
        };
        out.index_axis_mut(Axis(0), t).assign(&h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;

    #[test]
    fn trace_matches_the_engine_forward() {
        let x = Array3::from_shape_fn((7, 3, 2), |(t, b, f)| {
            ((t * 7 + b * 3 + f) as f32 * 0.37).sin()
        });
        let cases = [
            RnnConfig::new(CellKind::Lstm, 2, 5).num_layers(2),
            RnnConfig::new(CellKind::Lstm, 2, 5).proj_size(3),
            RnnConfig::new(CellKind::Gru, 2, 5).num_layers(2),
            RnnConfig::new(CellKind::RnnTanh, 2, 5).num_layers(2),
            RnnConfig::new(CellKind::RnnRelu, 2, 5),
        ];
        for cfg in cases {
            let rnn = Rnn::new(cfg.clone(), &Init::default(), 5).unwrap();
            let want = rnn.forward(x.view(), None, None).unwrap().output;
            let mut acc = vec![vec![GateAcc::default(); 3]; cfg.num_layers];
            let got = trace(&rnn, x.view(), &mut acc);
            let worst = (&got - &want)
                .iter()
                .map(|v| f64::from(v.abs()))
                .fold(0.0, crate::verify::worse);
            assert!(worst < 1e-5, "{}: worst |Δh| {worst}", cfg.cell);
        }
    }

    #[test]
    fn decay_rate_needs_two_distinct_points() {
        let p = |d: Vec<usize>, n: Vec<f64>| GradientProfile {
            distances: d,
            norm: n,
            per_layer: vec![],
            cell_norm: None,
        };
        assert_eq!(p(vec![0, 1], vec![1.0, 0.0]).decay_rate(), None);
        assert_eq!(p(vec![2, 2], vec![1.0, 0.5]).decay_rate(), None);
        assert_eq!(p(vec![0, 1], vec![1.0, f64::NAN]).decay_rate(), None);
        let r = p(vec![0, 1, 2], vec![1.0, 2.0, 4.0]).decay_rate().unwrap();
        assert!((r - 2.0).abs() < 1e-12);
    }
}

/// One diagnosis of a model during training: the gradient through time and the gate
/// statistics, measured on a fixed probe batch. The trainer writes one per
/// `diagnostics_every` steps to `metrics/diagnostics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// ‖∂L/∂h_(T−1−d)‖ against d.
    pub profile: GradientProfile,
    /// Gate statistics per layer (empty for an Elman RNN).
    pub gates: Vec<GateStats>,
}

/// Distances at which to measure a sequence of `steps` steps: every step up to 5, then about
/// 25 evenly spaced ones, and the farthest, `steps − 1`.
///
/// ```
/// let d = rnnkit::diagnostics::default_distances(100);
/// assert_eq!(&d[..6], &[0, 1, 2, 3, 4, 8]);
/// assert_eq!(*d.last().unwrap(), 99);
/// ```
pub fn default_distances(steps: usize) -> Vec<usize> {
    if steps == 0 {
        return Vec::new();
    }
    let stride = (steps / 25).max(1);
    let mut d: Vec<usize> = (0..steps.min(5))
        .chain((0..steps).step_by(stride))
        .collect();
    d.push(steps - 1);
    d.sort_unstable();
    d.dedup();
    d
}

/// Appends one diagnosis to `run_dir/metrics/diagnostics.jsonl`.
pub(crate) fn write_diagnosis(
    run_dir: &std::path::Path,
    step: u64,
    epoch: usize,
    d: &Diagnosis,
) -> Result<()> {
    use std::io::Write;
    let dir = run_dir.join("metrics");
    let path = dir.join("diagnostics.jsonl");
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let line = serde_json::json!({
        "step": step, "epoch": epoch,
        "decay_rate": d.profile.decay_rate(),
        "profile": &d.profile, "gates": &d.gates,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    writeln!(f, "{line}").map_err(io)
}

/// Drops the diagnoses of steps after `step` (written by a run killed after its last
/// checkpoint), so a resumed run logs each step once.
pub(crate) fn trim_diagnoses(run_dir: &std::path::Path, step: u64) -> Result<()> {
    let path = run_dir.join("metrics/diagnostics.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, kept).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}
