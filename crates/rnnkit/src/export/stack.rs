//! The recurrent stack as ONNX: per layer, either the standard `LSTM`/`GRU`/`RNN` operator
//! (gates reordered from PyTorch's to ONNX's order) or a `Scan` over an explicit cell body.
//!
//! The `Scan` form exists for what the operators cannot say or some runtimes cannot run:
//! LSTM projection (`proj_size`, absent from ONNX's `LSTM`), and variable lengths in runtimes
//! whose operators take only a constant `sequence_lens` (tract). Its body keeps a
//! sequence's state fixed after its last valid step with `Where` on a step mask, and zeroes
//! the outputs there; the reverse direction runs over the time-reversed input, so it starts
//! at each sequence's own last step, as PyTorch's packed sequences do.

use super::graph::{Attr, Elem, GraphBuilder};
use super::{OnnxOptions, Recurrence};
use crate::config::{CellKind, RnnConfig};
use crate::error::{Error, Result};
use crate::params::LayerParams;
use crate::recurrent::Rnn;
use ndarray::{Array1, Array2, Array3, Axis, concatenate, s};

/// Values the whole graph computes once from its inputs, used by every layer.
pub(crate) struct SeqValues {
    /// `lengths` `[B]` i64, when the graph takes lengths.
    pub lengths: Option<String>,
    /// The step mask `[T, B, 1]` bool (`t < lengths[b]`), when the graph takes lengths.
    pub mask: Option<String>,
    /// Time indices reversed, `[T]` i64 (`T−1, …, 0`), for the `Scan` form's reverse direction.
    pub reversed: String,
}

impl SeqValues {
    /// Computes the step count, reversed time indices and (with `lengths`) the mask from
    /// `input`, whose first axis is time and second batch.
    pub(crate) fn new(g: &mut GraphBuilder, input: &str, lengths: Option<&str>) -> Self {
        let shape = g.node("Shape", &[input], vec![]);
        let zero = g.const_i64("zero", &[], &[0]);
        let steps = g.node("Gather", &[&shape, &zero], vec![("axis", Attr::Int(0))]);
        let one = g.const_i64("one", &[], &[1]);
        let range = g.node("Range", &[&zero, &steps, &one], vec![]);
        // T−1−t rather than a Range with step −1, which tract sizes wrongly.
        let last = g.node("Sub", &[&steps, &one], vec![]);
        let reversed = g.node("Sub", &[&last, &range], vec![]);
        let mask = lengths.map(|lengths| {
            let axes = g.ints("axes", &[1]);
            let column = g.node("Unsqueeze", &[&range, &axes], vec![]); // [T, 1]
            let valid = g.node("Less", &[&column, lengths], vec![]); // [T, B]
            let axes = g.ints("axes", &[2]);
            g.node("Unsqueeze", &[&valid, &axes], vec![]) // [T, B, 1]
        });
        SeqValues {
            lengths: lengths.map(str::to_string),
            mask,
            reversed,
        }
    }
}

/// What the stack produces.
pub(crate) struct StackOut {
    /// `[T, B, D·P]` top-layer outputs, zero at padded steps.
    pub y: String,
    /// `[L·D, B, P]` final hidden states.
    pub h_n: String,
    /// `[L·D, B, H]` final cell states (LSTM).
    pub c_n: Option<String>,
    /// The top layer's final hidden states `[D, B, P]` (each direction after reading the
    /// whole valid sequence: `Last` pooling).
    pub top_h: String,
}

/// What the stack reads: `x` `[T, B, I]`, the initial states `h0` `[L·D, B, P]` and `c0`
/// `[L·D, B, H]`, and the values computed once per graph.
#[derive(Clone, Copy)]
pub(crate) struct StackIn<'a> {
    pub x: &'a str,
    pub h0: &'a str,
    pub c0: Option<&'a str>,
    pub seq: &'a SeqValues,
}

/// One layer of the stack: its shape, its parameters (one per direction), the prefix of its
/// initializers' names, and its index.
struct Layer<'a> {
    config: &'a RnnConfig,
    params: &'a [LayerParams],
    name: String,
    index: usize,
}

