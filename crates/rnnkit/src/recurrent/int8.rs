//! The stack with int8 weights, for inference ([`super::Rnn::quantize`]): dynamic
//! quantization as PyTorch's `quantize_dynamic` does it for `nn.LSTM`. Each weight matrix
//! (`W_ih`, `W_hh`, `W_hr`) is quantized per output row once; each step quantizes its input and
//! state vectors on the fly; products are int8 × int8 → i32 ([`crate::kernels::int8`]); biases,
//! gate math and the cell state stay f32 and use the f32 path's fused gate passes.
//!
//! Sequences are independent, so a batch runs one sequence per task on the thread pool; each
//! walks its own valid steps (the reverse direction from its own last step), its padded
//! outputs stay zero and its state stops at its last step, as in the f32 path.

use super::lengths::BatchOrder;
use super::{RnnOutput, RnnState, check_input};
use crate::cell::{gru, lstm, rnn};
use crate::config::{CellKind, RnnConfig};
use crate::error::Result;
use crate::kernels::int8::{Int8Kernel, Int8Matrix, QuantizedVector};
use crate::params::{LayerParams, RnnParams};
use ndarray::{Array3, ArrayView3, Axis};
use rayon::prelude::*;

/// One layer and direction, quantized.
#[derive(Clone, Debug)]
struct Int8Layer {
    w_ih: Int8Matrix,
    w_hh: Int8Matrix,
    w_hr: Option<Int8Matrix>,
    /// The biases the input product carries: `b_ih + b_hh`, except GRU's `b_hn`.
    bias_x: Vec<f32>,
    /// GRU's `b_hn` (zeros otherwise), added inside `r ⊙ (·)`.
    b_hn: Vec<f32>,
}

/// A stack's weights in int8, with the f32 biases.
#[derive(Clone, Debug)]
pub(crate) struct Int8Stack {
    config: RnnConfig,
    layers: Vec<Int8Layer>,
}

impl Int8Layer {
    fn new(cell: CellKind, hidden: usize, p: &LayerParams) -> Self {
        let gh = p.weight_ih.nrows();
        let mut bias_x = vec![0.0f32; gh];
        let mut b_hn = vec![0.0f32; hidden];
        if let Some(b) = &p.bias_ih {
            bias_x.iter_mut().zip(b).for_each(|(x, b)| *x += b);
        }
        if let Some(b) = &p.bias_hh {
            let folded = if cell == CellKind::Gru {
                2 * hidden
            } else {
                gh
            };
            bias_x[..folded]
                .iter_mut()
                .zip(b)
                .for_each(|(x, b)| *x += b);
            if cell == CellKind::Gru {
                b_hn.copy_from_slice(&b.as_slice().expect("a contiguous bias")[2 * hidden..]);
            }
        }
        Int8Layer {
            w_ih: Int8Matrix::quantize(p.weight_ih.view()),
            w_hh: Int8Matrix::quantize(p.weight_hh.view()),
            w_hr: p.weight_hr.as_ref().map(|w| Int8Matrix::quantize(w.view())),
            bias_x,
            b_hn,
        }
    }
}

/// What one sequence's pass through one layer and direction gives.
struct RowOut {
    /// `[T, P]` outputs, zero after the sequence's end.
    y: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
}

/// Per-sequence scratch, allocated once per pass.
struct Scratch {
    xq: QuantizedVector,
    hq: QuantizedVector,
    gx: Vec<f32>,
    gh: Vec<f32>,
    gates: Vec<f32>,
    m: Vec<f32>,
    x: Vec<f32>,
}

impl Int8Stack {
    /// Quantizes `params` (shaped by `config`).
    pub(crate) fn new(config: &RnnConfig, params: &RnnParams) -> Self {
        let layers = params
            .layers
            .iter()
            .map(|p| Int8Layer::new(config.cell, config.hidden_size, p))
            .collect();
        Int8Stack {
            config: config.clone(),
            layers,
        }
    }

    /// The kernel its products run on.
    pub(crate) fn kernel(&self) -> Int8Kernel {
        self.layers[0].w_ih.kernel()
    }

