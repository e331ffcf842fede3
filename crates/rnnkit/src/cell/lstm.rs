//! LSTM cell (PyTorch `torch.nn.LSTM`, gate order `i, f, g, o`, optional projection).
//!
//! Forward, for one step with input `x`, previous state `h` (size `P`) and cell `c` (size `H`):
//!
//! ```text
//! i  = σ(W_ii x + b_ii + W_hi h + b_hi)
//! f  = σ(W_if x + b_if + W_hf h + b_hf)
//! g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
//! o  = σ(W_io x + b_io + W_ho h + b_ho)
//! c' = f ⊙ c + i ⊙ g
//! m  = o ⊙ tanh(c')
//! h' = m                  (no projection)
//! h' = W_hr m             (proj_size > 0; W_hr is [P, H])
//! ```
//!
//! Backward, given `dh'` (from the output at this step plus the next step) and `dc'` (from the
//! next step):
//!
//! ```text
//! dm     = dh'                        (no projection)
//! dm     = W_hrᵀ dh',  dW_hr += dh' mᵀ (projection)
//! do     = dm ⊙ tanh(c')
//! dc'   += dm ⊙ o ⊙ (1 − tanh²(c'))     total gradient reaching c'
//! di     = dc' ⊙ g,   df = dc' ⊙ c,   dg = dc' ⊙ i
//! dc     = dc' ⊙ f                      flows to the previous step
//! pre-activation gradients (σ' = s(1−s), tanh' = 1−t²):
//! dâ_i = di ⊙ i(1−i),  dâ_f = df ⊙ f(1−f),  dâ_g = dg ⊙ (1−g²),  dâ_o = do ⊙ o(1−o)
//! dh     = W_hhᵀ dâ,  dx = W_ihᵀ dâ,  dW_ih += dâ xᵀ,  dW_hh += dâ hᵀ,  db_ih = db_hh += dâ
//! ```
//!
//! `c'` is not stored: backward recomputes it from the stored gates and `c` with the same
//! float operations, so it is bit-identical to the forward value.

use super::{gate_blocks, gate_blocks_mut};
use crate::kernels::activation::{sigmoid, tanh};

simd_fn! {
    /// Forward gate pass for `n` rows.
    ///
    /// `gx`: `[n, 4H]` input part of the pre-activations, both biases included;
    /// `gh`: `[n, 4H]` recurrent part; `c`: `[n, H]` in `c`, out `c'`;
    /// `gates`: `[n, 4H]` out, activated `i, f, g, o`; `m`: `[n, H]` out, `o ⊙ tanh(c')`.
    pub fn forward_rows(gx: &[f32], gh: &[f32], c: &mut [f32], gates: &mut [f32], m: &mut [f32], h: usize) {
        let g4 = 4 * h;
        let rows = gx
            .chunks_exact(g4)
            .zip(gh.chunks_exact(g4))
            .zip(c.chunks_exact_mut(h))
            .zip(gates.chunks_exact_mut(g4))
            .zip(m.chunks_exact_mut(h));
        for ((((gx, gh), c), gates), m) in rows {
            let [xi, xf, xg, xo] = gate_blocks::<4>(gx, h);
            let [hi, hf, hg, ho] = gate_blocks::<4>(gh, h);
            let [gi, gf, gg, go] = gate_blocks_mut::<4>(gates, h);
            for j in 0..h {
                let i = sigmoid(xi[j] + hi[j]);
                let f = sigmoid(xf[j] + hf[j]);
                let g = tanh(xg[j] + hg[j]);
                let o = sigmoid(xo[j] + ho[j]);
                let c_new = f * c[j] + i * g;
                c[j] = c_new;
                m[j] = o * tanh(c_new);
                gi[j] = i;
                gf[j] = f;
                gg[j] = g;
                go[j] = o;
            }
        }
    }
}

simd_fn! {
    /// Backward gate pass for `n` rows.
    ///
    /// `gates`: `[n, 4H]` activated gates kept by forward; `c_prev`: `[n, H]` the cell state
    /// entering the step; `dm`: `[n, H]` gradient of `m`; `dc`: `[n, H]` in `dc'` (from the
    /// next step), out `dc` (to the previous step); `dgates`: `[n, 4H]` out, pre-activation
    /// gradients.
    pub fn backward_rows(gates: &[f32], c_prev: &[f32], dm: &[f32], dc: &mut [f32], dgates: &mut [f32], h: usize) {
        let g4 = 4 * h;
        let rows = gates
            .chunks_exact(g4)
            .zip(c_prev.chunks_exact(h))
            .zip(dm.chunks_exact(h))
            .zip(dc.chunks_exact_mut(h))
            .zip(dgates.chunks_exact_mut(g4));
        for ((((gates, cp), dm), dc), dgates) in rows {
            let [gi, gf, gg, go] = gate_blocks::<4>(gates, h);
            let [di, df, dg, d_o] = gate_blocks_mut::<4>(dgates, h);
            for j in 0..h {
                let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
                let c_new = f * cp[j] + i * g;
                let tc = tanh(c_new);
                let dc_total = dc[j] + dm[j] * o * (1.0 - tc * tc);
                di[j] = dc_total * g * i * (1.0 - i);
                df[j] = dc_total * cp[j] * f * (1.0 - f);
                dg[j] = dc_total * i * (1.0 - g * g);
                d_o[j] = dm[j] * tc * o * (1.0 - o);
                dc[j] = dc_total * f;
            }
        }
    }
}
