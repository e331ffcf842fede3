//! One layer, one direction: the fast path of DESIGN section 3.
//!
//! Forward: one GEMM projects the inputs of all steps (`[T·B, I] × [I, G·H]`, biases folded in);
//! then per step one recurrent GEMM (`[n, P] × [P, G·H]`) into a preallocated buffer and one fused
//! gate pass (`crate::cell`). Backward walks time in reverse with one fused pass and one GEMM
//! per step, then forms the weight gradients as whole-sequence GEMMs.
//!
//! Batch rows are sorted by length, longest first, so at step `t` the rows still running are a
//! prefix `0..active[t]`: the GEMMs shrink instead of masking. The time loops run as tasks over
//! disjoint batch ranges `b0..b1` (one per thread); the tasks of one direction share the `[T, B, ·]`
//! caches through `SharedRows`, each claiming only its own rows.

use super::workspace::Workspace;
use crate::cell::{gru, lstm, rnn};
use crate::config::{CellKind, RnnConfig};
use crate::kernels::bf16::{PackedBf16, gemm_bf16_at, gemm_bf16_at2};
use crate::kernels::gemm::{MatRef, add_column_sums, matmul};
use crate::kernels::packed::PackedWeights;
use crate::kernels::shared::{RowsHandle, SharedRows};
use crate::params::LayerParams;
use crate::precision::Precision;

/// Read-only view of one layer-direction's weights, with biases folded for the fast path.
pub(crate) struct DirWeights<'a> {
    pub cell: CellKind,
    /// `I`: input features of this layer.
    pub input: usize,
    /// `H`.
    pub hidden: usize,
    /// `P`: size of `h`.
    pub h_out: usize,
    pub w_ih: &'a [f32],         // [G*H, I]
    pub w_hh: &'a [f32],         // [G*H, P]
    pub w_hr: Option<&'a [f32]>, // [P, H]
    /// Bias added to the input projection: `b_ih + b_hh` (GRU: `b_hh` without its `n` block).
    pub bias_x: Vec<f32>, // [G*H]
    /// GRU only: `b_hn`, added inside the gate pass.
    pub bias_hn: Vec<f32>, // [H]
    /// The recurrent weights packed once per pass for the per-step products
    /// (`kernels::small_gemm`): forward `W_hhᵀ` `[P, G*H]`, backward `W_hh` `[G*H, P]`.
    pub packed_hh: Option<PackedWeights>,
    /// Likewise the projection: forward `W_hrᵀ` `[H, P]`, backward `W_hr` `[P, H]`.
    pub packed_hr: Option<PackedWeights>,
    pub reverse: bool,
    /// The products' arithmetic (already [`Precision::effective`]).
    pub precision: Precision,
}

/// Which per-step products a [`DirWeights`] prepares packed weights for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pack {
    /// None (a single step: packing would cost as much as the product).
    None,
    /// The forward time loop.
    Forward,
    /// The backward time loop.
    Backward,
}

impl<'a> DirWeights<'a> {
    pub fn new(
        config: &RnnConfig,
        layer: usize,
        p: &'a LayerParams,
        reverse: bool,
        pack: Pack,
        precision: Precision,
    ) -> Self {
        let (h, gh) = (config.hidden_size, config.gate_size());
        let mut bias_x = vec![0.0; gh];
        let mut bias_hn = vec![0.0; h];
        if let (Some(bi), Some(bh)) = (&p.bias_ih, &p.bias_hh) {
            for (k, v) in bias_x.iter_mut().enumerate() {
                let fold_hh = !(config.cell == CellKind::Gru && k >= 2 * h);
                *v = bi[k] + if fold_hh { bh[k] } else { 0.0 };
            }
            if config.cell == CellKind::Gru {
                bias_hn.copy_from_slice(&bh.as_slice().expect("standard layout")[2 * h..]);
            }
        }
        let (gates, p_out) = (config.gate_size(), config.h_out());
        let w_hh = p.weight_hh.as_slice().expect("checked standard layout");
        let w_hr = p
            .weight_hr
            .as_ref()
            .map(|w| w.as_slice().expect("checked standard layout"));
        let (packed_hh, packed_hr) = match pack {
            Pack::None => (None, None),
            Pack::Forward => (
                Some(PackedWeights::from_transposed(
                    w_hh, gates, p_out, precision,
                )),
                w_hr.map(|w| PackedWeights::from_transposed(w, p_out, h, precision)),
            ),
            Pack::Backward => (
                Some(PackedWeights::from_row_major(
                    w_hh, p_out, gates, p_out, precision,
                )),
                w_hr.map(|w| PackedWeights::from_row_major(w, h, p_out, h, precision)),
            ),
        };
        DirWeights {
            packed_hh,
            packed_hr,
            cell: config.cell,
            input: config.layer_input_size(layer),
            hidden: h,
            h_out: config.h_out(),
            w_ih: p.weight_ih.as_slice().expect("checked standard layout"),
            w_hh,
            w_hr,
            bias_x,
            bias_hn,
            reverse,
            precision,
        }
    }