/// Wires `rnn` (its initializers named under `prefix`) over `input`.
pub(crate) fn wire_stack(
    g: &mut GraphBuilder,
    rnn: &Rnn,
    prefix: &str,
    input: StackIn,
    options: &OnnxOptions,
) -> Result<StackOut> {
    let StackIn { x, h0, c0, seq } = input;
    let config = rnn.config();
    let d = if config.bidirectional { 2 } else { 1 };
    let mut x = x.to_string();
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for index in 0..config.num_layers {
        let layer = Layer {
            config,
            params: &rnn.params().layers[index * d..(index + 1) * d],
            name: format!("{prefix}l{index}"),
            index,
        };
        let input = StackIn { x: &x, h0, c0, seq };
        let scan = options.recurrence == Recurrence::Scan || config.proj_size > 0;
        let (y, h, c) = if scan {
            scan_layer(g, &layer, &input)?
        } else {
            operator_layer(g, &layer, &input)?
        };
        x = y;
        hs.push(h);
        cs.extend(c);
    }
    let top_h = hs.last().cloned().ok_or_else(|| {
        Error::Config("a recurrent stack needs at least one layer to export".into())
    })?;
    let h_refs: Vec<&str> = hs.iter().map(String::as_str).collect();
    let h_n = g.node("Concat", &h_refs, vec![("axis", Attr::Int(0))]);
    let c_n = (!cs.is_empty()).then(|| {
        let c_refs: Vec<&str> = cs.iter().map(String::as_str).collect();
        g.node("Concat", &c_refs, vec![("axis", Attr::Int(0))])
    });
    Ok(StackOut {
        y: x,
        h_n,
        c_n,
        top_h,
    })
}

/// The rows of `[G·H, X]` gate blocks in the order `order` (indices of PyTorch's blocks).
fn reorder_rows(w: &Array2<f32>, hidden: usize, order: &[usize]) -> Array2<f32> {
    let blocks: Vec<_> = order
        .iter()
        .map(|&k| w.slice(s![k * hidden..(k + 1) * hidden, ..]))
        .collect();
    concatenate(Axis(0), &blocks).expect("gate blocks share their width")
}

fn reorder_vec(v: &Array1<f32>, hidden: usize, order: &[usize]) -> Array1<f32> {
    let blocks: Vec<_> = order
        .iter()
        .map(|&k| v.slice(s![k * hidden..(k + 1) * hidden]))
        .collect();
    concatenate(Axis(0), &blocks).expect("gate blocks")
}

/// ONNX's gate order as indices of PyTorch's: LSTM `i,f,g,o` → `i,o,f,c`; GRU `r,z,n` →
/// `z,r,h`.
fn onnx_gate_order(cell: CellKind) -> &'static [usize] {
    match cell {
        CellKind::Lstm => &[0, 3, 1, 2],
        CellKind::Gru => &[1, 0, 2],
        CellKind::RnnTanh | CellKind::RnnRelu => &[0],
    }
}

/// The `[1, B, ·]` states of layer `layer` (both directions) out of `[L·D, B, ·]`.
fn layer_states(g: &mut GraphBuilder, states: &str, layer: usize, d: usize) -> String {
    let starts = g.ints("starts", &[(layer * d) as i64]);
    let ends = g.ints("ends", &[((layer + 1) * d) as i64]);
    let axes = g.ints("axes", &[0]);
    g.node("Slice", &[states, &starts, &ends, &axes], vec![])
}

