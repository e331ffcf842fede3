//! The recurrent stack: layers × directions, variable lengths, inter-layer dropout, initial
//! states; forward (training and inference), backward, and the streaming `step`.
//!
//! Layout is PyTorch's (`batch_first = False`): input `[T, B, I]`, output `[T, B, D·P]`, states
//! `[L·D, B, P]` (`c`: `[L·D, B, H]`), where `P` is `proj_size` or `hidden_size`.
//! Variable-length batches follow `pack_padded_sequence` semantics: each sequence runs for its
//! own length, its padded outputs are zero, its final state is the one at its last step, and
//! the reverse direction starts there.

mod direction;
mod int8;
mod lengths;
mod workspace;

use crate::config::RnnConfig;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::kernels::shared::SharedRows;
use crate::params::RnnParams;
use crate::precision::Precision;
use direction::{DirCache, DirGradBufs, DirWeights, Pack, Rows, SharedCache};
use lengths::BatchOrder;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use rand::{Rng, RngCore};
use std::sync::Arc;
pub(crate) use workspace::Workspace;

/// A recurrent stack (`torch.nn.LSTM` / `GRU` / `RNN`) with its parameters.
///
/// ```
/// use ndarray::Array3;
/// use rnnkit::{CellKind, Init, Rnn, RnnConfig, RnnParams, Upstream};
///
/// let cfg = RnnConfig::new(CellKind::Lstm, 3, 8).num_layers(2);
/// let rnn = Rnn::new(cfg, &Init::default(), 7).unwrap();
/// let x = Array3::<f32>::ones((5, 2, 3)); // [T, B, I]
///
/// // Inference: nothing kept per step.
/// let out = rnn.forward(x.view(), None, None).unwrap();
/// assert_eq!(out.output.shape(), &[5, 2, 8]);
/// assert_eq!(out.state.h.shape(), &[2, 2, 8]);
///
/// // Training: keep a cache, then backpropagate upstream gradients into gradient buffers.
/// let mut rng = rand::rng();
/// let (out, cache) = rnn.forward_train(x.view(), None, Some(&[5, 3]), &mut rng).unwrap();
/// let dy = Array3::<f32>::ones(out.output.dim());
/// let mut grads = RnnParams::zeros(rnn.config());
/// let dx = rnn.backward(&cache, &Upstream::output_only(dy.view()), &mut grads).unwrap();
/// assert_eq!(dx.input.shape(), &[5, 2, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct Rnn {
    config: RnnConfig,
    params: RnnParams,
    /// Big per-pass buffers recycled between calls (shared with the caches and with clones).
    workspace: Arc<Workspace>,
    /// The matrix products' arithmetic, already what this CPU runs.
    precision: Precision,
    /// int8 weights for inference, after [`Rnn::quantize`]; dropped when the weights change.
    int8: Option<Arc<int8::Int8Stack>>,
}

/// Hidden (and cell) state of every layer and direction.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnState {
    /// `[L·D, B, P]`.
    pub h: Array3<f32>,
    /// `[L·D, B, H]`, LSTM only.
    pub c: Option<Array3<f32>>,
}

impl RnnState {
    /// The all-zero state for a batch of `batch` sequences.
    pub fn zeros(config: &RnnConfig, batch: usize) -> Self {
        let ld = config.num_layers * config.num_directions();
        RnnState {
            h: Array3::zeros((ld, batch, config.h_out())),
            c: config
                .cell
                .has_cell_state()
                .then(|| Array3::zeros((ld, batch, config.hidden_size))),
        }
    }
}

/// What a forward pass returns.
#[derive(Clone, Debug)]
pub struct RnnOutput {
    /// `[T, B, D·P]` top layer outputs; zero at padded steps.
    pub output: Array3<f32>,
    /// Final states (`h_n`, `c_n`).
    pub state: RnnState,
}

/// Upstream gradients for a backward pass: of the loss with respect to the outputs and,
/// optionally, to the final states.
#[derive(Clone, Debug)]
pub struct Upstream<'a> {
    /// `[T, B, D·P]`; values at padded steps are ignored.
    pub grad_output: ArrayView3<'a, f32>,
    /// `[L·D, B, P]`, zero when absent.
    pub grad_h_n: Option<ArrayView3<'a, f32>>,
    /// `[L·D, B, H]` (LSTM), zero when absent.
    pub grad_c_n: Option<ArrayView3<'a, f32>>,
}