    pub fn gates(&self) -> usize {
        self.cell.num_gates() * self.hidden
    }

    fn time(&self, s: usize, steps: usize) -> usize {
        if self.reverse { steps - 1 - s } else { s }
    }

    /// `gx[T·B, G·H] = x[T·B, I] · W_ihᵀ + bias_x`, all steps at once.
    pub fn project_inputs(
        &self,
        x: &[f32],
        rows: usize,
        threads: usize,
        mut gx: Vec<f32>,
    ) -> Vec<f32> {
        let gh = self.gates();
        gx.clear();
        for _ in 0..rows {
            gx.extend_from_slice(&self.bias_x);
        }
        if self.precision == Precision::Bf16 || (crate::kernels::has_avx512f() && rows >= 256) {
            // Our AVX-512 block beats the GEMM library's AVX2 kernels by about 10% here; packing
            // W_ihᵀ costs one pass over the weights against `rows` passes of the product.
            let packed = PackedWeights::from_transposed(self.w_ih, gh, self.input, self.precision);
            packed.gemm_rows(&mut gx, gh, x, self.input, rows, true, threads);
            return gx;
        }
        let w_ih_t = MatRef::row_major(self.w_ih, gh, self.input).t();
        matmul(
            &mut gx,
            gh,
            MatRef::row_major(x, rows, self.input),
            w_ih_t,
            true,
            threads,
        );
        gx
    }
}

/// What forward keeps for backward, all `[T, B, ·]` in time order.
pub(crate) struct DirCache {
    /// `[T, B, G*H]` activated gates (RNN: the outputs `h'`).
    pub gates: Vec<f32>,
    /// `[T, B, P]` the `h` entering each step.
    pub h_prev: Vec<f32>,
    /// `[T, B, H]` the `c` entering each step (LSTM).
    pub c_prev: Vec<f32>,
    /// `[T, B, H]` `m = o ⊙ tanh(c')` (LSTM with projection).
    pub m: Vec<f32>,
    /// `[T, B, H]` `W_hn h + b_hn` (GRU).
    pub a: Vec<f32>,
}

impl DirCache {
    pub fn new(w: &DirWeights, steps: usize, batch: usize, ws: &Workspace) -> Self {
        let rows = steps * batch;
        let lstm = w.cell == CellKind::Lstm;
        let zeros_if = |keep: bool, len: usize| if keep { ws.zeros(len) } else { Vec::new() };
        DirCache {
            gates: ws.zeros(rows * w.gates()),
            h_prev: ws.zeros(rows * w.h_out),
            c_prev: zeros_if(lstm, rows * w.hidden),
            m: zeros_if(lstm && w.w_hr.is_some(), rows * w.hidden),
            a: zeros_if(w.cell == CellKind::Gru, rows * w.hidden),
        }
    }

    /// The buffers, to give back to the workspace.
    pub fn into_buffers(self) -> [Vec<f32>; 5] {
        [self.gates, self.h_prev, self.c_prev, self.m, self.a]
    }
}

/// Shared views of a [`DirCache`] for the tasks of one direction.
pub(crate) struct SharedCache<'c> {
    gates: SharedRows<'c>,
    h_prev: SharedRows<'c>,
    c_prev: Option<SharedRows<'c>>,
    m: Option<SharedRows<'c>>,
    a: Option<SharedRows<'c>>,
}

/// One task's claim on a [`SharedCache`].
pub(crate) struct TaskCache<'s> {
    gates: RowsHandle<'s>,
    h_prev: RowsHandle<'s>,
    c_prev: Option<RowsHandle<'s>>,
    m: Option<RowsHandle<'s>>,
    a: Option<RowsHandle<'s>>,
}