    /// Inference forward: as [`super::Rnn::forward`].
    pub(crate) fn forward(
        &self,
        input: ArrayView3<f32>,
        state0: Option<&RnnState>,
        lengths: Option<&[usize]>,
    ) -> Result<RnnOutput> {
        let cfg = &self.config;
        let (steps, batch, _) = input.dim();
        check_input(cfg, input.dim(), state0)?;
        BatchOrder::new(lengths, steps, batch)?; // validates the lengths
        let lens: Vec<usize> = lengths.map_or_else(|| vec![steps; batch], <[usize]>::to_vec);
        let mut state = state0
            .cloned()
            .unwrap_or_else(|| RnnState::zeros(cfg, batch));
        let (d, p) = (cfg.num_directions(), cfg.h_out());
        let mut x = input.as_standard_layout().into_owned();
        for layer in 0..cfg.num_layers {
            let mut y = Array3::<f32>::zeros((steps, batch, d * p));
            for dir in 0..d {
                let k = layer * d + dir;
                let q = &self.layers[k];
                let h0 = state.h.index_axis(Axis(0), k).to_owned();
                let c0 = state
                    .c
                    .as_ref()
                    .map(|c| c.index_axis(Axis(0), k).to_owned());
                let rows: Vec<RowOut> = (0..batch)
                    .into_par_iter()
                    .map(|b| {
                        let h = h0.row(b).to_vec();
                        let c = c0.as_ref().map_or_else(Vec::new, |c| c.row(b).to_vec());
                        self.run_row(q, x.view(), b, lens[b], dir == 1, h, c)
                    })
                    .collect();
                for (b, row) in rows.into_iter().enumerate() {
                    for t in 0..lens[b] {
                        y.slice_mut(ndarray::s![t, b, dir * p..(dir + 1) * p])
                            .as_slice_mut()
                            .expect("a contiguous output row")
                            .copy_from_slice(&row.y[t * p..(t + 1) * p]);
                    }
                    state
                        .h
                        .slice_mut(ndarray::s![k, b, ..])
                        .as_slice_mut()
                        .expect("a contiguous state row")
                        .copy_from_slice(&row.h);
                    if let Some(c) = &mut state.c {
                        c.slice_mut(ndarray::s![k, b, ..])
                            .as_slice_mut()
                            .expect("a contiguous state row")
                            .copy_from_slice(&row.c);
                    }
                }
            }
            x = y;
        }
        Ok(RnnOutput { output: x, state })
    }

    /// One sequence `b` of `x` `[T, B, I_k]` through one layer and direction, from `h`, `c`.
    #[allow(clippy::too_many_arguments)]
    fn run_row(
        &self,
        q: &Int8Layer,
        x: ArrayView3<f32>,
        b: usize,
        len: usize,
        reverse: bool,
        mut h: Vec<f32>,
        mut c: Vec<f32>,
    ) -> RowOut {
        let cfg = &self.config;
        let (hid, p) = (cfg.hidden_size, cfg.h_out());
        let gh_len = q.w_ih.rows();
        let mut s = Scratch {
            xq: QuantizedVector::default(),
            hq: QuantizedVector::default(),
            gx: vec![0.0; gh_len],
            gh: vec![0.0; gh_len],
            gates: vec![0.0; gh_len],
            m: vec![0.0; hid],
            x: vec![0.0; x.dim().2],
        };
        let mut y = vec![0.0f32; x.dim().0 * p];
        for i in 0..len {
            let t = if reverse { len - 1 - i } else { i };
            for (dst, src) in s.x.iter_mut().zip(x.slice(ndarray::s![t, b, ..])) {
                *dst = *src;
            }
            s.xq.quantize_from(&s.x, q.w_ih.cols_padded());
            q.w_ih.gemv(&s.xq, &mut s.gx, false);
            s.gx.iter_mut().zip(&q.bias_x).for_each(|(g, b)| *g += b);
            s.hq.quantize_from(&h, q.w_hh.cols_padded());
            q.w_hh.gemv(&s.hq, &mut s.gh, false);
            match cfg.cell {
                CellKind::Lstm => {
                    lstm::forward_rows(&s.gx, &s.gh, &mut c, &mut s.gates, &mut s.m, hid);
                    match &q.w_hr {
                        Some(w_hr) => {
                            s.hq.quantize_from(&s.m, w_hr.cols_padded());
                            w_hr.gemv(&s.hq, &mut h, false);
                        }
                        None => h.copy_from_slice(&s.m),
                    }
                }
                CellKind::Gru => {
                    gru::forward_rows(&s.gx, &s.gh, &q.b_hn, &mut h, &mut s.gates, &mut s.m, hid);
                }
                CellKind::RnnTanh | CellKind::RnnRelu => {
                    rnn::forward_rows(&s.gx, &s.gh, &mut h, cfg.cell == CellKind::RnnRelu);
                }
            }
            y[t * p..(t + 1) * p].copy_from_slice(&h);
        }
        RowOut { y, h, c }
    }
}