impl<'a> Upstream<'a> {
    /// Only the outputs carry gradient.
    pub fn output_only(grad_output: ArrayView3<'a, f32>) -> Self {
        Upstream {
            grad_output,
            grad_h_n: None,
            grad_c_n: None,
        }
    }
}

/// Gradients with respect to a forward pass's inputs.
#[derive(Clone, Debug)]
pub struct InputGrads {
    /// `[T, B, I]`; zero at padded steps.
    pub input: Array3<f32>,
    /// `[L·D, B, P]`, of the initial `h` (zeros when none was given count as given).
    pub h0: Array3<f32>,
    /// `[L·D, B, H]`, LSTM only.
    pub c0: Option<Array3<f32>>,
}

/// What a training forward pass keeps for backward. Opaque; one per forward call.
pub struct RnnCache {
    /// The config of the stack that made it (backward checks it is given to the same shape).
    config: RnnConfig,
    order: BatchOrder,
    steps: usize,
    layers: Vec<LayerCache>,
    /// Where the buffers go back when the cache is dropped.
    workspace: Arc<Workspace>,
}

impl Drop for RnnCache {
    fn drop(&mut self) {
        for layer in self.layers.drain(..) {
            self.workspace
                .recycle_all([layer.input, layer.mask.unwrap_or_default()]);
            for dir in layer.dirs {
                self.workspace.recycle_all(dir.into_buffers());
            }
        }
    }
}

struct LayerCache {
    /// `[T·B, I_k]` the layer's input as used (after dropout), batch in sorted order.
    input: Vec<f32>,
    /// `[T·B, I_k]` dropout mask applied to that input (`0` or `1/(1-p)`), layers ≥ 1 only.
    mask: Option<Vec<f32>>,
    dirs: Vec<DirCache>,
}

impl crate::module::Module for Rnn {
    fn visit_params<'a>(
        &'a self,
        prefix: &str,
        f: &mut dyn FnMut(&str, crate::module::TensorRef<'a>),
    ) {
        self.params.visit(&self.config, prefix, f);
    }

    fn visit_params_mut<'a>(
        &'a mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, crate::module::TensorMut<'a>),
    ) {
        // The weights may change (a load, an optimizer step): drop a stale int8 copy.
        self.int8 = None;
        self.params.visit_mut(&self.config, prefix, f);
    }
}

impl Rnn {
    /// The pool of big buffers this stack's passes use; a language model takes its logits
    /// buffer from it too, so the pages stay mapped between steps.
    pub(crate) fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// A stack with freshly initialized parameters (`seed` makes it reproducible). Example on
    /// [`Rnn`].
    pub fn new(config: RnnConfig, init: &Init, seed: u64) -> Result<Self> {
        config.validate()?;
        let params = init.params(&config, seed)?;
        Ok(Rnn {
            config,
            params,
            workspace: Arc::default(),
            precision: Precision::F32,
            int8: None,
        })
    }

    /// A stack over given parameters; shapes are checked against `config`.
    pub fn from_params(config: RnnConfig, params: RnnParams) -> Result<Self> {
        config.validate()?;
        params.check(&config)?;
        Ok(Rnn {
            config,
            params,
            workspace: Arc::default(),
            precision: Precision::F32,
            int8: None,
        })
    }

    /// The stack's configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The parameters (PyTorch-named through [`crate::module::Module`]).
    pub fn params(&self) -> &RnnParams {
        &self.params
    }

    /// Mutable parameters (for optimizers). Replace arrays only with same-shaped,
    /// standard-layout ones; forward checks and reports otherwise.
    pub fn params_mut(&mut self) -> &mut RnnParams {
        // The weights may change: a quantized copy would go stale.
        self.int8 = None;
        &mut self.params
    }