impl<'c> SharedCache<'c> {
    /// Claims batch rows `b0..b1` of every buffer.
    fn claim(&self, b0: usize, b1: usize) -> TaskCache<'_> {
        TaskCache {
            gates: self.gates.claim(b0, b1),
            h_prev: self.h_prev.claim(b0, b1),
            c_prev: self.c_prev.as_ref().map(|s| s.claim(b0, b1)),
            m: self.m.as_ref().map(|s| s.claim(b0, b1)),
            a: self.a.as_ref().map(|s| s.claim(b0, b1)),
        }
    }

    pub fn new(cache: &'c mut DirCache, w: &DirWeights, steps: usize, batch: usize) -> Self {
        let opt = |v: &'c mut Vec<f32>, width: usize| {
            (!v.is_empty()).then(|| SharedRows::new(v, steps, batch, width))
        };
        SharedCache {
            gates: SharedRows::new(&mut cache.gates, steps, batch, w.gates()),
            h_prev: SharedRows::new(&mut cache.h_prev, steps, batch, w.h_out),
            c_prev: opt(&mut cache.c_prev, w.hidden),
            m: opt(&mut cache.m, w.hidden),
            a: opt(&mut cache.a, w.hidden),
        }
    }
}

/// The batch rows `b0..b1` one task owns, and the running-row counts per step.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    pub b0: usize,
    pub b1: usize,
    pub batch: usize,
    /// `active[t]`: rows `0..active[t]` of the (length-sorted) batch run at step `t`.
    pub active: &'a [usize],
}

impl Rows<'_> {
    /// Rows of this task running at step `t`.
    fn running(&self, t: usize) -> usize {
        self.active[t].clamp(self.b0, self.b1) - self.b0
    }
}

/// Forward time loop of one task. `h`, `c`: `[b1-b0, P]`, `[b1-b0, H]`, in the initial state,
/// out the final state. `y`: `[T, B, P]` outputs (padded rows stay as they were: zero).
/// With `cache = None` this is inference: nothing is kept per step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_task(
    w: &DirWeights,
    gx: &[f32], // [T, B, G*H]
    rows: Rows,
    h: &mut [f32],
    c: &mut [f32],
    y: &SharedRows,
    cache: Option<&SharedCache>,
    gemm_threads: usize,
) {
    let (hid, p, gh) = (w.hidden, w.h_out, w.gates());
    let steps = rows.active.len();
    let nb = rows.b1 - rows.b0;
    // Per-task work buffers, allocated once, reused by every step.
    let mut rec = vec![0.0; nb * gh]; // [n, G*H] recurrent part of the pre-activations
    let mut gates_tmp = vec![0.0; if cache.is_none() { nb * gh } else { 0 }]; // [n, G*H]
    let mut m_tmp = vec![0.0; nb * hid]; // [n, H] LSTM m (projection) or GRU a, when not cached
    let has_cache = cache.is_some();
    let mut y = y.claim(rows.b0, rows.b1);
    let mut cache = cache.map(|c| c.claim(rows.b0, rows.b1));
    // `y[n, cols] = x[n, k] · Wᵀ` for a row-major weight `w[cols, k]`, packed or not.
    let times_t = |y: &mut [f32],
                   x: &[f32],
                   n: usize,
                   packed: Option<&PackedWeights>,
                   w: &[f32],
                   k: usize,
                   cols: usize| {
        match packed {
            Some(pw) => pw.gemm(y, cols, x, k, n, false, gemm_threads),
            None => matmul(
                y,
                cols,
                MatRef::row_major(x, n, k),
                MatRef::row_major(w, cols, k).t(),
                false,
                gemm_threads,
            ),
        }
    };
    for s in 0..steps {
        let t = w.time(s, steps);
        let n = rows.running(t);
        if n == 0 {
            continue;
        }
        let (r0, r1) = (rows.b0, rows.b0 + n);
        let hc = &mut h[..n * p];
        if let Some(cache) = &mut cache {
            cache.h_prev.rows_mut(t, n).copy_from_slice(hc);
            if let Some(cp) = &mut cache.c_prev {
                cp.rows_mut(t, n).copy_from_slice(&c[..n * hid]);
            }
        }
        let rec = &mut rec[..n * gh];
        times_t(rec, hc, n, w.packed_hh.as_ref(), w.w_hh, p, gh);
        let gx_t = &gx[(t * rows.batch + r0) * gh..(t * rows.batch + r1) * gh];
        let (gates, m_cache, a_cache) = match &mut cache {
            Some(c) => (c.gates.rows_mut(t, n), c.m.as_mut(), c.a.as_mut()),
            None => (&mut gates_tmp[..n * gh], None, None),
        };
        match w.cell {
            CellKind::Lstm => match w.w_hr {
                None => lstm::forward_rows(gx_t, rec, &mut c[..n * hid], gates, hc, hid),
                Some(w_hr) => {
                    let m = match m_cache {
                        Some(m) => m.rows_mut(t, n),
                        None => &mut m_tmp[..n * hid],
                    };
                    lstm::forward_rows(gx_t, rec, &mut c[..n * hid], gates, m, hid);
                    times_t(hc, m, n, w.packed_hr.as_ref(), w_hr, hid, p);
                }
            },
            CellKind::Gru => {
                let a = match a_cache {
                    Some(a) => a.rows_mut(t, n),
                    None => &mut m_tmp[..n * hid],
                };
                gru::forward_rows(gx_t, rec, &w.bias_hn, hc, gates, a, hid);
            }
            CellKind::RnnTanh | CellKind::RnnRelu => {
                rnn::forward_rows(gx_t, rec, hc, w.cell == CellKind::RnnRelu);
                if has_cache {
                    gates.copy_from_slice(hc); // backward reads φ' from the outputs
                }
            }
        }
        y.rows_mut(t, n).copy_from_slice(hc);
    }
}

