//! Elman RNN cell (PyTorch `torch.nn.RNN`, `nonlinearity` tanh or relu).
//!
//! Forward: `h' = φ(W_ih x + b_ih + W_hh h + b_hh)` with `φ = tanh` or `relu`.
//!
//! Backward, given `dh'`: `dâ = dh' ⊙ φ'(â)`, where `tanh' = 1 − h'²` and `relu' = [h' > 0]`
//! (PyTorch's choice at 0), both read from the stored output `h'`; then
//! `dh = W_hhᵀ dâ`, `dx = W_ihᵀ dâ`, `dW_ih += dâ xᵀ`, `dW_hh += dâ hᵀ`, `db_ih = db_hh += dâ`.
//!
//! The stored "gates" of this cell are its outputs `h'` (one gate block, `G = 1`).

use crate::kernels::activation::{relu, tanh};

simd_fn! {
    /// Forward pass for `n` rows: `hs[n, H] = φ(gx + gh)`.
    pub fn forward_rows(gx: &[f32], gh: &[f32], hs: &mut [f32], use_relu: bool) {
        if use_relu {
            for ((h, x), r) in hs.iter_mut().zip(gx).zip(gh) {
                *h = relu(x + r);
            }
        } else {
            for ((h, x), r) in hs.iter_mut().zip(gx).zip(gh) {
                *h = tanh(x + r);
            }
        }
    }
}

simd_fn! {
    /// Backward pass for `n` rows: `dgates[n, H] = dh ⊙ φ'` from the stored outputs `h_out`.
    pub fn backward_rows(h_out: &[f32], dh: &[f32], dgates: &mut [f32], use_relu: bool) {
        if use_relu {
            for ((d, h), g) in dgates.iter_mut().zip(h_out).zip(dh) {
                *d = if *h > 0.0 { *g } else { 0.0 };
            }
        } else {
            for ((d, h), g) in dgates.iter_mut().zip(h_out).zip(dh) {
                *d = g * (1.0 - h * h);
            }
        }
    }
}