    /// Quantizes the weights to int8 for inference (dynamic quantization, as PyTorch's
    /// `quantize_dynamic`): each of `W_ih`, `W_hh`, `W_hr` per output row, the activations on
    /// the fly at each step; biases, gates and the cell state stay f32. From then on
    /// [`Rnn::forward`] and [`Rnn::step`] run on int8 kernels (AVX-512 VNNI, else AVX2, picked
    /// at run time), and training refuses to run. Changing the weights
    /// ([`Rnn::params_mut`]) drops the int8 copy. Returns the kernel's name.
    ///
    /// ```
    /// use ndarray::Array3;
    /// use rnnkit::{CellKind, Init, Rnn, RnnConfig};
    ///
    /// let mut rnn = Rnn::new(RnnConfig::new(CellKind::Lstm, 8, 16), &Init::default(), 0).unwrap();
    /// let x = Array3::from_shape_fn((5, 2, 8), |(t, b, i)| ((t + b + i) as f32).sin());
    /// let f32_out = rnn.forward(x.view(), None, None).unwrap().output;
    /// rnn.quantize();
    /// assert!(rnn.is_quantized());
    /// let int8_out = rnn.forward(x.view(), None, None).unwrap().output;
    /// let worst = (&int8_out - &f32_out).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
    /// assert!(worst < 0.02, "{worst}");
    /// ```
    pub fn quantize(&mut self) -> &'static str {
        let stack = int8::Int8Stack::new(&self.config, &self.params);
        let name = stack.kernel().name();
        self.int8 = Some(Arc::new(stack));
        name
    }

    /// Whether [`Rnn::quantize`] made its inference int8.
    pub fn is_quantized(&self) -> bool {
        self.int8.is_some()
    }

    /// Sets the arithmetic of the matrix products of forward and backward and returns what this
    /// CPU will run ([`Precision::effective`]: bf16 needs AVX512-BF16, else f32). A single
    /// streaming [`Rnn::step`] stays f32.
    ///
    /// ```
    /// use rnnkit::{CellKind, Init, Precision, Rnn, RnnConfig};
    /// let mut rnn = Rnn::new(RnnConfig::new(CellKind::Lstm, 4, 8), &Init::default(), 1).unwrap();
    /// let runs = rnn.set_precision(Precision::Bf16);
    /// assert_eq!(runs, Precision::Bf16.effective());
    /// assert_eq!(rnn.precision(), runs);
    /// ```
    pub fn set_precision(&mut self, precision: Precision) -> Precision {
        self.precision = precision.effective();
        self.precision
    }

    /// Like [`Rnn::set_precision`] but runs `precision` even where the CPU lacks its fast kernels
    /// (in plain loops, slowly): for tests and for checking the numerics on any machine.
    pub fn force_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// The arithmetic the matrix products run in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets the inter-layer dropout probability (e.g. 0 to evaluate without it); it must be in
    /// `[0, 1)`.
    pub fn set_dropout(&mut self, p: f32) -> Result<()> {
        let config = RnnConfig {
            dropout: p,
            ..self.config.clone()
        };
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Inference forward: nothing is kept per step. `lengths` (each in `1..=T`, any order)
    /// selects packed-sequence semantics; `state0` defaults to zeros. Example on [`Rnn`].
    pub fn forward(
        &self,
        input: ArrayView3<f32>,
        state0: Option<&RnnState>,
        lengths: Option<&[usize]>,
    ) -> Result<RnnOutput> {
        Ok(self.run_forward(input, state0, lengths, None)?.0)
    }

    /// Training forward: applies inter-layer dropout (drawn from `rng`) and keeps what
    /// [`Rnn::backward`] needs. Example on [`Rnn`].
    pub fn forward_train(
        &self,
        input: ArrayView3<f32>,
        state0: Option<&RnnState>,
        lengths: Option<&[usize]>,
        rng: &mut dyn RngCore,
    ) -> Result<(RnnOutput, RnnCache)> {
        let (out, cache) = self.run_forward(input, state0, lengths, Some(rng))?;
        Ok((out, cache.expect("training forward keeps a cache")))
    }

    /// One time step for a batch (streaming, e.g. batch-1 serving): `input` `[B, I]`, the state
    /// is read and replaced in place. Returns `[B, P]`. Unidirectional stacks only.
    ///
    /// ```
    /// use ndarray::Array2;
    /// use rnnkit::{CellKind, Init, Rnn, RnnConfig, RnnState};
    /// let rnn = Rnn::new(RnnConfig::new(CellKind::Gru, 4, 6), &Init::default(), 1).unwrap();
    /// let mut state = RnnState::zeros(rnn.config(), 1);
    /// for _ in 0..3 {
    ///     let y = rnn.step(Array2::ones((1, 4)).view(), &mut state).unwrap();
    ///     assert_eq!(y.shape(), &[1, 6]);
    /// }
    /// ```
    pub fn step(&self, input: ArrayView2<f32>, state: &mut RnnState) -> Result<Array2<f32>> {
        if self.config.bidirectional {
            return Err(Error::Config(
                "step() needs a unidirectional stack: a reverse direction reads the future".into(),
            ));
        }
        let x = input.insert_axis(ndarray::Axis(0));
        let (out, _) = self.run_forward(x, Some(state), None, None)?;
        *state = out.state;
        Ok(out.output.index_axis_move(ndarray::Axis(0), 0))
    }

    fn run_forward(
        &self,
        input: ArrayView3<f32>,
        state0: Option<&RnnState>,
        lengths: Option<&[usize]>,
        mut rng: Option<&mut dyn RngCore>,
    ) -> Result<(RnnOutput, Option<RnnCache>)> {
        if let Some(q) = &self.int8 {
            if rng.is_some() {
                return Err(Error::Config(
                    "this stack is quantized to int8, for inference only: train the f32 model \
                     and quantize it afterwards"
                        .into(),
                ));
            }
            return Ok((q.forward(input, state0, lengths)?, None));
        }
        let cfg = &self.config;
        self.params.check(cfg)?;
        let (steps, batch, _) = input.dim();
        check_input(cfg, input.dim(), state0)?;
        let order = BatchOrder::new(lengths, steps, batch)?;
        let (d, p, hid) = (cfg.num_directions(), cfg.h_out(), cfg.hidden_size);
        let threads = rayon::current_num_threads();
        let training = rng.is_some();
        let ws = &*self.workspace;

        let mut x = order.gather_steps_into(input, ws.take_capacity(input.len())); // [T·B, I] sorted batch
        let mut h_n = vec![vec![0.0f32; batch * p]; cfg.num_layers * d];
        let mut c_n = vec![vec![0.0f32; batch * hid]; cfg.num_layers * d];
        if let Some(s) = state0 {
            for (k, h) in h_n.iter_mut().enumerate() {
                *h = order.gather_rows(s.h.index_axis(ndarray::Axis(0), k));
            }
            if let Some(c0) = &s.c {
                for (k, c) in c_n.iter_mut().enumerate() {
                    *c = order.gather_rows(c0.index_axis(ndarray::Axis(0), k));
                }
            }
        }
        // Packing the recurrent weights pays off over many steps, not for one (streaming).
        let pack = if steps > 1 { Pack::Forward } else { Pack::None };
        let mut layer_caches = Vec::new();
        for layer in 0..cfg.num_layers {
            let mut mask = None;
            if let (Some(rng), true) = (rng.as_deref_mut(), layer > 0 && cfg.dropout > 0.0) {
                let keep = 1.0 / (1.0 - cfg.dropout);
                let mut m = ws.take_capacity(x.len());
                m.extend((0..x.len()).map(|_| {
                    if rng.random::<f32>() < cfg.dropout {
                        0.0
                    } else {
                        keep
                    }
                }));
                x.iter_mut().zip(&m).for_each(|(v, m)| *v *= m);
                mask = Some(m);
            }
            let weights: Vec<DirWeights> = (0..d)
                .map(|dir| {
                    DirWeights::new(
                        cfg,
                        layer,
                        &self.params.layers[layer * d + dir],
                        dir == 1,
                        pack,
                        self.precision,
                    )
                })
                .collect();
            let gx: Vec<Vec<f32>> = weights
                .iter()
                .map(|w| {
                    let buf = ws.take_capacity(steps * batch * w.gates());
                    w.project_inputs(&x, steps * batch, threads, buf)
                })
                .collect();
            let mut ys: Vec<Vec<f32>> = (0..d).map(|_| ws.zeros(steps * batch * p)).collect();
            let mut caches: Vec<DirCache> = if training {
                weights
                    .iter()
                    .map(|w| DirCache::new(w, steps, batch, ws))
                    .collect()
            } else {
                Vec::new()
            };
            {
                let ys_shared: Vec<SharedRows> = ys
                    .iter_mut()
                    .map(|y| SharedRows::new(y, steps, batch, p))
                    .collect();
                let caches_shared: Vec<SharedCache> = caches
                    .iter_mut()
                    .zip(&weights)
                    .map(|(c, w)| SharedCache::new(c, w, steps, batch))
                    .collect();
                let (hs, cs) = (
                    &mut h_n[layer * d..(layer + 1) * d],
                    &mut c_n[layer * d..(layer + 1) * d],
                );
                let chunks = batch_chunks(order.active(), batch, threads, d);
                let mut tasks = Vec::new();
                for (dir, (h, c)) in hs.iter_mut().zip(cs.iter_mut()).enumerate() {
                    let h_parts = split_rows(h, &chunks, p);
                    let c_parts = split_rows(c, &chunks, hid);
                    for ((&(b0, b1), hp), cp) in chunks.iter().zip(h_parts).zip(c_parts) {
                        tasks.push((dir, b0, b1, hp, cp));
                    }
                }
                // Threads left over when there are fewer tasks than threads go to the GEMMs.
                let gemm_threads = (threads / tasks.len()).max(1);
                let run = |(dir, b0, b1, h, c): (usize, usize, usize, &mut [f32], &mut [f32])| {
                    let rows = Rows {
                        b0,
                        b1,
                        batch,
                        active: order.active(),
                    };
                    direction::forward_task(
                        &weights[dir],
                        &gx[dir],
                        rows,
                        h,
                        c,
                        &ys_shared[dir],
                        caches_shared.get(dir),
                        gemm_threads,
                    );
                };
                run_tasks(tasks, run);
            }
            ws.recycle_all(gx);
            if training {
                layer_caches.push(LayerCache {
                    input: std::mem::take(&mut x),
                    mask,
                    dirs: caches,
                });
            } else {
                ws.recycle(std::mem::take(&mut x));
            }
            x = interleave_directions(&mut ys, steps * batch, p);
            ws.recycle_all(ys);
        }

        let out_feat = d * p;
        let output = order.scatter_steps_owned(x, steps, out_feat);
        let ld = cfg.num_layers * d;
        let mut h = Array3::zeros((ld, batch, p));
        for (k, v) in h_n.iter().enumerate() {
            order.scatter_rows(v, h.index_axis_mut(ndarray::Axis(0), k));
        }
        let c = cfg.cell.has_cell_state().then(|| {
            let mut c = Array3::zeros((ld, batch, hid));
            for (k, v) in c_n.iter().enumerate() {
                order.scatter_rows(v, c.index_axis_mut(ndarray::Axis(0), k));
            }
            c
        });
        let cache = training.then_some(RnnCache {
            config: cfg.clone(),
            order,
            steps,
            layers: layer_caches,
            workspace: Arc::clone(&self.workspace),
        });
        Ok((
            RnnOutput {
                output,
                state: RnnState { h, c },
            },
            cache,
        ))
    }

    /// Backward through the whole stack. Adds parameter gradients into `grads` (so chunks of a
    /// truncated-BPTT stream and several losses accumulate) and returns the gradients of the
    /// input and the initial states. Example on [`Rnn`].
    pub fn backward(
        &self,
        cache: &RnnCache,
        upstream: &Upstream,
        grads: &mut RnnParams,
    ) -> Result<InputGrads> {
        let cfg = &self.config;
        if cache.config != *cfg {
            return Err(Error::Config(
                "the cache was made by a stack of another shape; pass the cache of this stack's \
                 own forward_train"
                    .into(),
            ));
        }
        self.params.check(cfg)?;
        grads
            .check(cfg)
            .map_err(|e| Error::Params(format!("gradient buffer: {e}")))?;
        let order = &cache.order;
        let (steps, batch) = (cache.steps, order.batch());
        let (d, p, hid) = (cfg.num_directions(), cfg.h_out(), cfg.hidden_size);
        let want = (steps, batch, d * p);
        if upstream.grad_output.dim() != want {
            return Err(Error::Shape(format!(
                "grad_output is {:?}, the forward output was {want:?}",
                upstream.grad_output.dim()
            )));
        }
        let ld = cfg.num_layers * d;
        let mut dh: Vec<Vec<f32>> = vec![vec![0.0; batch * p]; ld];
        let mut dc: Vec<Vec<f32>> = vec![vec![0.0; batch * hid]; ld];
        if let Some(g) = &upstream.grad_h_n {
            check_dims(g.dim(), (ld, batch, p), "grad_h_n")?;
            for (k, v) in dh.iter_mut().enumerate() {
                *v = order.gather_rows(g.index_axis(ndarray::Axis(0), k));
            }
        }
        if let Some(g) = &upstream.grad_c_n {
            if !cfg.cell.has_cell_state() {
                return Err(Error::Shape(format!(
                    "grad_c_n given for a {} stack",
                    cfg.cell
                )));
            }
            check_dims(g.dim(), (ld, batch, hid), "grad_c_n")?;
            for (k, v) in dc.iter_mut().enumerate() {
                *v = order.gather_rows(g.index_axis(ndarray::Axis(0), k));
            }
        }
        let threads = rayon::current_num_threads();
        let rows = steps * batch;
        let ws = &*self.workspace;
        let mut dy = order.gather_steps_into(
            upstream.grad_output,
            ws.take_capacity(upstream.grad_output.len()),
        ); // [T·B, D·P]
        for layer in (0..cfg.num_layers).rev() {
            let lc = &cache.layers[layer];
            let in_feat = cfg.layer_input_size(layer);
            let weights: Vec<DirWeights> = (0..d)
                .map(|dir| {
                    DirWeights::new(
                        cfg,
                        layer,
                        &self.params.layers[layer * d + dir],
                        dir == 1,
                        Pack::Backward,
                        self.precision,
                    )
                })
                .collect();
            let dys = split_directions(std::mem::take(&mut dy), rows, d, p, ws);
            let mut bufs: Vec<DirGradBufs> = weights
                .iter()
                .map(|w| DirGradBufs::new(w, steps, batch, ws))
                .collect();
            {
                let shared_bufs: Vec<(SharedRows, Option<SharedRows>, Option<SharedRows>)> = bufs
                    .iter_mut()
                    .zip(&weights)
                    .map(|(b, w)| {
                        let gh = w.cell.num_gates() * w.hidden;
                        let dgh = (!b.dgh.is_empty())
                            .then(|| SharedRows::new(&mut b.dgh, steps, batch, gh));
                        let dho = (!b.dh_out.is_empty())
                            .then(|| SharedRows::new(&mut b.dh_out, steps, batch, p));
                        (SharedRows::new(&mut b.dgx, steps, batch, gh), dgh, dho)
                    })
                    .collect();
                let chunks = batch_chunks(order.active(), batch, threads, d);
                let mut tasks = Vec::new();
                let (dhs, dcs) = (
                    &mut dh[layer * d..(layer + 1) * d],
                    &mut dc[layer * d..(layer + 1) * d],
                );
                for (dir, (h, c)) in dhs.iter_mut().zip(dcs.iter_mut()).enumerate() {
                    let h_parts = split_rows(h, &chunks, p);
                    let c_parts = split_rows(c, &chunks, hid);
                    for ((&(b0, b1), hp), cp) in chunks.iter().zip(h_parts).zip(c_parts) {
                        tasks.push((dir, b0, b1, hp, cp));
                    }
                }
                // Threads left over when there are fewer tasks than threads go to the GEMMs.
                let gemm_threads = (threads / tasks.len()).max(1);
                let run = |(dir, b0, b1, h, c): (usize, usize, usize, &mut [f32], &mut [f32])| {
                    let rows = Rows {
                        b0,
                        b1,
                        batch,
                        active: order.active(),
                    };
                    let (dgx, dgh, dho) = &shared_bufs[dir];
                    direction::backward_task(
                        &weights[dir],
                        &lc.dirs[dir],
                        &dys[dir],
                        rows,
                        h,
                        c,
                        dgx,
                        dgh.as_ref(),
                        dho.as_ref(),
                        gemm_threads,
                    );
                };
                run_tasks(tasks, run);
            }
            let mut dx = ws.zeros(rows * in_feat);
            for dir in 0..d {
                direction::weight_grads(
                    &weights[dir],
                    &lc.dirs[dir],
                    &bufs[dir],
                    &lc.input,
                    rows,
                    &mut grads.layers[layer * d + dir],
                    &mut dx,
                    threads,
                );
            }
            if let Some(mask) = &lc.mask {
                dx.iter_mut().zip(mask).for_each(|(g, m)| *g *= m);
            }
            ws.recycle_all(dys);
            for b in bufs {
                ws.recycle_all(b.into_buffers());
            }
            dy = dx;
        }
        let input = order.scatter_steps_owned(dy, steps, cfg.input_size);
        let mut h0 = Array3::zeros((ld, batch, p));
        for (k, v) in dh.iter().enumerate() {
            order.scatter_rows(v, h0.index_axis_mut(ndarray::Axis(0), k));
        }
        let c0 = cfg.cell.has_cell_state().then(|| {
            let mut c0 = Array3::zeros((ld, batch, hid));
            for (k, v) in dc.iter().enumerate() {
                order.scatter_rows(v, c0.index_axis_mut(ndarray::Axis(0), k));
            }
            c0
        });
        Ok(InputGrads { input, h0, c0 })
    }

    /// The inter-layer dropout masks a training forward drew, one `[T, B, D·P]` array per
    /// layer after the first (for tests and diagnostics), in the caller's batch order.
    pub fn dropout_masks(&self, cache: &RnnCache) -> Vec<Array3<f32>> {
        let feat = self.config.output_size();
        cache
            .layers
            .iter()
            .filter_map(|l| l.mask.as_ref())
            .map(|m| cache.order.scatter_steps(m, cache.steps, feat))
            .collect()
    }
}