/// Gradient buffers of one direction, `[T, B, ·]`, shared by its tasks.
pub(crate) struct DirGradBufs {
    /// `[T, B, G*H]` input-side pre-activation gradients.
    pub dgx: Vec<f32>,
    /// `[T, B, G*H]` recurrent-side ones (GRU only; the others share `dgx`).
    pub dgh: Vec<f32>,
    /// `[T, B, P]` gradient reaching each step's `h'` (LSTM with projection, for `dW_hr`).
    pub dh_out: Vec<f32>,
}

impl DirGradBufs {
    pub fn new(w: &DirWeights, steps: usize, batch: usize, ws: &Workspace) -> Self {
        let rows = steps * batch;
        let zeros_if = |keep: bool, len: usize| if keep { ws.zeros(len) } else { Vec::new() };
        DirGradBufs {
            dgx: ws.zeros(rows * w.gates()),
            dgh: zeros_if(w.cell == CellKind::Gru, rows * w.gates()),
            dh_out: zeros_if(w.w_hr.is_some(), rows * w.h_out),
        }
    }

    /// The buffers, to give back to the workspace.
    pub fn into_buffers(self) -> [Vec<f32>; 3] {
        [self.dgx, self.dgh, self.dh_out]
    }
}

/// Backward time loop of one task. `dh`, `dc`: `[b1-b0, P]`, `[b1-b0, H]`, in the gradient of the
/// final state, out the gradient of the initial state. `dy`: `[T, B, P]` upstream gradient of
/// this direction's outputs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_task<'c>(
    w: &DirWeights,
    cache: &'c DirCache,
    dy: &[f32],
    rows: Rows,
    dh: &mut [f32],
    dc: &mut [f32],
    dgx: &SharedRows,
    dgh: Option<&SharedRows>,
    dh_out: Option<&SharedRows>,
    gemm_threads: usize,
) {
    let (hid, p, gh) = (w.hidden, w.h_out, w.gates());
    let steps = rows.active.len();
    let nb = rows.b1 - rows.b0;
    let mut dm_tmp = vec![0.0; if w.w_hr.is_some() { nb * hid } else { 0 }]; // [n, H]
    let packed_hh = w.packed_hh.as_ref().expect("backward packs W_hh");
    let mut dgx = dgx.claim(rows.b0, rows.b1);
    let mut dgh = dgh.map(|s| s.claim(rows.b0, rows.b1));
    let mut dh_out = dh_out.map(|s| s.claim(rows.b0, rows.b1));
    for s in (0..steps).rev() {
        let t = w.time(s, steps);
        let n = rows.running(t);
        if n == 0 {
            continue;
        }
        let (r0, r1) = (rows.b0, rows.b0 + n);
        let dhc = &mut dh[..n * p];
        let dy_t = &dy[(t * rows.batch + r0) * p..(t * rows.batch + r1) * p];
        for (d, u) in dhc.iter_mut().zip(dy_t) {
            *d += u;
        }
        // The cache is read-only here; the gradient buffers are written through claimed rows.
        let base = t * rows.batch;
        let at = |buf: &'c [f32], width: usize| &buf[(base + r0) * width..(base + r1) * width];
        let gates = at(&cache.gates, gh);
        let dg = dgx.rows_mut(t, n);
        match w.cell {
            CellKind::Lstm => {
                let c_prev = at(&cache.c_prev, hid);
                let dc = &mut dc[..n * hid];
                match w.w_hr {
                    None => lstm::backward_rows(gates, c_prev, dhc, dc, dg, hid),
                    Some(_) => {
                        let store = dh_out.as_mut().expect("projection buffers");
                        store.rows_mut(t, n).copy_from_slice(dhc);
                        let dm = &mut dm_tmp[..n * hid];
                        let packed_hr = w.packed_hr.as_ref().expect("backward packs W_hr");
                        packed_hr.gemm(dm, hid, dhc, p, n, false, gemm_threads);
                        lstm::backward_rows(gates, c_prev, dm, dc, dg, hid);
                    }
                }
                packed_hh.gemm(dhc, p, dg, gh, n, false, gemm_threads);
            }
            CellKind::Gru => {
                let a = at(&cache.a, hid);
                let h_prev = at(&cache.h_prev, p);
                let dgh = dgh.as_mut().expect("gru buffers").rows_mut(t, n);
                gru::backward_rows(gates, a, h_prev, dhc, dg, dgh, hid);
                packed_hh.gemm(dhc, p, dgh, gh, n, true, gemm_threads);
            }
            CellKind::RnnTanh | CellKind::RnnRelu => {
                rnn::backward_rows(gates, dhc, dg, w.cell == CellKind::RnnRelu);
                packed_hh.gemm(dhc, p, dg, gh, n, false, gemm_threads);
            }
        }
    }
}