/// One layer as ONNX's `LSTM`, `GRU` or `RNN` operator.
fn operator_layer(
    g: &mut GraphBuilder,
    layer: &Layer,
    input: &StackIn,
) -> Result<(String, String, Option<String>)> {
    let (config, params, name) = (layer.config, layer.params, layer.name.as_str());
    let StackIn { x, h0, c0, seq } = *input;
    let layer = layer.index;
    let h = config.hidden_size;
    let d = params.len();
    let order = onnx_gate_order(config.cell);
    let stack3 = |f: &dyn Fn(&LayerParams) -> Array2<f32>| -> Array3<f32> {
        let mats: Vec<_> = params.iter().map(|p| f(p).insert_axis(Axis(0))).collect();
        let views: Vec<_> = mats.iter().map(|m| m.view()).collect();
        concatenate(Axis(0), &views).expect("directions share shapes")
    };
    let w = stack3(&|p| reorder_rows(&p.weight_ih, h, order));
    let r = stack3(&|p| reorder_rows(&p.weight_hh, h, order));
    let w = g.initializer_f32(&format!("{name}.W"), w.view());
    let r = g.initializer_f32(&format!("{name}.R"), r.view());
    let b = if config.bias {
        let gh = config.cell.num_gates() * h;
        let rows: Vec<Array1<f32>> = params
            .iter()
            .map(|p| {
                let zeros = Array1::zeros(gh);
                let bi = p.bias_ih.as_ref().unwrap_or(&zeros);
                let bh = p.bias_hh.as_ref().unwrap_or(&zeros);
                concatenate(
                    Axis(0),
                    &[
                        reorder_vec(bi, h, order).view(),
                        reorder_vec(bh, h, order).view(),
                    ],
                )
                .expect("bias halves")
            })
            .collect();
        let views: Vec<_> = rows.iter().map(|r| r.view().insert_axis(Axis(0))).collect();
        let b = concatenate(Axis(0), &views).expect("directions share shapes");
        g.initializer_f32(&format!("{name}.B"), b.view())
    } else {
        String::new()
    };
    let seq_lens = match &seq.lengths {
        Some(l) => g.node("Cast", &[l], vec![("to", Attr::Int(6))]), // int32
        None => String::new(),
    };
    let h0 = layer_states(g, h0, layer, d);
    let c0 = c0.map(|c0| layer_states(g, c0, layer, d));
    let direction = if d == 2 { "bidirectional" } else { "forward" };
    let mut attrs = vec![
        ("hidden_size", Attr::Int(h as i64)),
        ("direction", Attr::String(direction)),
    ];
    let (op, outputs) = match config.cell {
        CellKind::Lstm => ("LSTM", 3),
        CellKind::Gru => {
            attrs.push(("linear_before_reset", Attr::Int(1)));
            ("GRU", 2)
        }
        CellKind::RnnTanh => {
            attrs.push(("activations", Attr::Strings(vec!["Tanh"; d])));
            ("RNN", 2)
        }
        CellKind::RnnRelu => {
            attrs.push(("activations", Attr::Strings(vec!["Relu"; d])));
            ("RNN", 2)
        }
    };
    let mut inputs: Vec<&str> = vec![x, &w, &r, &b, &seq_lens, &h0];
    if let Some(c0) = &c0 {
        inputs.push(c0);
    }
    let outs = g.node_n(op, &inputs, outputs, attrs);
    // Y [T, D, B, H] → [T, B, D, H] → [T, B, D·H].
    let yt = g.node(
        "Transpose",
        &[&outs[0]],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let shape = g.ints("shape", &[0, 0, -1]);
    let y = g.node("Reshape", &[&yt, &shape], vec![]);
    let c = (outputs == 3).then(|| outs[2].clone());
    Ok((y, outs[1].clone(), c))
}

/// One layer as a `Scan` per direction over an explicit cell.
fn scan_layer(
    g: &mut GraphBuilder,
    layer: &Layer,
    input: &StackIn,
) -> Result<(String, String, Option<String>)> {
    let (config, params, name) = (layer.config, layer.params, layer.name.as_str());
    let StackIn { x, h0, c0, seq } = *input;
    let d = params.len();
    let mut ys = Vec::new();
    let mut hs = Vec::new();
    let mut cs = Vec::new();
    for (dir, p) in params.iter().enumerate() {
        let name = if dir == 1 {
            format!("{name}_reverse")
        } else {
            name.to_string()
        };
        let index = g.const_i64("state_index", &[], &[(layer.index * d + dir) as i64]);
        let h0 = g.node("Gather", &[h0, &index], vec![("axis", Attr::Int(0))]);
        let c0 = c0.map(|c0| g.node("Gather", &[c0, &index], vec![("axis", Attr::Int(0))]));
        let direction = StackIn {
            x,
            h0: &h0,
            c0: c0.as_deref(),
            seq,
        };
        let (y, h, c) = scan_direction(g, config, p, &name, dir == 1, &direction)?;
        ys.push(y);
        let axes = g.ints("axes", &[0]);
        hs.push(g.node("Unsqueeze", &[&h, &axes], vec![]));
        if let Some(c) = c {
            let axes = g.ints("axes", &[0]);
            cs.push(g.node("Unsqueeze", &[&c, &axes], vec![]));
        }
    }
    let cat = |g: &mut GraphBuilder, v: &[String], axis: i64| -> String {
        if v.len() == 1 {
            v[0].clone()
        } else {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            g.node("Concat", &refs, vec![("axis", Attr::Int(axis))])
        }
    };
    let y = cat(g, &ys, 2);
    let h = cat(g, &hs, 0);
    let c = (!cs.is_empty()).then(|| cat(g, &cs, 0));
    Ok((y, h, c))
}

/// One direction of one layer: the input products for all steps in one `MatMul`, then a
/// `Scan` whose body adds the recurrent product and applies the cell. Returns `y` `[T, B, P]`
/// and the final `h` `[B, P]` and `c` `[B, H]`.
fn scan_direction(
    g: &mut GraphBuilder,
    config: &RnnConfig,
    p: &LayerParams,
    name: &str,
    reverse: bool,
    input: &StackIn,
) -> Result<(String, String, Option<String>)> {
    let StackIn { x, h0, c0, seq } = *input;
    let cell = config.cell;
    // Input side for every step: x·W_ihᵀ + b_ih (+ b_hh, except for GRU, whose b_hh sits
    // inside r ⊙ (·)).
    let w_ih_t = g.initializer_f32(&format!("{name}.weight_ih_T"), p.weight_ih.t());
    let mut xw = g.node("MatMul", &[x, &w_ih_t], vec![]);
    let gh = p.weight_ih.nrows();
    let mut input_bias = Array1::<f32>::zeros(gh);
    if let Some(b) = &p.bias_ih {
        input_bias += b;
    }
    if cell != CellKind::Gru
        && let Some(b) = &p.bias_hh
    {
        input_bias += b;
    }
    if config.bias {
        let b = g.initializer_f32(&format!("{name}.bias_x"), input_bias.view());
        xw = g.node("Add", &[&xw, &b], vec![]);
    }
    let mut mask = seq.mask.clone();
    if reverse {
        xw = g.node(
            "Gather",
            &[&xw, &seq.reversed],
            vec![("axis", Attr::Int(0))],
        );
        mask = mask.map(|m| g.node("Gather", &[&m, &seq.reversed], vec![("axis", Attr::Int(0))]));
    }
    let w_hh_t = g.initializer_f32(&format!("{name}.weight_hh_T"), p.weight_hh.t());
    let b_hh = match (&p.bias_hh, cell) {
        (Some(b), CellKind::Gru) => Some(g.initializer_f32(&format!("{name}.bias_hh"), b.view())),
        _ => None,
    };
    let w_hr_t = p
        .weight_hr
        .as_ref()
        .map(|w| g.initializer_f32(&format!("{name}.weight_hr_T"), w.t()));

    let body = cell_body(
        &format!("{}body_", g.fresh(name).replace('.', "_")),
        cell,
        &w_hh_t,
        b_hh.as_deref(),
        w_hr_t.as_deref(),
        mask.is_some(),
    );
    let mut inputs: Vec<&str> = vec![h0];
    if let Some(c0) = c0 {
        inputs.push(c0);
    }
    inputs.push(&xw);
    if let Some(m) = &mask {
        inputs.push(m);
    }
    let states = 1 + c0.is_some() as usize;
    let scan_inputs = 1 + mask.is_some() as usize;
    let outs = g.node_n(
        "Scan",
        &inputs,
        states + 1,
        vec![
            ("body", Attr::Graph(Box::new(body))),
            ("num_scan_inputs", Attr::Int(scan_inputs as i64)),
        ],
    );
    let mut y = outs[states].clone();
    if reverse {
        y = g.node("Gather", &[&y, &seq.reversed], vec![("axis", Attr::Int(0))]);
    }
    let c = (states == 2).then(|| outs[1].clone());
    Ok((y, outs[0].clone(), c))
}

/// The body of a cell's `Scan`: states `h` (and `c`), scan inputs `xw_t` `[B, G·H]` (and the
/// mask `m_t` `[B, 1]`); outputs the new states and `y_t`. Weights are read from the outer
/// graph by name.
fn cell_body(
    prefix: &str,
    cell: CellKind,
    w_hh_t: &str,
    b_hh: Option<&str>,
    w_hr_t: Option<&str>,
    masked: bool,
) -> super::onnx_pb::GraphProto {
    let mut b = GraphBuilder::new("cell", prefix);
    let h = b.input_untyped(&format!("{prefix}h"), Elem::F32);
    let c = cell
        .has_cell_state()
        .then(|| b.input_untyped(&format!("{prefix}c"), Elem::F32));
    let xw = b.input_untyped(&format!("{prefix}xw"), Elem::F32);
    let m = masked.then(|| b.input_untyped(&format!("{prefix}m"), Elem::Bool));
    let mut rec = b.node("MatMul", &[&h, w_hh_t], vec![]);
    if let Some(bias) = b_hh {
        rec = b.node("Add", &[&rec, bias], vec![]);
    }
    let (h_new, c_new) = match cell {
        CellKind::Lstm => {
            let gates = b.node("Add", &[&xw, &rec], vec![]);
            let parts = b.node_n("Split", &[&gates], 4, vec![("axis", Attr::Int(1))]);
            let i = b.node("Sigmoid", &[&parts[0]], vec![]);
            let f = b.node("Sigmoid", &[&parts[1]], vec![]);
            let gg = b.node("Tanh", &[&parts[2]], vec![]);
            let o = b.node("Sigmoid", &[&parts[3]], vec![]);
            let c = c.as_deref().expect("an LSTM body has a cell state");
            let fc = b.node("Mul", &[&f, c], vec![]);
            let ig = b.node("Mul", &[&i, &gg], vec![]);
            let c_new = b.node("Add", &[&fc, &ig], vec![]);
            let tc = b.node("Tanh", &[&c_new], vec![]);
            let mut h_new = b.node("Mul", &[&o, &tc], vec![]);
            if let Some(w) = w_hr_t {
                h_new = b.node("MatMul", &[&h_new, w], vec![]);
            }
            (h_new, Some(c_new))
        }
        CellKind::Gru => {
            let xs = b.node_n("Split", &[&xw], 3, vec![("axis", Attr::Int(1))]);
            let hs = b.node_n("Split", &[&rec], 3, vec![("axis", Attr::Int(1))]);
            let r_in = b.node("Add", &[&xs[0], &hs[0]], vec![]);
            let r = b.node("Sigmoid", &[&r_in], vec![]);
            let z_in = b.node("Add", &[&xs[1], &hs[1]], vec![]);
            let z = b.node("Sigmoid", &[&z_in], vec![]);
            let rh = b.node("Mul", &[&r, &hs[2]], vec![]);
            let n_in = b.node("Add", &[&xs[2], &rh], vec![]);
            let n = b.node("Tanh", &[&n_in], vec![]);
            let one = b.scalar_f32("one", 1.0);
            let keep = b.node("Sub", &[&one, &z], vec![]);
            let kn = b.node("Mul", &[&keep, &n], vec![]);
            let zh = b.node("Mul", &[&z, &h], vec![]);
            (b.node("Add", &[&kn, &zh], vec![]), None)
        }
        CellKind::RnnTanh | CellKind::RnnRelu => {
            let pre = b.node("Add", &[&xw, &rec], vec![]);
            let act = if cell == CellKind::RnnTanh {
                "Tanh"
            } else {
                "Relu"
            };
            (b.node(act, &[&pre], vec![]), None)
        }
    };
    let (h_out, c_out, y) = match &m {
        Some(m) => {
            let zero = b.scalar_f32("zero", 0.0);
            let h_out = b.node("Where", &[m, &h_new, &h], vec![]);
            let c_out = c_new
                .as_ref()
                .map(|c_new| b.node("Where", &[m, c_new, c.as_deref().expect("c")], vec![]));
            let y = b.node("Where", &[m, &h_new, &zero], vec![]);
            (h_out, c_out, y)
        }
        None => {
            let y = b.node("Identity", &[&h_new], vec![]);
            (h_new, c_new, y)
        }
    };
    b.output_untyped(&h_out, &format!("{prefix}h_out"), Elem::F32);
    if let Some(c_out) = c_out {
        b.output_untyped(&c_out, &format!("{prefix}c_out"), Elem::F32);
    }
    b.output_untyped(&y, &format!("{prefix}y"), Elem::F32);
    b.finish()
}