fn check_dims(got: (usize, usize, usize), want: (usize, usize, usize), what: &str) -> Result<()> {
    if got != want {
        return Err(Error::Shape(format!(
            "{what} is {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

/// Checks an input `[T, B, I]` and its initial state against `cfg`.
fn check_input(
    cfg: &RnnConfig,
    (steps, batch, feat): (usize, usize, usize),
    state0: Option<&RnnState>,
) -> Result<()> {
    if feat != cfg.input_size {
        return Err(Error::Shape(format!(
            "input has {feat} features per step, the stack expects input_size = {}",
            cfg.input_size
        )));
    }
    if steps == 0 || batch == 0 {
        return Err(Error::Shape(format!(
            "input [{steps}, {batch}, {feat}] is empty"
        )));
    }
    if let Some(s) = state0 {
        check_state(cfg, s, batch, "initial state")?;
    }
    Ok(())
}

fn check_state(cfg: &RnnConfig, s: &RnnState, batch: usize, what: &str) -> Result<()> {
    let ld = cfg.num_layers * cfg.num_directions();
    check_dims(s.h.dim(), (ld, batch, cfg.h_out()), &format!("{what} h"))?;
    match (&s.c, cfg.cell.has_cell_state()) {
        (Some(c), true) => check_dims(c.dim(), (ld, batch, cfg.hidden_size), &format!("{what} c")),
        (None, true) => Err(Error::Shape(format!(
            "{what}: an lstm needs c as well as h"
        ))),
        (Some(_), false) => Err(Error::Shape(format!("{what}: a {} has no c", cfg.cell))),
        (None, false) => Ok(()),
    }
}

/// Batch ranges for the time-loop tasks: the directions run side by side, and each direction's
/// batch is split so that all threads have work. Each range keeps at least 4 rows, below which
/// the per-step GEMMs get too thin to pay for a thread. The batch is sorted longest first, so
/// equal row counts would give the first range the most steps: boundaries are placed at equal
/// shares of the total work (the sum of the lengths) instead.
fn batch_chunks(
    active: &[usize],
    batch: usize,
    threads: usize,
    directions: usize,
) -> Vec<(usize, usize)> {
    let parts = (threads / directions).max(1).min(batch.div_ceil(4)).max(1);
    // Row b runs for len(b) = #{t : active[t] > b} steps; work before row b is the prefix sum.
    let mut prefix = vec![0usize; batch + 1];
    for b in 0..batch {
        let len = active.iter().filter(|&&a| a > b).count();
        prefix[b + 1] = prefix[b] + len;
    }
    let total = prefix[batch];
    let mut bounds = vec![0];
    for j in 1..parts {
        let goal = total * j / parts;
        let prev = *bounds.last().expect("starts with 0");
        // First row boundary at or past the goal, leaving at least one row per range.
        let b = (prev + 1..batch)
            .find(|&b| prefix[b] >= goal)
            .unwrap_or(batch - 1);
        bounds.push(b.min(batch - (parts - j)));
    }
    bounds.push(batch);
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Splits a `[B, W]` buffer into the row ranges of `chunks` (which tile `0..B` in order).
fn split_rows<'a>(
    buf: &'a mut [f32],
    chunks: &[(usize, usize)],
    width: usize,
) -> Vec<&'a mut [f32]> {
    let mut rest = buf;
    chunks
        .iter()
        .map(|&(b0, b1)| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut((b1 - b0) * width);
            rest = tail;
            head
        })
        .collect()
}

/// Runs tasks on the current rayon pool (inline when there is only one).
fn run_tasks<T: Send, F: Fn(T) + Sync>(tasks: Vec<T>, run: F) {
    if tasks.len() == 1 {
        tasks.into_iter().for_each(run);
        return;
    }
    rayon::scope(|s| {
        for task in tasks {
            let run = &run;
            s.spawn(move |_| run(task));
        }
    });
}

/// `[T·B, D·P]` from per-direction `[T·B, P]` buffers (forward first, as PyTorch concatenates).
fn interleave_directions(ys: &mut [Vec<f32>], rows: usize, p: usize) -> Vec<f32> {
    if ys.len() == 1 {
        return std::mem::take(&mut ys[0]);
    }
    let d = ys.len();
    let mut out = vec![0.0; rows * d * p];
    for (r, row) in out.chunks_exact_mut(d * p).enumerate() {
        for (dir, y) in ys.iter().enumerate() {
            row[dir * p..(dir + 1) * p].copy_from_slice(&y[r * p..(r + 1) * p]);
        }
    }
    out
}

/// The inverse of [`interleave_directions`] (one direction: `x` itself, no copy).
fn split_directions(x: Vec<f32>, rows: usize, d: usize, p: usize, ws: &Workspace) -> Vec<Vec<f32>> {
    if d == 1 {
        return vec![x];
    }
    let out = (0..d)
        .map(|dir| {
            let mut y = ws.take_capacity(rows * p);
            for row in x.chunks_exact(d * p) {
                y.extend_from_slice(&row[dir * p..(dir + 1) * p]);
            }
            y
        })
        .collect();
    ws.recycle(x);
    out
}

#[cfg(test)]
mod tests {
    use super::batch_chunks;

    #[test]
    fn chunks_tile_the_batch_and_balance_work() {
        // Equal lengths: equal halves.
        assert_eq!(batch_chunks(&[8; 5], 8, 2, 1), vec![(0, 4), (4, 8)]);
        // One thread per direction: the whole batch each.
        assert_eq!(batch_chunks(&[8; 5], 8, 2, 2), vec![(0, 8)]);
        // Lengths 10,10,2,2,2,2,2,2 (sorted): work 36, so the first range is the two long rows.
        let active: Vec<usize> = (0..10).map(|t| if t < 2 { 8 } else { 2 }).collect();
        assert_eq!(batch_chunks(&active, 8, 2, 1), vec![(0, 2), (2, 8)]);
        // Small batches stay whole.
        assert_eq!(batch_chunks(&[3; 4], 3, 2, 1), vec![(0, 3)]);
        for (batch, threads) in [(9, 3), (17, 4), (64, 2), (5, 2)] {
            let c = batch_chunks(&[batch; 3], batch, threads, 1);
            assert_eq!(c.first().unwrap().0, 0);
            assert_eq!(c.last().unwrap().1, batch);
            assert!(c.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
        }
    }
}