#[cfg(test)]
mod tests {
    use crate::{CellKind, Init, Rnn, RnnConfig, RnnState};
    use ndarray::Array3;
    use rand::{Rng, SeedableRng};

    /// int8 inference against f32 on every cell, both directions, projection, variable
    /// lengths and a given state: close (the quantization error), with the same zero padding
    /// and final states taken at each sequence's end.
    #[test]
    fn int8_forward_tracks_f32_on_every_stack_shape() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (t, b, i) = (7, 3, 10);
        for (cell, proj, bi) in [
            (CellKind::Lstm, 0, false),
            (CellKind::Lstm, 6, true),
            (CellKind::Gru, 0, true),
            (CellKind::RnnTanh, 0, false),
            (CellKind::RnnRelu, 0, true),
        ] {
            let cfg = RnnConfig::new(cell, i, 12)
                .num_layers(2)
                .proj_size(proj)
                .bidirectional(bi);
            let mut rnn = Rnn::new(cfg.clone(), &Init::default(), 1).unwrap();
            let x = Array3::from_shape_fn((t, b, i), |_| rng.random_range(-1.0..1.0));
            let mut state = RnnState::zeros(&cfg, b);
            state.h.mapv_inplace(|_| rng.random_range(-0.5..0.5));
            let lengths = [7, 3, 1];
            let want = rnn.forward(x.view(), Some(&state), Some(&lengths)).unwrap();
            rnn.quantize();
            let got = rnn.forward(x.view(), Some(&state), Some(&lengths)).unwrap();
            let worst = (&got.output - &want.output)
                .mapv(f32::abs)
                .fold(0.0f32, |a, &v| a.max(v));
            assert!(worst < 0.03, "{cell} proj {proj} bi {bi}: {worst}");
            let worst_h = (&got.state.h - &want.state.h)
                .mapv(f32::abs)
                .fold(0.0f32, |a, &v| a.max(v));
            assert!(worst_h < 0.03, "{cell}: h_n {worst_h}");
            // Padded outputs stay exactly zero.
            for (bi_, &len) in lengths.iter().enumerate() {
                for tt in len..t {
                    assert!(
                        got.output
                            .slice(ndarray::s![tt, bi_, ..])
                            .iter()
                            .all(|&v| v == 0.0)
                    );
                }
            }
        }
    }

    #[test]
    fn a_quantized_stack_refuses_training_and_new_weights_drop_int8() {
        let mut rnn = Rnn::new(RnnConfig::new(CellKind::Gru, 3, 4), &Init::default(), 0).unwrap();
        rnn.quantize();
        let x = Array3::<f32>::zeros((2, 1, 3));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let Err(err) = rnn.forward_train(x.view(), None, None, &mut rng) else {
            panic!("a quantized stack trained");
        };
        assert!(err.to_string().contains("int8"), "{err}");
        rnn.params_mut();
        assert!(!rnn.is_quantized());
        assert!(rnn.forward_train(x.view(), None, None, &mut rng).is_ok());
    }

    #[test]
    fn streaming_steps_equal_the_whole_sequence_in_int8() {
        let cfg = RnnConfig::new(CellKind::Lstm, 5, 8).num_layers(2);
        let mut rnn = Rnn::new(cfg.clone(), &Init::default(), 2).unwrap();
        rnn.quantize();
        let x = Array3::from_shape_fn((6, 1, 5), |(t, _, i)| ((t * 5 + i) as f32 * 0.37).sin());
        let whole = rnn.forward(x.view(), None, None).unwrap();
        let mut state = RnnState::zeros(&cfg, 1);
        for t in 0..6 {
            let y = rnn
                .step(x.index_axis(ndarray::Axis(0), t), &mut state)
                .unwrap();
            assert_eq!(y, whole.output.index_axis(ndarray::Axis(0), t));
        }
        assert_eq!(state.h, whole.state.h);
    }
}