/// After the time loops: weight gradients as whole-sequence GEMMs, added into `grads`, and the
/// input gradient `dx[T·B, I] += dG_x · W_ih`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_grads(
    w: &DirWeights,
    cache: &DirCache,
    bufs: &DirGradBufs,
    x: &[f32], // [T·B, I] this layer's input
    rows: usize,
    grads: &mut LayerParams,
    dx: &mut [f32],
    threads: usize,
) {
    let (i, hid, p, gh) = (w.input, w.hidden, w.h_out, w.gates());
    let dgh_buf = if bufs.dgh.is_empty() {
        &bufs.dgx
    } else {
        &bufs.dgh
    };
    // `grad[m, n] += dᵀ · v` for `d` `[rows, m]` and `v` `[rows, n]`, both row-major.
    let add_at_b = |grad: &mut [f32], d: &[f32], m: usize, v: &[f32], n: usize| match w.precision {
        Precision::Bf16 => {
            let packed = PackedBf16::from_row_major(v, n, rows, n);
            gemm_bf16_at(grad, n, d, m, m, &packed, true, threads);
        }
        Precision::F32 => matmul(
            grad,
            n,
            MatRef::row_major(d, rows, m).t(),
            MatRef::row_major(v, rows, n),
            true,
            threads,
        ),
    };
    let (dw_ih, dw_hh) = (
        grads.weight_ih.as_slice_mut().expect("standard layout"),
        grads.weight_hh.as_slice_mut().expect("standard layout"),
    );
    if w.precision == Precision::Bf16 && std::ptr::eq(dgh_buf, &bufs.dgx) {
        // One `dG` for both (all cells but the GRU): round and lay it out once.
        let packed_x = PackedBf16::from_row_major(x, i, rows, i);
        let packed_h = PackedBf16::from_row_major(&cache.h_prev, p, rows, p);
        gemm_bf16_at2(
            (dw_ih, i, &packed_x),
            (dw_hh, p, &packed_h),
            &bufs.dgx,
            gh,
            gh,
            true,
            threads,
        );
    } else {
        add_at_b(dw_ih, &bufs.dgx, gh, x, i);
        add_at_b(dw_hh, dgh_buf, gh, &cache.h_prev, p);
    }
    if let Some(b) = &mut grads.bias_ih {
        add_column_sums(b.as_slice_mut().expect("standard layout"), &bufs.dgx, gh);
    }
    if let Some(b) = &mut grads.bias_hh {
        add_column_sums(b.as_slice_mut().expect("standard layout"), dgh_buf, gh);
    }
    if let Some(g) = &mut grads.weight_hr {
        add_at_b(
            g.as_slice_mut().expect("standard layout"),
            &bufs.dh_out,
            p,
            &cache.m,
            hid,
        );
    }
    if w.precision == Precision::Bf16 || (crate::kernels::has_avx512f() && rows >= 256) {
        // As in `project_inputs`: our AVX-512 block over the packed `W_ih` `[G*H, I]`.
        let packed = PackedWeights::from_row_major(w.w_ih, i, gh, i, w.precision);
        packed.gemm_rows(dx, i, &bufs.dgx, gh, rows, true, threads);
        return;
    }
    let dgx = MatRef::row_major(&bufs.dgx, rows, gh);
    matmul(dx, i, dgx, MatRef::row_major(w.w_ih, gh, i), true, threads);
}
